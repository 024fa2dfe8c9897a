package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	t.Setenv("XMPP_C2S_ADDR", "")
	t.Setenv("XMPP_DOMAIN", "")
	t.Setenv("PRESENCE_LOAD_TOKEN", "")
	base := []string{"-c2s", "127.0.0.1:5222"}
	for _, tt := range []struct {
		name  string
		args  []string
		err   string // a part of the error; "" none
		check func(o options) bool
	}{
		{"defaults", base, "", func(o options) bool {
			return o.C2S == "127.0.0.1:5222" && o.Domain == "localhost" && o.Users == 100 && o.UserStart == 1 &&
				o.UserPattern == "user%d" && o.PasswordPattern == "pass%d" && o.Rate == 100 && o.Churn == 0.05 &&
				o.Offline == 5*time.Second && o.Duration == time.Minute && o.Subscribers == 10 &&
				o.Stream == "ws://127.0.0.1:8080/v1/stream" && o.LoginConcurrency == 32 && o.ConnectConcurrency == 16 &&
				o.Readers == 1 && o.Progress == 5*time.Second && o.Drain == 15*time.Second && o.CPU == nil && o.Metrics == "" && o.Out != nil
		}},
		{"the documented run", append(base, strings.Fields("-domain localhost -users 2000 -user load%d -password load%d-pw -rate 1000 -churn 0.05 "+
			"-duration 60s -subscribers 1000 -stream ws://127.0.0.1:8080/v1/stream -metrics http://127.0.0.1:9464/metrics -cpu presenced=10,ejabberd=20,postgres=30")...), "",
			func(o options) bool {
				return o.Users == 2000 && o.PasswordPattern == "load%d-pw" && o.Rate == 1000 && o.Subscribers == 1000 &&
					len(o.CPU) == 3 && o.CPU[1] == (cpuTarget{"ejabberd", 20}) && o.Metrics == "http://127.0.0.1:9464/metrics"
			}},
		{"no c2s", nil, "-c2s", nil},
		{"no users", append(base, "-users", "0"), "-users", nil},
		{"one user needs no %d", append(base, "-users", "1", "-user", "alice"), "", func(o options) bool { return o.UserPattern == "alice" }},
		{"several users need %d", append(base, "-users", "2", "-user", "alice"), "%d", nil},
		{"rate", append(base, "-rate", "0"), "-rate", nil},
		{"churn", append(base, "-churn", "0.6"), "-churn", nil},
		{"negative churn", append(base, "-churn", "-0.1"), "-churn", nil},
		{"duration", append(base, "-duration", "0s"), "-duration", nil},
		{"drain", append(base, "-drain", "-1s"), "-drain", nil},
		{"no subscribers is fine", append(base, "-subscribers", "0"), "", func(o options) bool { return o.Subscribers == 0 }},
		{"subscribers", append(base, "-subscribers", "-1"), "-subscribers", nil},
		{"readers", append(base, "-readers", "0"), "-readers", nil},
		{"login rate", append(base, "-login-rate", "-1"), "-login-rate", nil},
		{"cpu", append(base, "-cpu", "presenced"), "name=pid", nil},
		{"extra arguments", append(base, "stray"), "unexpected arguments: stray", nil},
		{"unknown flag", append(base, "-nope"), "-nope", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one about %s", err, tt.err)
			case tt.check != nil && !tt.check(o):
				t.Fatalf("options %+v", o)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		t.Setenv("XMPP_C2S_ADDR", "xmpp:5222")
		t.Setenv("XMPP_DOMAIN", "example.org")
		t.Setenv("PRESENCE_LOAD_TOKEN", "tok")
		o, err := parseFlags(nil, io.Discard)
		if err != nil || o.C2S != "xmpp:5222" || o.Domain != "example.org" || o.Token != "tok" {
			t.Fatalf("%+v, %v", o, err)
		}
	})
	t.Run("help", func(t *testing.T) {
		var out bytes.Buffer
		if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "usage: presence-load") {
			t.Fatalf("%v: %s", err, out.String())
		}
	})
}

func TestNewUsers(t *testing.T) {
	o := &options{Users: 3, UserStart: 7, UserPattern: "load%d", PasswordPattern: "load%d-pw", Domain: "Example.ORG", LoginConcurrency: 1}
	us, err := newUsers(o, func() int64 { return 42 })
	if err != nil {
		t.Fatal(err)
	}
	if len(us.all) != 3 || us.all[2].jid.String() != "load9@example.org" || us.all[2].pass != "load9-pw" {
		t.Fatalf("users %v %s", us.all[2].jid, us.all[2].pass)
	}
	if i, ok := us.index.byJID["load8@example.org"]; !ok || i != 1 || len(us.index.logoutAt) != 3 {
		t.Fatalf("index %v", us.index.byJID)
	}
	if m, sent := us.marker(); m != "pl/1/42" || sent != 42 {
		t.Fatalf("marker %s %d", m, sent)
	}
	if m, _ := us.marker(); m != "pl/2/42" {
		t.Fatalf("second marker %s", m)
	}
	if got, ok := parseMarker([]byte("pl/2/42")); !ok || got != 42 {
		t.Fatal("a marker does not parse back")
	}
	for _, bad := range []options{
		{Users: 2, UserStart: 1, UserPattern: "same", Domain: "x"},
		{Users: 1, UserStart: 1, UserPattern: "a b%d", Domain: "x"},
		{Users: 1, UserStart: 1, UserPattern: "u%d", Domain: ""},
	} {
		if _, err := newUsers(&bad, nil); err == nil {
			t.Errorf("newUsers(%+v): no error", bad)
		}
	}
}

func TestExpand(t *testing.T) {
	if got := expand("u%d-%d", 12); got != "u12-12" {
		t.Fatal(got)
	}
	if got := expand("plain", 3); got != "plain" {
		t.Fatal(got)
	}
}

func TestSettle(t *testing.T) {
	ctx := context.Background()
	var v atomic.Int64
	start := time.Now()
	settle(ctx, v.Load, 0, time.Second, time.Second) // reached at once
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("settle waited for a value it had")
	}
	start = time.Now()
	settle(ctx, v.Load, 10, 100*time.Millisecond, 10*time.Second) // stays still: quiet
	if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
		t.Fatalf("settle on a still counter took %v, want about its quiet time", d)
	}
	go func() {
		for range 5 {
			time.Sleep(20 * time.Millisecond)
			v.Add(2)
		}
	}()
	settle(ctx, v.Load, 10, time.Second, 10*time.Second)
	if v.Load() != 10 {
		t.Fatalf("settle returned at %d of 10", v.Load())
	}
	if !waitUntil(ctx, time.Second, func() bool { return true }) || waitUntil(ctx, 50*time.Millisecond, func() bool { return false }) {
		t.Fatal("waitUntil")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if sleepCtx(cctx, time.Hour) {
		t.Fatal("sleepCtx of an ended context slept")
	}
}

func TestEvery(t *testing.T) {
	var n atomic.Int64
	stop := every(10*time.Millisecond, func() { n.Add(1) })
	time.Sleep(100 * time.Millisecond)
	stop()
	k := n.Load()
	if k < 2 {
		t.Fatalf("%d calls in 100 ms every 10 ms", k)
	}
	time.Sleep(30 * time.Millisecond)
	if n.Load() != k {
		t.Fatal("called after stop")
	}
}

func TestHuman(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{{999, "999"}, {12345, "12k"}, {1_234_567, "1.23M"}, {0, "0"}} {
		if got := human(tt.in); got != tt.want {
			t.Errorf("human(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestReportPrint pins the summary's key=value line, which scripts/loadrun
// and the numbers in docs/benchmarks.md read, on a run of known counts.
func TestReportPrint(t *testing.T) {
	o := &options{Users: 10, Subscribers: 2, Rate: 100, Churn: 0.05}
	us := &users{o: o, st: &xmppStats{}}
	lat := newLatency()
	lat.windowStart.Store(1)
	for i := range 100 {
		lat.observe(&lat.status, 1, 1+int64(i+1)*int64(time.Millisecond)) // 1..100 ms
	}
	lat.observe(&lat.logout, 1, 1+int64(250*time.Millisecond))
	us.st.loginTime.record(int64(20 * time.Millisecond))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &report{o: o, us: us, lat: lat, subsReady: 2, loggedIn: 10, loginDur: 2 * time.Second,
		c0: counts{at: t0},
		c1: counts{at: t0.Add(10 * time.Second), status: 90, logouts: 5, logins: 5, sent: 100, frames: 200, msgs: 150, bytes: 30000},
		c2: counts{at: t0.Add(11 * time.Second), status: 90, logouts: 5, logins: 5, sent: 100, frames: 202, lat: lat.all()},
	}
	var out bytes.Buffer
	r.print(&out)
	line, table, _ := strings.Cut(out.String(), "\n")
	for _, kv := range []string{
		"users=10", "logged_in=10", "login_s=2.0", "logins_per_s=5.0", "login_p50_ms=20.0", "subscribers=2", "subscribers_ready=2",
		"window_s=10.0", "sent=100", "sent_per_s=10.0", "status_changes=90", "logouts=5", "logins=5",
		"frames_per_s=20.0", "messages_per_s=15.0", "expected_frames=200", "matched_frames=101", "delivered=0.50500",
		"drain_s=1.0", "p50_ms=51.0", "p99_ms=100", "max_ms=250", "status_p50_ms=50.0", "logout_p50_ms=250",
		"cpu_interval_s=11.0", "cpu_load_s=0.00", "cpu_other_s=0.00",
	} {
		if !strings.Contains(" "+line+" ", " "+kv+" ") {
			t.Errorf("the line lacks %s:\n%s", kv, line)
		}
	}
	if strings.Contains(line, "presenced_presence_in") || strings.Contains(line, "cpu_ratio") {
		t.Errorf("counters of sources not given: %s", line)
	}
	for _, row := range []string{"users", "load window", "changes sent", "CPU over 11.0s"} {
		if !strings.Contains(table, row) {
			t.Errorf("the table lacks %q:\n%s", row, table)
		}
	}
}
