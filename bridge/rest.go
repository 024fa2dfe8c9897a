package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/presenced/presenced/internal/jidnorm"
	"github.com/presenced/presenced/presence"
)

type accessKey struct{}

// accessOf returns what the request may see (nil: everything).
func accessOf(r *http.Request) Access {
	a, _ := r.Context().Value(accessKey{}).(Access)
	return a
}

// guard checks the query, authenticates and rate-limits a request before
// h runs.
func (b *Bridge) guard(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !checkQuery(w, r, false) {
			return
		}
		a, ok := b.authenticate(w, r)
		if !ok {
			return
		}
		if ok, wait := b.limits.allow(clientKey(r, a)); !ok {
			tooMany(w, wait)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), accessKey{}, a)))
	}
}

// Page size of GET /v1/presence.
const (
	defaultPageSize = 500
	maxPageSize     = 5000
)

// list serves GET /v1/presence: users the token may see, filtered by
// domains, users and show, sorted by JID, a page at a time.
func (b *Bridge) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := filterFromQuery(q, accessOf(r))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPageSize {
			writeError(w, http.StatusBadRequest, "bad_limit", "limit must be 1 to "+strconv.Itoa(maxPageSize))
			return
		}
	}
	var after string
	if c := q.Get("cursor"); c != "" {
		raw, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_cursor", "cursor is not one this server gave")
			return
		}
		after = string(raw)
	}
	// The tracker's index itself, a bounded step at a time under its lock
	// (presence.Tracker.Range): the page costs O(page + log users), holds
	// up updates for microseconds, and takes no View, which would make the
	// updates after it copy the index nodes they touch.
	out := listJSON{Users: []userJSON{}}
	q2 := trackerQuery(f, after)
	q2.Limit = limit + 1 // one more: there is a next page
	out.Seq, err = b.cfg.Tracker.Range(q2, func(u *presence.User) bool {
		if len(out.Users) == limit {
			out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(out.Users[limit-1].JID))
			return false
		}
		out.Users = append(out.Users, toUser(u))
		return true
	})
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// user serves GET /v1/presence/{jid}. A user the token may not see is
// answered like an unknown one.
func (b *Bridge) user(w http.ResponseWriter, r *http.Request) {
	bare, ok := pathJID(w, r)
	if !ok {
		return
	}
	u, found := b.cfg.Tracker.Get(bare)
	if a := accessOf(r); !found || a != nil && !a.CanSee(bare) {
		writeError(w, http.StatusNotFound, "unknown_user", "no presence known for "+bare)
		return
	}
	writeJSON(w, http.StatusOK, toUser(&u))
}

// checkQuery answers 400 and returns false for a query that does not
// decode (url.Values drops such pairs, so "cursor=%%%" would read as no
// cursor) and, unless token is true (the WebSocket upgrade, where browsers
// cannot send a header), for a token in the URL, which logs and proxies
// keep.
func checkQuery(w http.ResponseWriter, r *http.Request, token bool) bool {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_query", "the query string does not decode: "+err.Error())
		return false
	}
	if !token && q.Has("access_token") {
		writeError(w, http.StatusBadRequest, "token_in_query", "access_token is accepted on the WebSocket upgrade only; send the header Authorization: Bearer <token>")
		return false
	}
	return true
}

// pathJID returns the bare JID of the path's {jid}; a JID with a resource
// (a '/', also written %2F) is a 400, not silently cut to the bare JID.
func pathJID(w http.ResponseWriter, r *http.Request) (string, bool) {
	raw := r.PathValue("jid")
	j, err := jidnorm.Parse(raw)
	switch {
	case err != nil || j.Localpart() == "":
		writeError(w, http.StatusBadRequest, "bad_jid", "not a user JID: "+raw)
		return "", false
	case j.Resourcepart() != "":
		writeError(w, http.StatusBadRequest, "bad_jid", "give the bare JID, without a resource: "+raw)
		return "", false
	}
	return j.Bare().String(), true
}

// countsJSON answers GET /v1/counts.
type countsJSON struct {
	Seq      uint64                      `json:"seq"`
	Users    int                         `json:"users"`
	Online   int                         `json:"online"`
	ByShow   map[string]int              `json:"by_show"`
	ByDomain map[string]domainCountsJSON `json:"by_domain"`
}

type domainCountsJSON struct {
	Users  int `json:"users"`
	Online int `json:"online"`
}

// counts serves GET /v1/counts: how many users the token may see, by show
// and by domain.
func (b *Bridge) counts(w http.ResponseWriter, r *http.Request) {
	f, err := filterFromQuery(r.URL.Query(), accessOf(r))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	out, _, err := b.countUsers(f)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// countUsers counts the users f lets through, by show and domain (a
// served domain, one the request's filter names, or other), and their
// online resources: from the counts the tracker keeps, O(domains) under
// its lock, unless the filter or the token's scope names domains that are
// not served (then O(users it selects), from a View, outside the lock:
// presence.Tracker.Count).
func (b *Bridge) countUsers(f *viewFilter) (out countsJSON, resources int, err error) {
	var counts []presence.DomainCounts
	var seq uint64
	if f.all {
		c := b.cfg.Tracker.Counts()
		counts, seq = c.Domains, c.Seq
	} else if counts, seq, err = b.cfg.Tracker.Count(trackerQuery(f, "")); err != nil {
		return out, 0, err
	} else {
		counts = b.foldUnnamed(counts, f)
	}
	out = countsJSON{Seq: seq, ByShow: map[string]int{}, ByDomain: map[string]domainCountsJSON{}}
	states := presence.StateNames()
	for _, s := range states {
		out.ByShow[s] = 0
	}
	for _, c := range counts {
		d := out.ByDomain[c.Domain]
		d.Users += c.Total()
		d.Online += c.Online()
		out.ByDomain[c.Domain] = d
		out.Users += c.Total()
		out.Online += c.Online()
		for s, n := range c.Users {
			out.ByShow[states[s]] += n
		}
		resources += c.Resources
	}
	return out, resources, nil
}

// foldUnnamed counts under OtherDomain the domains that are neither served
// nor named by the request's filter (its domains, or its users'): the
// tracker labels every domain its query names, and a token's scope is
// part of the query, but a client's counts name only what it asked for,
// so that the labels do not depend on the token. O(labels + counts).
func (b *Bridge) foldUnnamed(counts []presence.DomainCounts, f *viewFilter) []presence.DomainCounts {
	keep := map[string]bool{presence.OtherDomain: true}
	for _, d := range b.cfg.Tracker.Counts().Domains {
		keep[d.Domain] = true
	}
	for d := range f.domains {
		keep[d] = true
	}
	for u := range f.users {
		if _, d, ok := strings.Cut(u, "@"); ok {
			keep[d] = true
		}
	}
	out := counts[:0]
	var other *presence.DomainCounts
	for _, c := range counts {
		if !keep[c.Domain] {
			c.Domain = presence.OtherDomain
		}
		if c.Domain != presence.OtherDomain {
			out = append(out, c)
			continue
		}
		if other == nil {
			other = &presence.DomainCounts{Domain: presence.OtherDomain}
		}
		for s, n := range c.Users {
			other.Users[s] += n
		}
		other.Resources += c.Resources
	}
	if other != nil {
		out = append(out, *other)
	}
	return out
}

// trackerQuery turns f into a query of the tracker's index whose
// candidates are the users f and its token allow: the token's scope
// intersected with f's domains and users, so that a page or a count visits
// no user the token may not see.
func trackerQuery(f *viewFilter, after string) presence.Query {
	keys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	q := presence.Query{After: after, Domains: keys(f.domains), Users: keys(f.users), States: keys(f.shows)}
	if f.access == nil || f.access.IsAdmin() {
		return q
	}
	domains, users := f.access.Scope()
	if len(q.Domains)+len(q.Users) == 0 {
		q.Domains, q.Users = domains, users
		if len(q.Domains)+len(q.Users) == 0 {
			q.Users = []string{""} // empty lists would select everyone
		}
		return q
	}
	var ds, us []string
	for _, d := range q.Domains {
		if slices.Contains(domains, d) {
			ds = append(ds, d)
		}
	}
	for _, u := range q.Users {
		if f.access.CanSee(u) {
			us = append(us, u)
		}
	}
	for _, u := range users {
		if _, dom, _ := strings.Cut(u, "@"); f.domains[dom] {
			us = append(us, u)
		}
	}
	if len(ds)+len(us) == 0 {
		// Nothing the token may see: a user JID that no user has, since
		// empty lists would select everyone.
		us = []string{""}
	}
	q.Domains, q.Users = ds, us
	return q
}

// stats serves GET /admin/v1/stats: the aggregates of every user, for
// administrators only (a token with the admin scope; anyone when no
// authentication is configured).
func (b *Bridge) stats(w http.ResponseWriter, r *http.Request) {
	if a := accessOf(r); a != nil && !a.IsAdmin() {
		writeError(w, http.StatusForbidden, "forbidden", "the admin scope (presence:admin) is needed")
		return
	}
	counts, resources, _ := b.countUsers(&viewFilter{all: true}) // no filter: no error
	checks := map[string]string{}
	for name, check := range b.cfg.Checks {
		checks[name] = "ok"
		if err := check(); err != nil {
			checks[name] = err.Error()
		}
	}
	writeJSON(w, http.StatusOK, struct {
		countsJSON
		Resources     int               `json:"resources"`
		UptimeSeconds int64             `json:"uptime_seconds"`
		Checks        map[string]string `json:"checks"`
	}{countsJSON: countsJSON{Seq: counts.Seq, Users: counts.Users, Online: counts.Online, ByShow: counts.ByShow, ByDomain: counts.ByDomain},
		Resources: resources, UptimeSeconds: int64(time.Since(b.started) / time.Second), Checks: checks})
}

// HistoryEntry is one row of a user's presence history.
type HistoryEntry struct {
	Time     time.Time `json:"time"`
	Resource string    `json:"resource"`
	Event    string    `json:"event"`
	Show     string    `json:"show"`
	Status   string    `json:"status"`
	Priority int       `json:"priority"`
	Reason   string    `json:"reason,omitempty"`
}

// history serves GET /v1/presence/{jid}/history?since=&until=&limit=.
func (b *Bridge) history(w http.ResponseWriter, r *http.Request) {
	bare, ok := pathJID(w, r)
	if !ok {
		return
	}
	if a := accessOf(r); a != nil && !a.CanSee(bare) {
		writeError(w, http.StatusNotFound, "unknown_user", "no presence known for "+bare)
		return
	}
	if b.cfg.History == nil {
		writeError(w, http.StatusNotImplemented, "no_history", "history needs the PostgreSQL store")
		return
	}
	q := r.URL.Query()
	until := time.Now()
	since := until.Add(-24 * time.Hour)
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "bad_time", p.name+" must be an RFC 3339 time")
				return
			}
			*p.dst = t
		}
	}
	limit := 1000
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "bad_limit", "limit must be 1 to 10000")
			return
		}
		limit = n
	}
	entries, err := b.cfg.History(r.Context(), bare, since, until, limit)
	if err != nil {
		b.log.Warn("bridge: history", "err", err)
		writeError(w, http.StatusServiceUnavailable, "history_unavailable", "the history could not be read; try again later")
		return
	}
	if entries == nil {
		entries = []HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, struct {
		JID     string         `json:"jid"`
		Entries []HistoryEntry `json:"entries"`
	}{bare, entries})
}

// webPresenceJSON is the body of POST /v1/webpresence.
type webPresenceJSON struct {
	// JID is the user; with authentication it must be the token's subject
	// (and may be left out).
	JID      string `json:"jid"`
	Resource string `json:"resource"`
	Show     string `json:"show"` // available (or empty), chat, away, xa, dnd
	Status   string `json:"status"`
	Priority int    `json:"priority"`
	// TTL is how long the presence holds without a refresh (seconds,
	// 5..3600; zero means 60).
	TTL int `json:"ttl"`
}

// webPresence serves POST /v1/webpresence (publish or refresh) and DELETE
// /v1/webpresence/{resource} (go offline): a web client's own presence,
// which expires unless refreshed within its TTL and aggregates with the
// user's XMPP resources.
func (b *Bridge) webPresence(w http.ResponseWriter, r *http.Request) {
	subject := keyOf(accessOf(r))
	if b.cfg.Authenticate != nil && subject == "" {
		writeError(w, http.StatusForbidden, "no_subject", "the token names no user (sub) to publish presence for")
		return
	}
	if r.Method == http.MethodDelete {
		user := subject
		if user == "" {
			user = r.URL.Query().Get("jid")
		}
		res := r.PathValue("resource")
		if user == "" || res == "" {
			writeError(w, http.StatusBadRequest, "bad_request", "a user and a resource are needed")
			return
		}
		if e := checkResource(res); e != nil {
			writeError(w, e.status, e.code, e.msg)
			return
		}
		b.cfg.Tracker.Apply(presence.Update{User: user, Resource: "web/" + res, Reason: presence.ReasonClient})
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var body webPresenceJSON
	if !decodeJSON(w, r, &body) {
		return
	}
	user, apiErr := b.publishWeb(subject, &body)
	if apiErr != nil {
		writeError(w, apiErr.status, apiErr.code, apiErr.msg)
		return
	}
	u, _ := b.cfg.Tracker.Get(user)
	writeJSON(w, http.StatusOK, toUser(&u))
}

// decodeJSON reads a request's body, one JSON object of at most 4 KiB
// without unknown fields, into v. It answers and returns false for a body
// that is not declared JSON (415: a form or text/plain body is what a
// cross-site page can post without a preflight), too large (413), not
// JSON, or followed by anything but white space (400).
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be JSON, sent with Content-Type: application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return true
		} else if err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the body must be under 4 KiB")
		return false
	}
	writeError(w, http.StatusBadRequest, "bad_json", err.Error())
	return false
}

// checkResource refuses a web resource that is empty, over 64 bytes, or
// has control characters (NUL and the like end up in logs, databases and
// dashboards).
func checkResource(res string) *apiError {
	if res == "" || len(res) > 64 {
		return &apiError{http.StatusBadRequest, "bad_request", "resource (1-64 characters) is required; priority is -128..127"}
	}
	if !utf8.ValidString(res) || strings.ContainsFunc(res, unicode.IsControl) {
		return &apiError{http.StatusBadRequest, "bad_request", "resource must be printable UTF-8, without control characters"}
	}
	return nil
}

// apiError is a client error with its HTTP status and code.
type apiError struct {
	status    int
	code, msg string
}

// maxStatus bounds the status text of web presence.
const maxStatus = 1024

// publishWeb checks a web presence and applies it: for subject when the
// request is authenticated (the body may not name another user), else for
// the body's jid. It returns the user's bare JID. Shared by REST and the
// stream's "presence" message.
func (b *Bridge) publishWeb(subject string, body *webPresenceJSON) (string, *apiError) {
	if subject != "" {
		if body.JID != "" && body.JID != subject {
			return "", &apiError{http.StatusForbidden, "not_yours", "a token publishes presence for its own subject only"}
		}
		body.JID = subject
	}
	j, err := jidnorm.Parse(body.JID)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return "", &apiError{http.StatusBadRequest, "bad_jid", "jid must be a bare user JID"}
	}
	show := presence.ShowNone
	if body.Show != "" && body.Show != "available" {
		var ok bool
		if show, ok = presence.ParseShow(body.Show); !ok {
			return "", &apiError{http.StatusBadRequest, "bad_show", "show must be available, chat, away, xa or dnd"}
		}
	}
	if e := checkResource(body.Resource); e != nil {
		return "", e
	}
	if body.Priority < -128 || body.Priority > 127 {
		return "", &apiError{http.StatusBadRequest, "bad_request", "resource (1-64 characters) is required; priority is -128..127"}
	}
	ttl := time.Duration(body.TTL) * time.Second
	if body.TTL == 0 {
		ttl = time.Minute
	} else if body.TTL < 5 || body.TTL > 3600 {
		return "", &apiError{http.StatusBadRequest, "bad_ttl", "ttl must be 5 to 3600 seconds"}
	}
	user := j.Bare().String()
	// Web resources live in their own namespace, so a web client can never
	// overwrite (or be overwritten by) an XMPP resource of the same name.
	if len(body.Status) > maxStatus {
		return "", &apiError{http.StatusBadRequest, "bad_status", fmt.Sprintf("status is at most %d bytes", maxStatus)}
	}
	_, _, err = b.cfg.Tracker.Try(presence.Update{User: user, Resource: "web/" + body.Resource, Available: true,
		Show: show, Status: body.Status, Priority: body.Priority, TTL: ttl})
	switch {
	case errors.Is(err, presence.ErrTooManyResources):
		return "", &apiError{http.StatusTooManyRequests, "too_many_resources", "this user has as many resources online as allowed"}
	case err != nil:
		return "", &apiError{http.StatusServiceUnavailable, "too_many_users", "the server tracks as many users as allowed"}
	}
	return user, nil
}
