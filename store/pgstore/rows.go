// Rows: the tables' column lists and the conversions between presence
// values and the rows that go into them (and, for statuses, back), shared
// by the pending buffer, the write path, Replace and Load.

package pgstore

import (
	"slices"
	"strings"
	"time"

	"github.com/presenced/presenced/presence"
)

var historyColumns = []string{"at", "seq", "user_jid", "resource", "event", "show", "status", "priority", "reason"}

// historyRow is ev's presence_history row, in historyColumns' order.
func historyRow(ev *presence.Event) []any {
	var reason any
	if ev.Kind == presence.EventOffline {
		reason = string(ev.Reason)
	}
	return []any{ev.Time, int64(ev.Seq), ev.User, ev.Resource.Name, string(ev.Kind),
		string(ev.Resource.Show), ev.Resource.Status, int16(ev.Resource.Priority), reason}
}

var currentColumns = []string{"user_jid", "resource", "show", "status", "statuses", "priority", "idle_since", "since", "expires"}

func currentRow(user string, r *presence.Resource) []any {
	var statuses, idle, expires any
	if len(r.Statuses) > 0 {
		m := make(map[string]string, len(r.Statuses))
		for _, s := range r.Statuses {
			m[s.Lang] = s.Text
		}
		statuses = m
	}
	if !r.Idle.IsZero() {
		idle = r.Idle
	}
	if !r.Expires.IsZero() {
		expires = r.Expires
	}
	return []any{user, r.Name, string(r.Show), r.Status, statuses, int16(r.Priority), idle, r.Since, expires}
}

func fromStatusMap(m map[string]string) []presence.LangStatus {
	if len(m) == 0 {
		return nil
	}
	out := make([]presence.LangStatus, 0, len(m))
	for lang, text := range m {
		out = append(out, presence.LangStatus{Lang: lang, Text: text})
	}
	slices.SortFunc(out, func(a, b presence.LangStatus) int { return strings.Compare(a.Lang, b.Lang) })
	return out
}

func userValues(user string, online bool, lastSeen time.Time, show, status string) []any {
	var seen any
	if !online && !lastSeen.IsZero() {
		seen = lastSeen
	}
	return []any{user, online, seen, show, status}
}
