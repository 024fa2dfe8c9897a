package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/xmppclient"
)

// A user's state, as the driver sees it. Only the driver moves a user out
// of stOnline or stOffline (to stBusy); whoever then holds it (one action's
// goroutine) owns its client until it stores stOnline again or hands the
// user back to the driver's login queue.
const (
	stOffline int32 = iota // no client; in the driver's login queue (or given up)
	stOnline               // logged in, idle: the driver may pick it
	stBusy                 // an action runs
)

type xuser struct {
	idx    int
	jid    jid.JID
	pass   string
	state  atomic.Int32
	client *xmppclient.Client
}

// userIndex maps the bare JIDs of the simulated users to their index, for
// the stream readers (read-only once built), and keeps each user's last
// logout time, which an offline frame is matched against.
type userIndex struct {
	byJID    map[string]int32
	logoutAt []atomic.Int64 // mono ns of the user's last logout; 0: none yet
}

// xmppStats are the XMPP side's counters.
type xmppStats struct {
	loginOK, loginFail     atomic.Int64 // logins, all phases (a retried login counts each failure)
	statusSent, loginsSent atomic.Int64 // presence changes sent: status changes, initial presence after a login
	logouts                atomic.Int64 // logouts done (each one a change: offline)
	sendErr                atomic.Int64 // presence that could not be written
	disconnects            atomic.Int64 // sessions the server (or the network) ended
	skipped                atomic.Int64 // actions due but no idle user to run them
	loginTime              hist         // dial to bound session, per successful login
}

// sent is every change sent: each one is one change frame on every stream.
func (s *xmppStats) sent() int64 { return s.statusSent.Load() + s.loginsSent.Load() + s.logouts.Load() }

var shows = []string{"", "away", "chat", "dnd", "xa"}

// users are the simulated XMPP users and the driver of their actions.
type users struct {
	o      *options
	mono   func() int64
	all    []*xuser
	index  *userIndex
	st     *xmppStats
	seq    atomic.Uint64 // marker sequence
	logins chan struct{} // login concurrency (all phases)
	wg     sync.WaitGroup
	// requeue hands users back to the driver's login queue: logged out,
	// disconnected, or a failed login.
	requeue chan requeued
}

type requeued struct {
	u   *xuser
	due time.Time
}

func newUsers(o *options, mono func() int64) (*users, error) {
	us := &users{o: o, mono: mono, st: &xmppStats{}, logins: make(chan struct{}, o.LoginConcurrency),
		index: &userIndex{byJID: make(map[string]int32, o.Users), logoutAt: make([]atomic.Int64, o.Users)}}
	us.requeue = make(chan requeued, o.Users)
	for i := range o.Users {
		n := o.UserStart + i
		local := expand(o.UserPattern, n)
		j, err := jid.New(local, o.Domain, "")
		if err != nil {
			return nil, fmt.Errorf("-user %q gives %q, not a valid user: %w", o.UserPattern, local, err)
		}
		u := &xuser{idx: i, jid: j, pass: expand(o.PasswordPattern, n)}
		us.all = append(us.all, u)
		us.index.byJID[strings.ToLower(j.Bare().String())] = int32(i)
	}
	if len(us.index.byJID) != len(us.all) {
		return nil, fmt.Errorf("-user %q does not give distinct names (put %%d in it)", o.UserPattern)
	}
	return us, nil
}

// expand replaces every %d in pattern with n.
func expand(pattern string, n int) string {
	return strings.ReplaceAll(pattern, "%d", strconv.Itoa(n))
}

// marker is a status text unique to this change: its sequence number and
// its send time (ns since the tool started), which the stream readers
// parse back out of the change frames to time the change end to end.
func (us *users) marker() (string, int64) {
	t := us.mono()
	return "pl/" + strconv.FormatUint(us.seq.Add(1), 10) + "/" + strconv.FormatInt(t, 10), t
}

// login logs u in and sends its initial presence (with a marker). It holds
// a login slot meanwhile, so logins never outnumber -login-concurrency.
func (us *users) login(ctx context.Context, u *xuser) error {
	select {
	case us.logins <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-us.logins }()
	lctx, cancel := context.WithTimeout(ctx, us.o.LoginTimeout)
	defer cancel()
	t0 := time.Now()
	c, err := xmppclient.Dialer{Timeout: us.o.LoginTimeout}.Dial(lctx, us.o.C2S, u.jid, u.pass)
	if err != nil {
		us.st.loginFail.Add(1)
		return err
	}
	us.st.loginTime.record(int64(time.Since(t0)))
	mark, _ := us.marker()
	_ = c.SetWriteDeadline(time.Now().Add(us.o.LoginTimeout))
	err = c.Presence(lctx, xmppclient.Presence{Status: mark})
	_ = c.SetWriteDeadline(time.Time{})
	if err != nil {
		us.st.sendErr.Add(1)
		c.Kill()
		return err
	}
	us.st.loginOK.Add(1)
	us.st.loginsSent.Add(1)
	u.client = c
	return nil
}

// loginAll logs every user in, -login-concurrency at a time and at most
// -login-rate per second, retrying a failed login twice after a pause.
// It returns when all are done (or ctx ends).
func (us *users) loginAll(ctx context.Context) {
	var wg sync.WaitGroup
	var pace <-chan time.Time
	if us.o.LoginRate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / us.o.LoginRate))
		defer t.Stop()
		pace = t.C
	}
	for _, u := range us.all {
		if pace != nil {
			select {
			case <-pace:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := range 3 {
				if attempt > 0 && !sleepCtx(ctx, time.Duration(attempt)*time.Second) {
					return
				}
				if err := us.login(ctx, u); err == nil {
					u.state.Store(stOnline)
					return
				} else if ctx.Err() == nil {
					errorf("login", "login %s (attempt %d of 3): %v", u.jid, attempt+1, err)
				}
			}
		}()
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drive runs the actions at -rate per second until ctx ends, then waits
// for the actions in flight. Each action is one change: a status change of
// an idle online user; with probability -churn a logout instead; and, when
// a logged-out user's -offline time has passed and the action is not a
// logout, that user's login (its initial presence). In the steady state a
// fraction churn of the actions are logouts and as many are logins.
// Actions in flight run under actx, which outlives ctx.
func (us *users) drive(ctx, actx context.Context) {
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var queue []requeued // logged-out users by due time (FIFO: every delay is the same or later)
	for _, u := range us.all {
		if u.state.Load() == stOffline { // failed its first login: try again later
			queue = append(queue, requeued{u, time.Now().Add(us.o.Offline)})
		}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var done int64
	for {
		select {
		case <-ctx.Done():
			us.wg.Wait()
			return
		case now := <-tick.C:
		drain:
			for {
				select {
				case r := <-us.requeue:
					queue = append(queue, r)
				default:
					break drain
				}
			}
			due := int64(now.Sub(start).Seconds() * us.o.Rate)
			for ; done < due; done++ {
				r := rng.Float64()
				if r >= us.o.Churn && len(queue) > 0 && !queue[0].due.After(now) {
					u := queue[0].u
					queue = queue[1:]
					u.state.Store(stBusy)
					us.run(func() { us.relogin(actx, u) })
					continue
				}
				u := us.pickOnline(rng)
				if u == nil {
					us.st.skipped.Add(1)
					continue
				}
				if r < us.o.Churn {
					us.run(func() { us.logout(u) })
				} else {
					show := shows[rng.IntN(len(shows))]
					us.run(func() { us.change(actx, u, show) })
				}
			}
		}
	}
}

func (us *users) run(f func()) {
	us.wg.Add(1)
	go func() { defer us.wg.Done(); f() }()
}

// pickOnline takes an idle online user at random (stOnline → stBusy), or
// nil when a few tries find none.
func (us *users) pickOnline(rng *rand.Rand) *xuser {
	for range 32 {
		u := us.all[rng.IntN(len(us.all))]
		if u.state.CompareAndSwap(stOnline, stBusy) {
			return u
		}
	}
	return nil
}

// gone reports (and counts) a client the server closed meanwhile, and
// hands its user back for a login later.
func (us *users) gone(u *xuser) bool {
	select {
	case <-u.client.Done():
	default:
		return false
	}
	us.st.disconnects.Add(1)
	u.client.Kill()
	us.lost(u)
	return true
}

// lost: u has no session any more; it logs in again after -offline.
func (us *users) lost(u *xuser) {
	u.client = nil
	u.state.Store(stOffline)
	us.requeue <- requeued{u, time.Now().Add(us.o.Offline)}
}

func (us *users) change(ctx context.Context, u *xuser, show string) {
	if us.gone(u) {
		return
	}
	mark, _ := us.marker()
	_ = u.client.SetWriteDeadline(time.Now().Add(us.o.LoginTimeout))
	err := u.client.Presence(ctx, xmppclient.Presence{Show: show, Status: mark})
	_ = u.client.SetWriteDeadline(time.Time{})
	if err != nil {
		us.st.sendErr.Add(1)
		u.client.Kill()
		us.lost(u)
		return
	}
	us.st.statusSent.Add(1)
	u.state.Store(stOnline)
}

func (us *users) logout(u *xuser) {
	if us.gone(u) {
		return
	}
	us.index.logoutAt[u.idx].Store(us.mono())
	closeClient(u.client)
	us.st.logouts.Add(1)
	us.lost(u)
}

func (us *users) relogin(ctx context.Context, u *xuser) {
	if err := us.login(ctx, u); err != nil {
		if ctx.Err() == nil {
			errorf("login", "login %s: %v (next try in %v)", u.jid, err, max(us.o.Offline, time.Second))
		}
		u.state.Store(stOffline)
		us.requeue <- requeued{u, time.Now().Add(max(us.o.Offline, time.Second))}
		return
	}
	u.state.Store(stOnline)
}

// closeClient ends a session cleanly (the server then sends unavailable
// on the user's behalf), or drops it if the server does not answer.
func closeClient(c *xmppclient.Client) {
	done := make(chan struct{})
	go func() { _ = c.Close(); close(done) }()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.Kill()
		<-done
	}
}

// logoutAll closes every session still open, a few at a time.
func (us *users) logoutAll() {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, u := range us.all {
		if u.state.Load() != stOnline || u.client == nil {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			closeClient(u.client)
			u.client = nil
			u.state.Store(stOffline)
		}()
	}
	wg.Wait()
}

func (us *users) online() int {
	n := 0
	for _, u := range us.all {
		if u.state.Load() != stOffline {
			n++
		}
	}
	return n
}
