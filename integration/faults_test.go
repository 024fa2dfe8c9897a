//go:build integration

package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/pgtest"
	"github.com/presenced/presenced/internal/xmppclient"
)

// Fault tests (issue 7): real ejabberd, PostgreSQL and presenced processes,
// a few users changing presence all the time, and one fault each. After
// the recovery the users settle and say a last word; then presenced (and
// the database) must hold exactly what the users last did: no ghost (a
// user or resource online in presenced that is not), no missing user.

const loadPassword = "load-pw"

var (
	loadUsers     []string
	loadUsersOnce sync.Once
	loadUsersErr  error
)

// ensureLoadUsers registers load0..load9 once, with presenced on their
// rosters.
func ensureLoadUsers(t *testing.T) []string {
	t.Helper()
	loadUsersOnce.Do(func() {
		var args []string
		for i := range 10 {
			u := "load" + strconv.Itoa(i)
			loadUsers = append(loadUsers, u)
			args = append(args, u, loadPassword)
		}
		loadUsersErr = ejabberd("adduser", args...)
	})
	if loadUsersErr != nil {
		t.Fatal(loadUsersErr)
	}
	return loadUsers
}

// churn drives users that log in, change status every interval, and now
// and then log out and back in; they reconnect by themselves when the
// server goes away. state holds what each user last did for sure: the
// status it last sent on a live session, or "" when it logged out.
type churn struct {
	c2s      string // the server's client listener
	interval time.Duration
	pad      string // appended to every status but the last word
	stopping chan struct{}
	wg       sync.WaitGroup
	sent     atomic.Int64
	mu       sync.Mutex
	state    map[string]string
	// live are the sessions still open after their last word, closed when
	// the test ends: a session left open would be a real resource in the
	// next test.
	live []*xmppclient.Client
}

func startChurn(t *testing.T, users []string, interval time.Duration, pad string) *churn {
	t.Helper()
	return startChurnOn(t, env["XMPP_C2S_ADDR"], users, interval, pad)
}

// startChurnOn is startChurn with the users of the ejabberd whose client
// listener is c2s.
func startChurnOn(t *testing.T, c2s string, users []string, interval time.Duration, pad string) *churn {
	t.Helper()
	ch := &churn{c2s: c2s, interval: interval, pad: pad, stopping: make(chan struct{}), state: map[string]string{}}
	for _, u := range users {
		ch.wg.Add(1)
		go ch.user(u)
	}
	t.Cleanup(func() {
		ch.stop()
		for _, c := range ch.live {
			_ = c.Close()
		}
	})
	return ch
}

func (ch *churn) set(user, status string) {
	ch.mu.Lock()
	ch.state[user] = status
	ch.mu.Unlock()
}

func (ch *churn) stopped() bool {
	select {
	case <-ch.stopping:
		return true
	default:
		return false
	}
}

func (ch *churn) user(name string) {
	defer ch.wg.Done()
	j := jid.MustParse(name + "@" + env["XMPP_DOMAIN"])
	n := 0
	for !ch.stopped() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := xmppclient.Dial(ctx, ch.c2s, j, loadPassword)
		cancel()
		if err != nil {
			time.Sleep(300 * time.Millisecond) // the server is away: no tight loop
			continue
		}
		tick := time.NewTicker(ch.interval + time.Duration(rand.Int64N(int64(ch.interval))))
	session:
		for {
			select {
			case <-ch.stopping:
				// The last word: one more status on a live session, or
				// offline if the session is gone.
				n++
				status := fmt.Sprintf("%s final %d", name, n)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.Presence(ctx, xmppclient.Presence{Status: status})
				cancel()
				tick.Stop()
				if err != nil {
					_ = c.Close()
					status = ""
				}
				ch.mu.Lock()
				ch.state[name] = status
				if err == nil {
					ch.live = append(ch.live, c)
				}
				ch.mu.Unlock()
				return
			case <-c.Done():
				ch.set(name, "") // the server dropped us: log in again
				break session
			case <-tick.C:
				if rand.IntN(20) == 0 {
					_ = c.Close()
					ch.set(name, "")
					time.Sleep(3 * ch.interval)
					break session
				}
				n++
				status := fmt.Sprintf("%s %d%s", name, n, ch.pad)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.Presence(ctx, xmppclient.Presence{Status: status})
				cancel()
				if err != nil {
					_ = c.Close()
					ch.set(name, "")
					break session
				}
				ch.sent.Add(1)
				ch.set(name, status)
			}
		}
		tick.Stop()
	}
}

// stop asks every user for its last word and waits; it may run twice.
func (ch *churn) stop() {
	select {
	case <-ch.stopping:
	default:
		close(ch.stopping)
	}
	ch.wg.Wait()
}

// truth is what the users last did: bare JID → status, online users only.
func (ch *churn) truth() map[string]string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := map[string]string{}
	for u, s := range ch.state {
		if s != "" {
			out[u+"@"+env["XMPP_DOMAIN"]] = s
		}
	}
	return out
}

// converged compares presenced's REST view of the users with the truth:
// every online user with exactly one resource and its last status, every
// other one offline.
func converged(t *testing.T, d *daemon, users []string, truth map[string]string) error {
	t.Helper()
	all := map[string]restUser{}
	for _, u := range d.list(t) { // one request: polling must not hit the rate limit
		all[u.JID] = u
	}
	var problems []string
	for _, name := range users {
		bare := name + "@" + env["XMPP_DOMAIN"]
		u, known := all[bare]
		want, online := truth[bare]
		switch {
		case !known && online:
			problems = append(problems, fmt.Sprintf("%s: missing (unknown)", bare))
		case !online && u.Online:
			problems = append(problems, fmt.Sprintf("%s: ghost, online with %+v", bare, u.Resources))
		case online && !u.Online:
			problems = append(problems, fmt.Sprintf("%s: missing, offline (want %q)", bare, want))
		case online && (len(u.Resources) != 1 || u.Status != want):
			problems = append(problems, fmt.Sprintf("%s: %q with resources %+v, want %q with 1", bare, u.Status, u.Resources, want))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%d wrong: %s", len(problems), strings.Join(problems, "; "))
	}
	return nil
}

// collector follows the stream in the background as a dashboard would:
// it checks that sequence numbers never skip or repeat, and keeps each
// user's last frame and how many frames each user had.
type collector struct {
	mu    sync.Mutex
	last  map[string]frame
	count map[string]int
	err   error
}

func collect(t *testing.T, d *daemon) *collector {
	t.Helper()
	s := d.stream(t)
	c := &collector{last: map[string]frame{}, count: map[string]int{}}
	go func() {
		var seq uint64
		for {
			select {
			case f := <-s.frames:
				c.mu.Lock()
				switch f.Type {
				case "snapshot":
					seq = f.Seq
				case "change":
					if f.Seq != seq+1 && c.err == nil {
						c.err = fmt.Errorf("change seq %d after %d", f.Seq, seq)
					}
					seq = f.Seq
					c.last[f.JID] = f
					c.count[f.JID]++
				}
				c.mu.Unlock()
			case err := <-s.errc:
				c.mu.Lock()
				if c.err == nil {
					c.err = fmt.Errorf("stream ended: %w", err)
				}
				c.mu.Unlock()
				return
			}
		}
	}()
	return c
}

// has waits until every user's last frame says what truth says.
func (c *collector) has(t *testing.T, truth map[string]string) {
	t.Helper()
	eventually(t, "the stream to show what the users last did", 30*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			t.Fatal(c.err)
		}
		for bare, status := range truth {
			if f := c.last[bare]; !f.User.Online || f.User.Status != status {
				return fmt.Errorf("%s: last frame %+v, want %q", bare, f.User, status)
			}
		}
		return nil
	})
}

// dbConverged compares the database's current state with the truth.
func dbConverged(t *testing.T, dbURL string, users []string, truth map[string]string) error {
	t.Helper()
	db := connect(t, dbURL)
	got := map[string][]string{}
	rows, err := db.Query(context.Background(), `SELECT user_jid, status FROM presence_current WHERE user_jid LIKE 'load%'`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var u, s string
		if err := rows.Scan(&u, &s); err != nil {
			return err
		}
		got[u] = append(got[u], s)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var problems []string
	for _, name := range users {
		bare := name + "@" + env["XMPP_DOMAIN"]
		want, online := truth[bare]
		switch {
		case online && (len(got[bare]) != 1 || got[bare][0] != want):
			problems = append(problems, fmt.Sprintf("%s: %q, want [%q]", bare, got[bare], want))
		case !online && len(got[bare]) > 0:
			problems = append(problems, fmt.Sprintf("%s: ghost row %q", bare, got[bare]))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("database: %s", strings.Join(problems, "; "))
	}
	return nil
}

// settle stops the churn and waits for presenced (and the database, if
// dbURL is set) to hold what the users last did.
func settle(t *testing.T, ch *churn, d *daemon, users []string, dbURL string) {
	t.Helper()
	ch.stop()
	truth := ch.truth()
	t.Logf("%d changes sent; at the end %d of %d users online", ch.sent.Load(), len(truth), len(users))
	eventually(t, "presenced to hold what the users last did", 60*time.Second, func() error {
		return converged(t, d, users, truth)
	})
	if dbURL != "" {
		eventually(t, "the database to hold what the users last did", 30*time.Second, func() error {
			return dbConverged(t, dbURL, users, truth)
		})
	}
}

// (a) The server killed with SIGKILL under load, then started again, and
// stopped cleanly under load, then started again: ejabberd and MongooseIM,
// each a server of the test's own, so the others never see it go.
func TestFaultServerKilledUnderLoad(t *testing.T) {
	for _, kind := range []string{"ejabberd", "mongooseim"} {
		t.Run(kind, func(t *testing.T) { serverGoneUnderLoad(t, kind, true) })
	}
}

func TestFaultServerStoppedUnderLoad(t *testing.T) {
	for _, kind := range []string{"ejabberd", "mongooseim"} {
		t.Run(kind, func(t *testing.T) { serverGoneUnderLoad(t, kind, false) })
	}
}

// serverGoneUnderLoad takes a private server of kind away under load
// (kill: SIGKILL, else a clean stop), starts it again 2 s later, and
// checks that presenced ends with exactly what the users last did.
func serverGoneUnderLoad(t *testing.T, kind string, kill bool) {
	var users []string
	for i := range 10 {
		users = append(users, "load"+strconv.Itoa(i))
	}
	own := privateServer(t, kind, loadPassword, users...)
	d := startPresencedOn(t, own, "PRESENCED_LINK_GRACE=10s")
	d.waitConnected(t, 1)
	ch := startChurnOn(t, own.env["XMPP_C2S_ADDR"], users, 100*time.Millisecond, "")
	time.Sleep(3 * time.Second) // under load for a while
	if kill {
		own.kill(t)
	} else if err := own.run("stop"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the server stays away while the users and presenced retry
	if err := own.start(); err != nil {
		t.Fatal(err)
	}
	d.waitConnected(t, 2)
	time.Sleep(3 * time.Second) // load again after the recovery
	settle(t, ch, d, users, "")
}

// (b) PostgreSQL stopped for 30 s under load: the API keeps answering from
// memory, health says degraded, and once the database is back it holds
// every resource's final state.
//
// The database is a PostgreSQL of the test's own, so the other tests never
// see it stopped.
func TestFaultDatabaseStoppedUnderLoad(t *testing.T) {
	users := ensureLoadUsers(t)
	pgDir := t.TempDir()
	admin, stopPG, err := pgtest.Start("..", pgDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopPG)
	dbURL := pgtest.NewDB(t, admin, "presenced_fault")
	d := startPresenced(t, "PRESENCED_STORE="+dbURL)
	d.waitConnected(t, 1)
	ch := startChurn(t, users, 100*time.Millisecond, "")
	time.Sleep(2 * time.Second)

	if out, err := exec.Command("../scripts/postgres", "stop", pgDir).CombinedOutput(); err != nil {
		t.Fatalf("stopping PostgreSQL: %v\n%s", err, out)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = exec.Command("../scripts/postgres", "start", pgDir).Run()
		}
	}()
	down := time.Now()
	answers := 0
	for time.Since(down) < 30*time.Second {
		resp, err := http.Get(d.base + "/v1/presence")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("the API failed while the database was down: %v %v", err, resp)
		}
		resp.Body.Close()
		answers++
		time.Sleep(500 * time.Millisecond)
	}
	if code := healthStatus(t, d); code != "degraded" {
		t.Errorf("health %q with the database down, want degraded", code)
	}
	if out, err := exec.Command("../scripts/postgres", "start", pgDir).CombinedOutput(); err != nil {
		t.Fatalf("starting PostgreSQL again: %v\n%s", err, out)
	}
	restarted = true
	t.Logf("the API answered %d times in 30 s without the database", answers)
	time.Sleep(2 * time.Second)
	settle(t, ch, d, users, dbURL)
	eventually(t, "health ok again", 30*time.Second, func() error {
		if code := healthStatus(t, d); code != "ok" {
			return fmt.Errorf("health %q", code)
		}
		return nil
	})
}

// (c) presenced killed with SIGKILL under load and started again on the
// same database: the state is restored, then reconciled with the server.
func TestFaultPresencedKilledUnderLoad(t *testing.T) {
	users := ensureLoadUsers(t)
	dbURL := freshDatabase(t)
	d := startPresencedProcess(t, "PRESENCED_STORE="+dbURL) // a process: SIGKILL
	d.waitConnected(t, 1)
	ch := startChurn(t, users, 100*time.Millisecond, "")
	time.Sleep(3 * time.Second)
	_ = d.cmd.Process.Kill()
	<-d.done
	d.killed = true
	time.Sleep(2 * time.Second) // changes go on while presenced is away
	d2 := startPresenced(t, "PRESENCED_STORE="+dbURL)
	d2.waitConnected(t, 1)
	time.Sleep(2 * time.Second)
	settle(t, ch, d2, users, dbURL)
}

// (d) a WebSocket consumer that never reads, and one that reads slowly,
// slow no one else: a normal consumer gets every change in order, the
// stuck one is closed with 4008 once its queue is full, and presenced's
// memory stays bounded.
func TestFaultStuckConsumers(t *testing.T) {
	users := ensureLoadUsers(t)
	// A process, whose memory the test measures; the queue fills within
	// the test on a slow machine too.
	d := startPresencedProcess(t, "PRESENCED_STREAM_QUEUE=256")
	d.waitConnected(t, 1)
	dialer := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}).DialContext}
	url := "ws" + strings.TrimPrefix(d.base, "http") + "/v1/stream"
	stuck, _, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	slow, _, err := dialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slowDone := make(chan int)
	go func() {
		n := 0
		for {
			if _, _, err := slow.ReadMessage(); err != nil {
				slowDone <- n
				return
			}
			n++
			time.Sleep(20 * time.Millisecond)
		}
	}()
	normal := collect(t, d)
	rss0 := rss(t, d)
	// About 300 to 500 changes a second of 6 KB each: more than the kernel
	// buffers for the stuck socket (up to 4 MB), so its queue fills.
	ch := startChurn(t, users, 20*time.Millisecond, " "+strings.Repeat("p", 6000))
	time.Sleep(10 * time.Second)
	ch.stop()
	truth := ch.truth()
	// The normal consumer got every change in order, up to each user's
	// last word.
	normal.has(t, truth)
	eventually(t, "presenced to hold what the users last did", 30*time.Second, func() error {
		return converged(t, d, users, truth)
	})
	// The stuck one: whatever fitted in the socket, then the end: a close
	// 4008 if the close frame found room, else the connection just ends
	// (1006) once the write timeout passed.
	_ = stuck.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := stuck.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, 4008, websocket.CloseAbnormalClosure) {
			t.Fatalf("the stuck consumer read %v, want close 4008 or the end of the connection", err)
		}
		t.Logf("the stuck consumer: %v", err)
		break
	}
	if growth := rss(t, d) - rss0; growth > 200<<20 {
		t.Errorf("presenced grew by %d MiB with stuck consumers", growth>>20)
	}
	t.Logf("%d changes sent; the slow consumer read while it could", ch.sent.Load())
}

// (e) one user flapping presence as fast as it can (about 1,000 times a
// second) is held to -user-rate changes a second, its last word still
// counts, and the other users' changes all arrive.
func TestFaultFlappingUser(t *testing.T) {
	users := ensureLoadUsers(t)
	d := startPresenced(t, "PRESENCED_USER_RATE=10")
	d.waitConnected(t, 1)
	ws := collect(t, d)
	flapper := login(t, "erin", xmppclient.Presence{Status: "start"})
	others := startChurn(t, users[:5], 100*time.Millisecond, "")
	ctx := context.Background()
	const seconds = 5
	start := time.Now()
	sent := 0
	for tick := time.NewTicker(10 * time.Millisecond); time.Since(start) < seconds*time.Second; <-tick.C {
		// 1,000 a second, 10 every 10 ms.
		for due := int(time.Since(start).Seconds() * 1000); sent < due; sent++ {
			if err := flapper.Presence(ctx, xmppclient.Presence{Status: "flap " + strconv.Itoa(sent)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := "flap " + strconv.Itoa(sent-1)
	if err := flapper.Presence(ctx, xmppclient.Presence{Status: last + " end"}); err != nil {
		t.Fatal(err)
	}
	last += " end"
	others.stop()
	truth := others.truth()
	truth["erin@localhost"] = last
	ws.has(t, truth)
	ws.mu.Lock()
	flaps := ws.count["erin@localhost"]
	ws.mu.Unlock()
	t.Logf("the flapper sent %d changes in %d s (%.0f/s); %d reached the stream", sent+1, seconds, float64(sent)/seconds, flaps)
	if sent < 2000 {
		t.Logf("note: the server took only %d changes in %d s", sent, seconds)
	}
	// 10 a second, one more at the end of each second, and the windows at
	// the edges.
	if limit := (10 + 1) * (seconds + 3); flaps > limit {
		t.Errorf("%d changes of the flapper reached the stream, want at most %d", flaps, limit)
	}
	eventually(t, "presenced to hold the others' last words", 30*time.Second, func() error {
		return converged(t, d, users[:5], truth)
	})
}

// rss returns presenced's resident memory in bytes.
func rss(t *testing.T, d *daemon) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(d.cmd.Process.Pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
