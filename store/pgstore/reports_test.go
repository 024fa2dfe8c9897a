//go:build integration

package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/presenced/presenced/store/pgstore"
)

// TestReports checks every reporting view of docs/reporting.md against
// sessions whose answers are known by hand.
func TestReports(t *testing.T) {
	s := open(t, newDB(t, adminURL), pgstore.Config{})
	defer s.Close()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.Pool().Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ts := func(v string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", v)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	session := func(user, res, from, to string) {
		var end any
		if to != "" {
			end = ts(to)
		}
		exec(`INSERT INTO presence_sessions (user_jid, resource, started_at, ended_at, end_reason) VALUES ($1, $2, $3, $4, 'client')`,
			user, res, ts(from), end)
	}
	// alice: two devices that overlap, 10:00-13:00 in all.
	session("alice@x", "pc", "2026-11-01 10:00", "2026-11-01 12:00")
	session("alice@x", "phone", "2026-11-01 11:00", "2026-11-01 13:00")
	// erin: inside alice's time: two users at once at 11:30.
	session("erin@x", "pc", "2026-11-01 11:30", "2026-11-01 11:45")
	// bob: across midnight.
	session("bob@x", "pc", "2026-11-01 23:00", "2026-11-02 01:00")
	// carol: half an hour; dave: online since, still.
	session("carol@x", "pc", "2026-11-02 09:00", "2026-11-02 09:30")
	exec(`INSERT INTO presence_sessions (user_jid, resource, started_at) VALUES ('dave@x', 'pc', $1)`, ts("2026-11-02 10:00"))
	exec(`INSERT INTO presence_current (user_jid, resource, show, status, priority, since) VALUES
		('dave@x', 'pc', 'away', 'lunch', 5, $1), ('dave@x', 'phone', '', '', 1, $1)`, ts("2026-11-02 10:00"))
	exec(`INSERT INTO presence_users (user_jid, online, last_seen, last_show, last_status) VALUES
		('alice@x', false, $1, '', 'bye'), ('zed@x', false, now() - interval '1 hour', '', ''), ('dave@x', true, NULL, '', '')`,
		ts("2026-11-01 13:00"))

	rows := func(q string) string {
		t.Helper()
		r, err := s.Pool().Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			vals, err := r.Values()
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, v := range vals {
				switch v := v.(type) {
				case time.Time:
					parts = append(parts, v.UTC().Format("01-02 15:04"))
				default:
					parts = append(parts, fmt.Sprint(v))
				}
			}
			out = append(out, strings.Join(parts, " "))
		}
		return strings.Join(out, "; ")
	}
	tests := []struct{ name, query, want string }{
		{"who is online now",
			`SELECT user_jid, top_resource, show, resources FROM presence_online_now`,
			"dave@x pc away 2"},
		{"time online per user per day",
			`SELECT day, user_jid, extract(epoch FROM online)::int / 60 FROM presence_time_online_daily
			 WHERE day <= '2026-11-02' AND user_jid <> 'dave@x' ORDER BY day, user_jid`,
			"11-01 00:00 alice@x 180; 11-01 00:00 bob@x 60; 11-01 00:00 erin@x 15; 11-02 00:00 bob@x 60; 11-02 00:00 carol@x 30"},
		{"daily active users",
			`SELECT day, users FROM presence_daily_active_users WHERE day <= '2026-11-02' ORDER BY day`,
			"11-01 00:00 3; 11-02 00:00 3"},
		{"peak concurrent users per hour",
			`SELECT hour, peak FROM presence_peak_concurrent_hourly
			 WHERE hour IN ('2026-11-01 09:00Z', '2026-11-01 10:00Z', '2026-11-01 11:00Z', '2026-11-01 13:00Z', '2026-11-01 23:00Z', '2026-11-02 00:00Z', '2026-11-02 10:00Z')
			 ORDER BY hour`,
			"11-01 10:00 1; 11-01 11:00 2; 11-01 13:00 0; 11-01 23:00 1; 11-02 00:00 1; 11-02 10:00 1"}, // alice left at 13:00 sharp
		{"users not seen for 7 days",
			`SELECT user_jid FROM presence_users_not_seen(7)`,
			"alice@x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rows(tt.query); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
