package component

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/poll"
	"github.com/presenced/presenced/presence"
)

// fakeServer is a hand-written XEP-0114 server side, FAKE on purpose: it
// misbehaves in ways a real server cannot be told to (refusing every
// handshake, sending malformed stanzas, hanging up at will). Behaviour that
// real servers show is tested against ejabberd in integration/.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	secret string
	refuse bool

	mu      sync.Mutex
	accepts []time.Time
	conns   chan *fakeConn
	// open keeps every accepted connection reachable: a test that no longer
	// uses one would otherwise let the garbage collector's finalizer close
	// it, which looks to the component like the server hanging up.
	open []net.Conn
}

type fakeConn struct {
	net.Conn
	dec *xml.Decoder
}

func newFakeServer(t *testing.T, secret string, refuse bool) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, secret: secret, refuse: refuse, conns: make(chan *fakeConn, 16)}
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.open {
			c.Close()
		}
	})
	return s
}

func (s *fakeServer) accept() {
	for i := 0; ; i++ {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.accepts = append(s.accepts, time.Now())
		s.open = append(s.open, conn)
		s.mu.Unlock()
		go s.handshake(conn, fmt.Sprintf("id%d", i))
	}
}

func (s *fakeServer) handshake(conn net.Conn, id string) {
	dec := xml.NewDecoder(bufio.NewReader(conn))
	for {
		tok, err := dec.Token()
		if err != nil {
			conn.Close()
			return
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "stream" {
			break
		}
	}
	fmt.Fprintf(conn, `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='%s' from='presence.localhost'>`, id)
	var hs struct {
		Digest string `xml:",chardata"`
	}
	if err := dec.Decode(&hs); err != nil {
		conn.Close()
		return
	}
	sum := sha1.Sum([]byte(id + s.secret))
	if s.refuse || hs.Digest != hex.EncodeToString(sum[:]) {
		io.WriteString(conn, `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		conn.Close()
		return
	}
	io.WriteString(conn, `<handshake/>`)
	s.conns <- &fakeConn{Conn: conn, dec: dec}
}

func (s *fakeServer) next(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not complete a handshake")
		return nil
	}
}

// read returns the next stanza the component sent, as raw XML.
func (c *fakeConn) read(t *testing.T) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		tok, err := c.dec.Token()
		if err != nil {
			t.Fatalf("reading from component: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			var v struct {
				XMLName xml.Name
				Attrs   []xml.Attr `xml:",any,attr"`
				Inner   string     `xml:",innerxml"`
			}
			if err := c.dec.DecodeElement(&v, &se); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			b.WriteString("<" + v.XMLName.Local)
			for _, a := range v.Attrs {
				if a.Name.Space == "" && a.Name.Local != "xmlns" {
					fmt.Fprintf(&b, " %s='%s'", a.Name.Local, a.Value)
				}
			}
			b.WriteString(">" + v.Inner + "</" + v.XMLName.Local + ">")
			return b.String()
		}
	}
}

func startComponent(t *testing.T, srv *fakeServer, cfg Config) (*presence.Tracker, *Component) {
	t.Helper()
	tr := presence.New(presence.Options{})
	cfg.JID = jid.MustParse("presence.localhost")
	cfg.Addr = srv.ln.Addr().String()
	cfg.Tracker = tr
	if cfg.Secret == "" {
		cfg.Secret = "secret"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Serve = %v", err)
		}
	})
	return tr, c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.True(t, what, 10*time.Second, cond)
}

func TestLinkSurvivesGarbageAndReconnects(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	logs := &logBuffer{}
	tr, c := startComponent(t, srv, Config{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, ProbeWait: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	defer func() {
		if t.Failed() {
			logs.mu.Lock()
			t.Log(logs.b.String())
			logs.mu.Unlock()
		}
	}()
	conn := srv.next(t)

	// Garbage that a broken server might route, then one good presence.
	for _, s := range []string{
		`<presence/>`, `<presence from='@@'/>`, `<presence from='a@localhost/r' type='weird'/>`,
		`<iq from='a@localhost/r' to='presence.localhost' id='x' type='get'/>`,
		`<iq from='a@localhost/r' to='presence.localhost' id='y' type='get'>junk</iq>`,
		`<message from='a@localhost/r'><body>hi</body></message>`,
		`<presence from='alice@localhost/pc'><show>away</show><priority>3</priority></presence>`,
	} {
		io.WriteString(conn, s)
	}
	for _, want := range []string{"id='x'", "id='y'"} {
		if got := conn.read(t); !strings.Contains(got, want) || !strings.Contains(got, "bad-request") {
			t.Fatalf("reply %s, want bad-request for %s", got, want)
		}
	}
	waitFor(t, "alice online", func() bool { u, _ := tr.Get("alice@localhost"); return u.Online })

	// The server hangs up: the component reconnects and probes alice.
	conn.Close()
	conn = srv.next(t)
	if got := conn.read(t); !strings.HasPrefix(got, "<presence from='presence.localhost' to='alice@localhost' type='probe'") {
		t.Fatalf("after reconnect got %s, want a probe for alice", got)
	}
	// Nobody answers. The server never answered a probe for alice (she may
	// have sent directed presence): her silence says nothing, her client is
	// pinged at once instead, and its answer keeps her.
	id := idOf(t, conn.expect(t, "urn:xmpp:ping", "to='alice@localhost/pc'"))
	fmt.Fprintf(conn, `<iq type='result' id='%s' from='alice@localhost/pc' to='presence.localhost'/>`, id)
	waitFor(t, "the answer to be taken", func() bool {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return strings.Contains(logs.b.String(), "to_ping=1")
	})
	if u, _ := tr.Get("alice@localhost"); !u.Online {
		t.Fatal("alice answered her ping but went offline")
	}
	if c.connects.Load() != 2 {
		t.Fatalf("Connects = %d", c.connects.Load())
	}
}

func TestProbeAnswerKeepsUserOnline(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	logs := &logBuffer{}
	tr, _ := startComponent(t, srv, Config{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, ProbeWait: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	conn := srv.next(t)
	io.WriteString(conn, `<presence from='bob@localhost/pc'/>`)
	waitFor(t, "bob online", func() bool { u, _ := tr.Get("bob@localhost"); return u.Online })
	conn.Close()
	conn = srv.next(t)
	before := logs.Count("component: resynced") // the first link's resync, if it ran, is over
	conn.read(t)                                // the probe
	io.WriteString(conn, `<presence from='bob@localhost/pc'><delay xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/></presence>`)
	waitFor(t, "the resync to end", func() bool { return logs.Count("component: resynced") > before })
	if u, _ := tr.Get("bob@localhost"); !u.Online {
		t.Fatal("bob answered the probe but went offline")
	}
}

func TestRefusedHandshakeBacksOff(t *testing.T) {
	srv := newFakeServer(t, "secret", true)
	const max = 200 * time.Millisecond
	startComponent(t, srv, Config{MinBackoff: time.Millisecond, MaxBackoff: max})
	waitFor(t, "three attempts", func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return len(srv.accepts) >= 3 })
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for i := 1; i < len(srv.accepts); i++ {
		// A refused handshake waits MaxBackoff, jittered down to half at most:
		// a lower bound, so this cannot flake on a slow machine.
		if gap := srv.accepts[i].Sub(srv.accepts[i-1]); gap < max/2 {
			t.Fatalf("attempt %d came %v after the previous one: a tight retry loop", i, gap)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	tr := presence.New(presence.Options{})
	good := Config{JID: jid.MustParse("p.localhost"), Secret: "s", Addr: "127.0.0.1:5347", Tracker: tr}
	for name, mutate := range map[string]func(*Config){
		"JID": func(c *Config) { c.JID = jid.JID{} }, "Secret": func(c *Config) { c.Secret = "" },
		"Addr": func(c *Config) { c.Addr = "" }, "Tracker": func(c *Config) { c.Tracker = nil },
	} {
		cfg := good
		mutate(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("missing %s: err = %v", name, err)
		}
	}
}

// logBuffer collects log output for assertions; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Count says how many times s was logged.
func (l *logBuffer) Count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func TestLinkGraceDropsGhosts(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	tr, _ := startComponent(t, srv, Config{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, LinkGrace: 100 * time.Millisecond})
	conn := srv.next(t)
	io.WriteString(conn, `<presence from='carol@localhost/pc'/>`)
	waitFor(t, "carol online", func() bool { u, _ := tr.Get("carol@localhost"); return u.Online })
	// The server goes away for good.
	srv.ln.Close()
	conn.Close()
	_, _, sub := tr.Subscribe(presence.Filter{}, 0)
	buf := make([]presence.Event, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sub.Read(ctx, buf); err != nil || buf[0].Kind != presence.EventOffline || buf[0].Reason != presence.ReasonServer {
		t.Fatalf("with the server gone: %+v, %v; want carol offline with reason server", buf[0], err)
	}
}

// A server that stops reading: the handler blocks writing replies while
// holding the session's output lock, and shutdown then blocks in s.Close.
func TestShutdownWhenServerStopsReading(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	tr := presence.New(presence.Options{})
	c, err := New(Config{JID: jid.MustParse("presence.localhost"), Secret: "secret", Addr: srv.ln.Addr().String(),
		Tracker: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx) }()
	fc := srv.next(t)
	var written atomic.Int64
	go func() {
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(fc, `<presence from='user%d@localhost' to='presence.localhost' type='subscribe'/>`, i); err != nil {
				return
			}
			written.Add(1)
		}
	}()
	// The component's answers (subscribed, subscribe) fill its send buffer
	// once the server stops reading: then it stops reading too, and the
	// writes above stall.
	poll.True(t, "the component to stall on its full send buffer", 10*time.Second, func() bool {
		n := written.Load()
		time.Sleep(50 * time.Millisecond)
		return n > 0 && written.Load() == n
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		fc.Close()
		t.Fatal("Serve did not return 5s after ctx was cancelled")
	}
}

// A server that accepts the handshake and then drops every link at once
// (e.g. two instances kicking each other with conflict_behaviour=kick_old):
// each drop restarts the grace timer and no resync ever completes, so ghosts
// stay online forever.
func TestFlappingLinkLeavesNoGhosts(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	tr, _ := startComponent(t, srv, Config{MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		LinkGrace: 100 * time.Millisecond, ProbeWait: 100 * time.Millisecond})
	conn := srv.next(t)
	io.WriteString(conn, `<presence from='carol@localhost/pc'/>`)
	waitFor(t, "carol online", func() bool { u, _ := tr.Get("carol@localhost"); return u.Online })
	conn.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case c := <-srv.conns:
				time.Sleep(10 * time.Millisecond)
				c.Close()
			case <-stop:
				return
			}
		}
	}()
	waitFor(t, "carol offline while the link never stays up", func() bool { u, _ := tr.Get("carol@localhost"); return !u.Online })
}

func TestBadIQKeepsTheStream(t *testing.T) {
	srv := newFakeServer(t, "secret", false)
	_, c := startComponent(t, srv, Config{MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, ProbeWait: time.Hour})
	conn := srv.next(t)
	io.WriteString(conn, `<iq from='a@localhost/r' to='presence.localhost' id='t1' type='get'>x<ping xmlns='urn:xmpp:ping'/></iq>`)
	io.WriteString(conn, `<iq from='a@localhost/r' to='presence.localhost' id='t2' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`)
	if got := conn.read(t); !strings.Contains(got, "id='t1'") || !strings.Contains(got, "bad-request") {
		t.Fatalf("first reply %s", got)
	}
	if got := conn.read(t); !strings.Contains(got, "id='t2'") || !strings.Contains(got, "type='result'") {
		t.Fatalf("second reply %s: the stream must go on after a bad IQ", got)
	}
	if c.connects.Load() != 1 {
		t.Fatalf("Connects = %d: the bad IQ ended the stream", c.connects.Load())
	}
}

func dialRaw(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }
