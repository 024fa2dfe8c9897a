//go:build integration

package pgstore_test

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
	"github.com/presenced/presenced/store/pgstore"
	"github.com/presenced/presenced/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, url string, cfg pgstore.Config) *pgstore.Store {
	t.Helper()
	cfg.URL, cfg.Logger = url, quiet
	s, err := pgstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, newDB(t, adminURL), pgstore.Config{}) })
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	url := newDB(t, adminURL)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.Open(context.Background(), pgstore.Config{URL: url, Logger: quiet})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, url, pgstore.Config{})
	defer s.Close()
	var n, max int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*), max(version) FROM presenced_schema`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != pgstore.SchemaVersion() || max != pgstore.SchemaVersion() {
		t.Fatalf("presenced_schema has %d rows up to %d, want %d", n, max, pgstore.SchemaVersion())
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	url := newDB(t, adminURL)
	s := open(t, url, pgstore.Config{})
	if _, err := s.Pool().Exec(context.Background(), `INSERT INTO presenced_schema (version, name) VALUES (999, 'from the future')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := pgstore.Open(context.Background(), pgstore.Config{URL: url, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "newer than this presenced") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

func TestBadConnectionStrings(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"postgres://user:secret@127.0.0.1:notaport/db", "connection string is invalid"},
		{"postgres://postgres@127.0.0.1:1/db?connect_timeout=2", "cannot reach PostgreSQL at 127.0.0.1:1"},
	} {
		_, err := pgstore.Open(context.Background(), pgstore.Config{URL: tt.url, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, want %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }

// mirror follows the tracker's feed from now on, as store.Writer does;
// calling the returned function hands what was published to the store and
// flushes it. (The Writer itself starts with a snapshot, which would race
// with the test's first updates.)
func mirror(t *testing.T, tr *presence.Tracker, s *pgstore.Store) (sync func()) {
	_, _, sub := tr.Subscribe(presence.Filter{}, 0)
	return func() {
		t.Helper()
		buf := make([]presence.Event, 1024)
		for {
			n, err := sub.TryRead(buf)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			s.Apply(context.Background(), buf[:n])
		}
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHistorySessionsAndLastActivity(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := open(t, newDB(t, adminURL), pgstore.Config{Registerer: reg})
	defer s.Close()
	clk := &stepClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clk})
	stop := mirror(t, tr, s)
	tr.Apply(presence.Update{User: "a@x", Resource: "pc", Available: true, Status: "hi"})
	clk.t = clk.t.Add(time.Minute)
	tr.Apply(presence.Update{User: "a@x", Resource: "pc", Available: true, Show: presence.ShowAway, Status: "lunch"})
	clk.t = clk.t.Add(time.Minute)
	tr.Apply(presence.Update{User: "a@x", Resource: "pc", Reason: presence.ReasonTimeout})
	stop()
	ctx := context.Background()
	var events []string
	rows, _ := s.Pool().Query(ctx, `SELECT event || ':' || show || ':' || coalesce(reason, '') FROM presence_history ORDER BY seq`)
	for rows.Next() {
		var e string
		rows.Scan(&e)
		events = append(events, e)
	}
	if strings.Join(events, " ") != "online:: changed:away: offline:away:timeout" {
		t.Fatalf("history %v", events)
	}
	if n, err := testutil.GatherAndCount(reg, "presence_store_flush_duration_seconds", "presence_store_queue_events"); err != nil || n != 2 {
		t.Fatalf("store metrics: %d series, %v", n, err)
	}
	hist, err := s.History(ctx, "a@x", clk.t.Add(-time.Hour), clk.t.Add(time.Second), 10)
	if err != nil || len(hist) != 3 || hist[2].Reason != "timeout" || hist[1].Status != "lunch" {
		t.Fatalf("History = %+v, %v", hist, err)
	}
	var start, end time.Time
	var reason string
	if err := s.Pool().QueryRow(ctx, `SELECT started_at, ended_at, end_reason FROM presence_sessions`).Scan(&start, &end, &reason); err != nil {
		t.Fatal(err)
	}
	if end.Sub(start) != 2*time.Minute || reason != "timeout" {
		t.Fatalf("session %v..%v %s", start, end, reason)
	}
	var seen time.Time
	var status string
	if err := s.Pool().QueryRow(ctx, `SELECT last_seen, last_status FROM presence_users WHERE user_jid = 'a@x'`).Scan(&seen, &status); err != nil {
		t.Fatal(err)
	}
	if !seen.Equal(clk.t) || status != "lunch" {
		t.Fatalf("last activity %v %q", seen, status)
	}
}

func TestRestartRestoresAndClosesSessions(t *testing.T) {
	url := newDB(t, adminURL)
	s := open(t, url, pgstore.Config{})
	clk := &stepClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tr := presence.New(presence.Options{Clock: clk})
	stop := mirror(t, tr, s)
	tr.Apply(presence.Update{User: "a@x", Resource: "pc", Available: true, Priority: 5})
	tr.Apply(presence.Update{User: "b@x", Resource: "phone", Available: true, Show: presence.ShowDND})
	stop()
	s.Close() // presenced stops (or crashes after its last flush)

	s = open(t, url, pgstore.Config{})
	defer s.Close()
	users, err := s.Load(context.Background())
	if err != nil || len(users) != 2 || !users[0].Online || users[1].Show != presence.ShowDND {
		t.Fatalf("Load = %+v, %v", users, err)
	}
	tr2 := presence.New(presence.Options{Clock: clk})
	tr2.Restore(users)
	stop = mirror(t, tr2, s)
	// The server confirms a@x only; b@x's session is closed as restart.
	clk.t = clk.t.Add(time.Minute)
	tr2.Confirm("a@x", "pc")
	tr2.Expire(clk.t, presence.ReasonReconcile)
	stop()
	var open, closed int
	var reason string
	s.Pool().QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE ended_at IS NULL), count(*) FILTER (WHERE ended_at IS NOT NULL),
		coalesce(max(end_reason), '') FROM presence_sessions`).Scan(&open, &closed, &reason)
	if open != 1 || closed != 1 || reason != "restart" {
		t.Fatalf("sessions: %d open, %d closed (%s); want a@x open, b@x closed with reason restart", open, closed, reason)
	}
}

func TestRetention(t *testing.T) {
	s := open(t, newDB(t, adminURL), pgstore.Config{})
	defer s.Close()
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	if _, err := s.Pool().Exec(ctx, `INSERT INTO presence_history (at, seq, user_jid, resource, event, show, status, priority)
		SELECT $1::timestamptz + (i || ' seconds')::interval, i, 'a@x', 'r', 'changed', '', '', 0 FROM generate_series(1, 25000) i`, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `INSERT INTO presence_history (at, seq, user_jid, resource, event, show, status, priority)
		VALUES (now(), 0, 'a@x', 'r', 'changed', '', '', 0)`); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteOlderThan(ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 25000 {
		t.Fatalf("DeleteOlderThan = %d, %v", n, err)
	}
	var left int
	s.Pool().QueryRow(ctx, `SELECT count(*) FROM presence_history`).Scan(&left)
	if left != 1 {
		t.Fatalf("%d rows left, want the recent one", left)
	}
}
