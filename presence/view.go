package presence

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tidwall/btree"
)

// View is a consistent picture of every user at one position of the change
// feed, taken in O(labels) under the tracker's lock (Tracker.View) and read
// without it: updates go on while a View is read, and do not change it.
// A View is safe for concurrent use. The Users it hands out share their
// Resources with the View and with each other: read them, never modify
// them.
type View struct {
	seq       uint64
	buckets   [][NumStates]*tree
	resources [][NumStates]int
	labels    []string
	byDomain  map[string]int
	// users, for a View of the live index (index.live, under the
	// tracker's lock), finds a named user in O(1) instead of searching
	// the trees of its label.
	lookup map[string]*user
}

// Seq returns the sequence number of the last event the View reflects.
func (v *View) Seq() uint64 { return v.seq }

// Len returns how many users the View holds, online or not. O(labels).
func (v *View) Len() int {
	n := 0
	for l := range v.buckets {
		for s := range v.buckets[l] {
			n += v.buckets[l][s].Len()
		}
	}
	return n
}

// Get returns one user's presence, and false if the user is unknown.
// O(log users); the User shares its Resources with the View.
func (v *View) Get(jid string) (User, bool) {
	if w := v.get(jid); w != nil {
		return w.User, true
	}
	return User{}, false
}

// get finds jid in the buckets of its domain's label: a user's label is
// fixed when it is first seen, from the domain. O(states · log users).
func (v *View) get(jid string) *view {
	if v.lookup != nil {
		if usr := v.lookup[jid]; usr != nil {
			return usr.view
		}
		return nil
	}
	l := v.byDomain[domainOf(jid)] // 0, OtherDomain, if not served
	p := pivot(jid)
	for s := range v.buckets[l] {
		if w, ok := v.buckets[l][s].Get(p); ok {
			return w.v
		}
	}
	return nil
}

// Counts returns the users by domain label and state, and the online
// resources, as of the View. O(labels).
func (v *View) Counts() Counts { return countsOf(v.seq, v.labels, v.buckets, v.resources) }

// Counts are the users by domain label and state, kept up to date at every
// change (Tracker.Counts reads them in O(labels)).
type Counts struct {
	// Seq is the last event the counts reflect.
	Seq uint64
	// Domains has one entry per domain label: OtherDomain first, then the
	// served domains (Options.Domains) in order.
	Domains []DomainCounts
}

// DomainCounts are the counts of one domain label.
type DomainCounts struct {
	// Domain is a served domain, OtherDomain, or (from View.Count) a domain
	// the query named.
	Domain string
	// Users counts the users by aggregate state, in StateNames' order.
	Users [NumStates]int
	// Resources counts the online resources of those users.
	Resources int
}

// Total returns the users counted, online or not.
func (d *DomainCounts) Total() int {
	n := 0
	for _, k := range d.Users {
		n += k
	}
	return n
}

// Online returns the users counted that are online.
func (d *DomainCounts) Online() int { return d.Total() - d.Users[0] }

// Query selects users of a View, in JID order.
type Query struct {
	// After, if not empty, starts after this JID: a cursor, the last JID of
	// the previous page.
	After string
	// Domains and Users select as Filter does: a user matches if its domain
	// is in Domains or its bare JID is in Users; both empty select
	// everyone.
	Domains, Users []string
	// States, if not empty, selects the users whose aggregate state (as
	// StateOf names it) is one of these.
	States []string
	// Match, if not nil, is one more condition (for example what a token may
	// see). Users it refuses are still visited: with Match, a query costs a
	// step per candidate that Domains, Users and States let through.
	Match func(jid string) bool
	// Limit, if positive, is the most users Range hands out: Tracker.Range
	// then reads no more under its lock than it can hand out. Count
	// ignores it.
	Limit int
}

// source is one ordered stream of candidates of a query.
type source struct {
	it  btree.IterG[item]
	cur *view
	ok  bool
	// domain, if not empty, is the one domain wanted from a bucket that
	// holds others too (the OtherDomain label).
	domain string
	// list: a source of looked-up users instead of a tree.
	list []*view
	// whole: the source is a whole bucket (label, state), from its start.
	whole       bool
	label, stat int
}

func (s *source) next() {
	if s.list != nil {
		s.list = s.list[1:]
		s.ok = len(s.list) > 0
		if s.ok {
			s.cur = s.list[0]
		}
		return
	}
	for s.ok = s.it.Next(); s.ok; s.ok = s.it.Next() {
		if s.cur = s.it.Item().v; s.domain == "" || domainOf(s.cur.JID) == s.domain {
			return
		}
	}
}

// plan is a compiled Query: the sources to merge and the checks left.
type plan struct {
	sources []*source
	states  [NumStates]bool // for list sources: the states wanted
	anyOf   bool            // states restricts
	match   func(string) bool
}

// compile turns q into sources: whole buckets for served domains (and
// every domain when q names none), the OtherDomain buckets with a check of
// the domain for a domain that is not served, and the named users looked
// up one by one. O(sources · log users + users named · log users).
func (v *View) compile(q *Query) (*plan, error) {
	p := &plan{match: q.Match}
	for _, st := range q.States {
		i, ok := StateIndex(st)
		if !ok {
			return nil, fmt.Errorf("presence: %q is not a state", st)
		}
		p.states[i], p.anyOf = true, true
	}
	from := pivot(q.After)
	addTree := func(t *tree, domain string, label, state int) {
		s := &source{it: t.Iter(), domain: domain, whole: domain == "" && q.After == "" && label >= 0, label: label, stat: state}
		s.ok = s.it.Seek(from)
		for s.ok {
			s.cur = s.it.Item().v
			if (q.After == "" || s.cur.JID != q.After) && (domain == "" || domainOf(s.cur.JID) == domain) {
				break
			}
			s.ok = s.it.Next()
		}
		if s.ok {
			p.sources = append(p.sources, s)
		}
	}
	addLabel := func(l int, domain string) {
		for st := range NumStates {
			if !p.anyOf || p.states[st] {
				addTree(v.buckets[l][st], domain, l, st)
			}
		}
	}
	if len(q.Domains) == 0 && len(q.Users) == 0 {
		for l := range v.buckets {
			addLabel(l, "")
		}
		return p, nil
	}
	domains := make(map[string]bool, len(q.Domains))
	for _, d := range q.Domains {
		if domains[d] {
			continue
		}
		domains[d] = true
		if l, ok := v.byDomain[d]; ok {
			addLabel(l, "")
		} else {
			addLabel(0, d)
		}
	}
	var list []*view
	for _, jid := range q.Users {
		if jid <= q.After || domains[domainOf(jid)] {
			continue // before the cursor, or the domain brings it already
		}
		if w := v.get(jid); w != nil && (!p.anyOf || p.states[w.state]) {
			list = append(list, w)
		}
	}
	if len(list) > 0 {
		slices.SortFunc(list, func(a, b *view) int { return strings.Compare(a.JID, b.JID) })
		list = slices.CompactFunc(list, func(a, b *view) bool { return a == b })
		p.sources = append(p.sources, &source{list: list, cur: list[0], ok: true})
	}
	return p, nil
}

// Range calls fn for every user q selects, in JID order, until fn returns
// false. It returns an error, before any call, for a state in q.States
// that is not one. The User passed to fn is valid during the call; its
// Resources belong to the View (read only). O(k · log users + visited ·
// log k) for k sources (one per bucket of the served domains q names, or
// of every label when q names none, times the states asked for; one for
// q.Users): a page costs the page, not the users, unless q.Match refuses
// many.
func (v *View) Range(q Query, fn func(u *User) bool) error {
	p, err := v.compile(&q)
	if err != nil {
		return err
	}
	n := 0
	v.merge(p.sources, func(w *view) bool {
		if p.match != nil && !p.match(w.JID) {
			return true
		}
		n++
		return fn(&w.User) && n != q.Limit
	})
	return nil
}

// merge calls fn for the current views of the sources in JID order (a
// min-heap of sources by their current JID), until fn returns false or
// the sources end. Every source starts with ok set. O(visited · log k).
func (v *View) merge(h []*source, fn func(w *view) bool) {
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= len(h) {
				return
			}
			if c+1 < len(h) && h[c+1].cur.JID < h[c].cur.JID {
				c++
			}
			if h[i].cur.JID <= h[c].cur.JID {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		s := h[0]
		w := s.cur
		if s.next(); !s.ok {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
		if !fn(w) {
			return
		}
	}
}

// scan calls fn for every user in JID order until fn returns false.
// O(users · log buckets).
func (v *View) scan(fn func(w *view) bool) {
	p, _ := v.compile(&Query{}) // no states: no error
	v.merge(p.sources, fn)
}

// Count counts the users q selects (q.After is ignored), by domain: a
// served domain under its name, a domain q names (in Domains, or through
// a JID in Users) under its own name, every other under OtherDomain.
// Whole buckets count in O(1) each; without q.Match, only the users of
// domains that are not served and the users named are visited. With
// q.Match, every candidate is. Entries come in no particular order, only
// for domains with users.
func (v *View) Count(q Query) ([]DomainCounts, error) {
	if res, ok := v.countAll(&q); ok {
		return res, nil
	}
	q.After = ""
	p, err := v.compile(&q)
	if err != nil {
		return nil, err
	}
	return v.count(&q, p), nil
}

// countAll is Count of everyone, from the counts as kept (no bucket
// sought): ok is false if q filters.
func (v *View) countAll(q *Query) (_ []DomainCounts, ok bool) {
	if q.Match != nil || len(q.Domains) > 0 || len(q.Users) > 0 || len(q.States) > 0 {
		return nil, false
	}
	c := v.Counts()
	res := make([]DomainCounts, 0, len(c.Domains))
	for _, d := range c.Domains {
		if d.Total() > 0 {
			res = append(res, d)
		}
	}
	return res, true
}

// count is Count of a compiled q.
func (v *View) count(q *Query, p *plan) []DomainCounts {
	out := map[string]*DomainCounts{}
	at := func(dom string) *DomainCounts {
		d := out[dom]
		if d == nil {
			d = &DomainCounts{Domain: dom}
			out[dom] = d
		}
		return d
	}
	named := map[string]bool{}
	for _, d := range q.Domains {
		named[d] = true
	}
	for _, u := range q.Users {
		named[domainOf(u)] = true
	}
	label := func(w *view) string {
		if w.label != 0 {
			return v.labels[w.label]
		}
		if dom := domainOf(w.JID); named[dom] {
			return dom
		}
		return OtherDomain
	}
	for _, s := range p.sources {
		if p.match == nil && s.whole {
			// A whole bucket: counted without visiting it.
			d := at(v.labels[s.label])
			if s.label == 0 {
				d = at(OtherDomain)
			}
			d.Users[s.stat] += v.buckets[s.label][s.stat].Len()
			d.Resources += v.resources[s.label][s.stat]
			continue
		}
		for ; s.ok; s.next() {
			w := s.cur
			if p.match != nil && !p.match(w.JID) {
				continue
			}
			d := at(label(w))
			d.Users[w.state]++
			d.Resources += len(w.Resources)
		}
	}
	res := make([]DomainCounts, 0, len(out))
	for _, d := range out {
		res = append(res, *d)
	}
	return res
}
