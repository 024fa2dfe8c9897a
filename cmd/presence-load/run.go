package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// run does one measured run: connect the subscribers, log the users in,
// run the load for -duration, wait for the last frames, report, and log
// everybody out.
func run(ctx context.Context, o options) error {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	raiseFileLimit()
	start := time.Now()
	mono := func() int64 { return int64(time.Since(start)) }
	us, err := newUsers(&o, mono)
	if err != nil {
		return err
	}
	lat := newLatency()
	rep := &report{o: &o, us: us, lat: lat}

	// 1. Subscribers first: their snapshots are small while nobody is online.
	var ss *streams
	if o.Subscribers > 0 {
		if ss, err = newStreams(ctx, &o, mono, us.index, lat); err != nil {
			return err
		}
		defer ss.close()
		rep.ss = ss
		t0 := time.Now()
		logf("connecting %d subscribers to %s, %d at a time", o.Subscribers, o.Stream, o.ConnectConcurrency)
		ss.connectAll(ctx)
		waitUntil(ctx, time.Minute, func() bool { return ss.st.ready.Load() >= int64(o.Subscribers) })
		rep.subsReady = ss.st.ready.Load()
		logf("%d of %d subscribers have their snapshot (%.1fs, %d failed attempts)",
			rep.subsReady, o.Subscribers, time.Since(t0).Seconds(), ss.st.connectFails.Load())
		if rep.subsReady == 0 {
			return errors.New("no subscriber got a snapshot: is presenced listening at -stream? (see the errors above)")
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 2. Log every user in (each one's initial presence is a change).
	t0 := time.Now()
	logf("logging in %d users at %s, %d at a time", o.Users, o.C2S, o.LoginConcurrency)
	stop := every(o.Progress, func() {
		logf("login: %d of %d logged in, %d failed attempts, %.0f/s", us.st.loginOK.Load(), o.Users,
			us.st.loginFail.Load(), float64(us.st.loginOK.Load())/time.Since(t0).Seconds())
	})
	us.loginAll(ctx)
	stop()
	rep.loginDur = time.Since(t0)
	rep.loggedIn = us.st.loginOK.Load()
	logf("logged in %d of %d users in %.1fs (%.0f/s), %d failed attempts", rep.loggedIn, o.Users,
		rep.loginDur.Seconds(), float64(rep.loggedIn)/rep.loginDur.Seconds(), us.st.loginFail.Load())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if rep.loggedIn == 0 {
		return errors.New("no user could log in: check -c2s, -domain, -user and -password")
	}
	if ss != nil {
		want := us.st.sent() * ss.st.ready.Load()
		settle(ctx, ss.st.frames.Load, want, 3*time.Second, time.Minute)
		logf("the logins' frames arrived: %d of %d", ss.st.frames.Load(), want)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 3. The load window.
	rep.begin(ctx)
	logf("load: %.0f changes/s (churn %.2f) for %v, %d users, %d subscribers", o.Rate, o.Churn, o.Duration, rep.loggedIn, rep.subsReady)
	wctx, cancel := context.WithTimeout(ctx, o.Duration)
	stop = every(o.Progress, rep.progress)
	us.drive(wctx, ctx)
	cancel()
	rep.endWindow()
	if ss != nil && ctx.Err() == nil {
		want := rep.sentWindow() * rep.subsReady
		settle(ctx, lat.inWindow.Load, want, 3*time.Second, o.Drain)
	}
	stop()
	rep.end(ctx)

	// 4. Report, then clean up (streams first: the logouts' frames are
	// not measured).
	rep.print(o.Out)
	if ss != nil {
		ss.close()
	}
	logf("logging out")
	us.logoutAll()
	return nil
}

// every calls f every d until the returned stop is called.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			return false
		}
	}
	return true
}

// settle waits until get() reaches want, or stays the same for quiet, or
// limit passes.
func settle(ctx context.Context, get func() int64, want int64, quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, since := get(), time.Now()
	for {
		v := get()
		if v >= want || time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
		if v != last {
			last, since = v, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}

// counts are the counters read at the edges of the window.
type counts struct {
	at                                                           time.Time
	status, logins, logouts, sent                                int64
	sendErr, disconnects, skipped, loginFail                     int64
	frames, msgs, bytes, resyncs, gaps, wsDisc, stale, errFrames int64
	lat                                                          histSnap
}

type report struct {
	o         *options
	us        *users
	ss        *streams
	lat       *latency
	subsReady int64
	loggedIn  int64
	loginDur  time.Duration

	c0, c1, c2       counts // window start, window end, end of the drain
	cpu0, cpu1, cpu2 cpuSample
	prom0, prom2     promCounts
	last             counts    // at the previous progress line
	lastCPU          cpuSample // likewise
}

func (r *report) read() counts {
	st := r.us.st
	c := counts{at: time.Now(), status: st.statusSent.Load(), logins: st.loginsSent.Load(), logouts: st.logouts.Load(),
		sendErr: st.sendErr.Load(), disconnects: st.disconnects.Load(), skipped: st.skipped.Load(), loginFail: st.loginFail.Load()}
	c.sent = c.status + c.logins + c.logouts
	if r.ss != nil {
		s := r.ss.st
		c.frames, c.msgs, c.bytes, c.resyncs = s.frames.Load(), s.messages.Load(), s.bytes.Load(), s.resyncs.Load()
		c.gaps, c.wsDisc, c.stale, c.errFrames = s.gaps.Load(), s.disconnects.Load(), s.stale.Load(), s.errorFrames.Load()
	}
	c.lat = r.lat.all()
	return c
}

func (r *report) begin(ctx context.Context) {
	r.prom0 = scrape(ctx, r.o.Metrics)
	r.cpu0 = sampleCPU(r.o.CPU)
	r.c0 = r.read()
	r.last, r.lastCPU = r.c0, r.cpu0
	r.lat.windowStart.Store(r.us.mono())
}

func (r *report) endWindow() {
	r.lat.windowEnd.Store(r.us.mono())
	r.cpu1 = sampleCPU(r.o.CPU)
	r.c1 = r.read()
}

func (r *report) end(ctx context.Context) {
	r.cpu2 = sampleCPU(r.o.CPU)
	r.c2 = r.read()
	r.prom2 = scrape(ctx, r.o.Metrics)
}

func (r *report) sentWindow() int64 { return r.c1.sent - r.c0.sent }

// progress prints one line about the interval since the previous one.
func (r *report) progress() {
	c := r.read()
	cpu := sampleCPU(r.o.CPU)
	dt := c.at.Sub(r.last.at).Seconds()
	iv := c.lat.since(r.last.lat)
	behind := (c.sent-r.c0.sent)*r.subsReady - int64(c.lat.total())
	var cores strings.Builder
	var known float64
	for _, t := range append(r.o.CPU, cpuTarget{name: "load"}) {
		v := cpuSeconds(r.lastCPU, cpu, t.name)
		known += v
		fmt.Fprintf(&cores, " %s=%.2f", t.name, v/dt)
	}
	fmt.Fprintf(&cores, " other=%.2f", max(cpuSeconds(r.lastCPU, cpu, "machine")-known, 0)/dt)
	logf("t=%.0fs online=%d sent/s=%.0f frames/s=%s p50=%sms p99=%sms max=%sms behind=%d send_err=%d xmpp_disc=%d ws_disc=%d resyncs=%d skipped=%d cores:%s",
		c.at.Sub(r.c0.at).Seconds(), r.us.online(), float64(c.sent-r.last.sent)/dt, human(float64(c.frames-r.last.frames)/dt),
		ms(iv.pct(0.5)), ms(iv.pct(0.99)), ms(time.Duration(c.lat.max)), max(behind, 0),
		c.sendErr-r.c0.sendErr, c.disconnects-r.c0.disconnects, c.wsDisc-r.c0.wsDisc, c.resyncs-r.c0.resyncs, c.skipped-r.c0.skipped, cores.String())
	r.last, r.lastCPU = c, cpu
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

type kv struct{ k, v string }

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func (r *report) print(w io.Writer) {
	o, a, b, e := r.o, r.c0, r.c1, r.c2
	win := b.at.Sub(a.at).Seconds()
	drain := e.at.Sub(b.at).Seconds()
	sent := b.sent - a.sent
	subs := r.subsReady
	expected := sent * subs
	lat := e.lat.since(a.lat)
	matched := int64(lat.total())
	st := r.us.st
	loginH := st.loginTime.snap()
	statusH := r.lat.status.snap()
	loginLat := r.lat.login.snap()
	logoutH := r.lat.logout.snap()

	out := []kv{
		{"users", itoa(int64(o.Users))}, {"logged_in", itoa(r.loggedIn)}, {"login_s", f1(r.loginDur.Seconds())},
		{"logins_per_s", f1(float64(r.loggedIn) / r.loginDur.Seconds())}, {"login_p50_ms", ms(loginH.pct(0.5))},
		{"login_p99_ms", ms(loginH.pct(0.99))}, {"login_fail", itoa(e.loginFail)},
		{"subscribers", itoa(int64(o.Subscribers))}, {"subscribers_ready", itoa(subs)},
		{"rate", f1(o.Rate)}, {"churn", f2(o.Churn)}, {"window_s", f1(win)},
		{"sent", itoa(sent)}, {"sent_per_s", f1(float64(sent) / win)},
		{"status_changes", itoa(b.status - a.status)}, {"logouts", itoa(b.logouts - a.logouts)}, {"logins", itoa(b.logins - a.logins)},
		{"send_err", itoa(e.sendErr - a.sendErr)}, {"xmpp_disconnects", itoa(e.disconnects - a.disconnects)},
		{"login_fail_window", itoa(b.loginFail - a.loginFail)}, {"skipped", itoa(b.skipped - a.skipped)},
		{"frames_per_s", f1(float64(b.frames-a.frames) / win)}, {"messages_per_s", f1(float64(b.msgs-a.msgs) / win)},
		{"expected_frames", itoa(expected)}, {"matched_frames", itoa(matched)},
		{"delivered", strconv.FormatFloat(float64(matched)/float64(max(expected, 1)), 'f', 5, 64)},
		{"drain_s", f1(drain)},
		{"ws_disconnects", itoa(e.wsDisc - a.wsDisc)}, {"ws_resyncs", itoa(e.resyncs - a.resyncs)},
		{"seq_gaps", itoa(e.gaps - a.gaps)}, {"ws_error_frames", itoa(e.errFrames - a.errFrames)},
		{"unmatched_frames", itoa(e.stale - a.stale)},
		{"p50_ms", ms(lat.pct(0.5))}, {"p90_ms", ms(lat.pct(0.9))}, {"p99_ms", ms(lat.pct(0.99))}, {"max_ms", ms(time.Duration(lat.max))},
		{"status_p50_ms", ms(statusH.pct(0.5))}, {"status_p99_ms", ms(statusH.pct(0.99))},
		{"login_change_p50_ms", ms(loginLat.pct(0.5))}, {"login_change_p99_ms", ms(loginLat.pct(0.99))},
		{"logout_p50_ms", ms(logoutH.pct(0.5))}, {"logout_p99_ms", ms(logoutH.pct(0.99))},
	}
	if r.ss != nil {
		r.ss.st.mu.Lock()
		codes := make([]int, 0, len(r.ss.st.closes))
		for c := range r.ss.st.closes {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		var parts []string
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%d:%d", c, r.ss.st.closes[c]))
		}
		r.ss.st.mu.Unlock()
		if len(parts) > 0 {
			out = append(out, kv{"ws_close_codes", strings.Join(parts, ",")})
		}
	}
	if r.prom0.ok && r.prom2.ok {
		out = append(out, kv{"presenced_presence_in", itoa(int64(r.prom2.presenceIn - r.prom0.presenceIn))},
			kv{"presenced_events", itoa(int64(r.prom2.events - r.prom0.events))},
			kv{"presenced_limited", itoa(int64(r.prom2.limited - r.prom0.limited))})
	}
	cpuWall := e.at.Sub(a.at).Seconds()
	names := []string{}
	for _, t := range o.CPU {
		names = append(names, t.name)
	}
	names = append(names, "load")
	cpu := map[string]float64{}
	out = append(out, kv{"cpu_interval_s", f1(cpuWall)})
	var known, knownWin float64
	for _, n := range names {
		cpu[n] = cpuSeconds(r.cpu0, r.cpu2, n)
		cw := cpuSeconds(r.cpu0, r.cpu1, n)
		known, knownWin = known+cpu[n], knownWin+cw
		out = append(out, kv{"cpu_" + n + "_s", f2(cpu[n])}, kv{"cpu_" + n + "_window_s", f2(cw)})
		if n != "load" {
			out = append(out, kv{n + "_writes_per_s", f1(float64(growth(r.cpu0, r.cpu1, n+".writes")) / win)})
		}
	}
	// Everything else the machine ran meanwhile: what disturbed the run.
	names = append(names, "other")
	cpu["other"] = max(cpuSeconds(r.cpu0, r.cpu2, "machine")-known, 0)
	out = append(out, kv{"cpu_other_s", f2(cpu["other"])},
		kv{"cpu_other_window_s", f2(max(cpuSeconds(r.cpu0, r.cpu1, "machine")-knownWin, 0))})
	ratio := ""
	if p, ok := cpu["presenced"]; ok {
		if ej, ok := cpu["ejabberd"]; ok && ej > 0 {
			ratio = strconv.FormatFloat(p/ej, 'f', 3, 64)
			out = append(out, kv{"cpu_ratio_presenced_ejabberd", ratio})
		}
	}

	// One line of key=value pairs, for scripts.
	var line strings.Builder
	for i, p := range out {
		if i > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(p.k + "=" + p.v)
	}
	fmt.Fprintln(w, line.String())

	// And a table, for people.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nusers\t%d logged in of %d in %.1fs (%.0f/s); login p50 %s ms, p99 %s ms; %d failed attempts\n",
		r.loggedIn, o.Users, r.loginDur.Seconds(), float64(r.loggedIn)/r.loginDur.Seconds(), ms(loginH.pct(0.5)), ms(loginH.pct(0.99)), e.loginFail)
	fmt.Fprintf(tw, "subscribers\t%d of %d\n", subs, o.Subscribers)
	fmt.Fprintf(tw, "load window\t%.1fs at -rate %.0f, churn %.2f\n", win, o.Rate, o.Churn)
	fmt.Fprintf(tw, "changes sent\t%d (%.1f/s): %d status, %d logouts, %d logins\n", sent, float64(sent)/win,
		b.status-a.status, b.logouts-a.logouts, b.logins-a.logins)
	fmt.Fprintf(tw, "XMPP errors\t%d send errors, %d disconnects, %d failed logins, %d actions skipped (no idle user)\n",
		e.sendErr-a.sendErr, e.disconnects-a.disconnects, b.loginFail-a.loginFail, b.skipped-a.skipped)
	if r.ss != nil {
		fmt.Fprintf(tw, "frames received\t%.0f/s in %.0f messages/s (%.1f MB/s)\n", float64(b.frames-a.frames)/win,
			float64(b.msgs-a.msgs)/win, float64(b.bytes-a.bytes)/win/1e6)
		fmt.Fprintf(tw, "delivered\t%d of %d expected (%.3f%%), last one %.1fs after the window\n", matched, expected,
			100*float64(matched)/float64(max(expected, 1)), drain)
		fmt.Fprintf(tw, "stream errors\t%d disconnects, %d resyncs, %d changes missed (seq gaps), %d error frames\n",
			e.wsDisc-a.wsDisc, e.resyncs-a.resyncs, e.gaps-a.gaps, e.errFrames-a.errFrames)
		fmt.Fprintf(tw, "latency, send to frame\tp50\tp90\tp99\tmax\tsamples\n")
		for _, row := range []struct {
			name string
			h    histSnap
		}{{"  all", lat}, {"  status change", statusH}, {"  login", loginLat}, {"  logout", logoutH}} {
			fmt.Fprintf(tw, "%s\t%s ms\t%s ms\t%s ms\t%s ms\t%d\n", row.name, ms(row.h.pct(0.5)), ms(row.h.pct(0.9)),
				ms(row.h.pct(0.99)), ms(time.Duration(row.h.max)), row.h.total())
		}
	}
	if r.prom0.ok && r.prom2.ok {
		fmt.Fprintf(tw, "presenced received\t%.0f presence stanzas, published %.0f changes (%.0f held by its flap limit)\n",
			r.prom2.presenceIn-r.prom0.presenceIn, r.prom2.events-r.prom0.events, r.prom2.limited-r.prom0.limited)
	}
	fmt.Fprintf(tw, "CPU over %.1fs\t(load window and drain)\n", cpuWall)
	for _, n := range names[:len(names)-1] {
		fmt.Fprintf(tw, "  %s\t%.2f s (%.2f cores); window alone %.2f s", n, cpu[n], cpu[n]/cpuWall, cpuSeconds(r.cpu0, r.cpu1, n))
		if n != "load" {
			fmt.Fprintf(tw, "; %.0f write(2)/s", float64(growth(r.cpu0, r.cpu1, n+".writes"))/win)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "  other processes\t%.2f s (%.2f cores): the rest of the machine's busy time\n", cpu["other"], cpu["other"]/cpuWall)
	if ratio != "" {
		fmt.Fprintf(tw, "  presenced / ejabberd\t%s\n", ratio)
	}
	tw.Flush()
}
