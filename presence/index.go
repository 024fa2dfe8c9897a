package presence

import (
	"slices"
	"strings"

	"github.com/tidwall/btree"
)

// NumStates is how many aggregate states there are (see StateOf): offline,
// available and the four show values.
const NumStates = 6

// stateNames are the states in the order of Counts' arrays.
var stateNames = [NumStates]string{"offline", "available", "chat", "away", "xa", "dnd"}

// StateNames returns the aggregate states in the order the arrays of
// DomainCounts use: offline, available, chat, away, xa, dnd.
func StateNames() [NumStates]string { return stateNames }

// StateIndex returns the position of an aggregate state (as StateOf names
// it) in StateNames, and false for any other string.
func StateIndex(state string) (int, bool) {
	for i, s := range stateNames {
		if s == state {
			return i, true
		}
	}
	return 0, false
}

// stateOf is StateIndex of a user's aggregate. A show value outside RFC
// 6121 (which adapters do not let through) counts as available.
func stateOf(online bool, s Show) int {
	if !online {
		return 0
	}
	switch s {
	case ShowChat:
		return 2
	case ShowAway:
		return 3
	case ShowXA:
		return 4
	case ShowDND:
		return 5
	}
	return 1
}

// OtherDomain is the domain label of every user whose domain is not a
// served one (Options.Domains).
const OtherDomain = "other"

// maxLearned bounds the domains learned as they come when Options.Domains
// is empty.
const maxLearned = 64

// domainOf returns the domainpart of a bare JID ("" for one without '@',
// as Filter matches it).
func domainOf(jid string) string {
	_, dom, _ := strings.Cut(jid, "@")
	return dom
}

// view is the immutable picture of one user that the index holds: built
// when the user changes, never modified afterwards, so readers holding a
// copy of the index read it without the tracker's lock.
type view struct {
	User
	label int // index into the labels
	state int // stateOf the aggregate
}

// item is what the trees hold: a view and the first 16 bytes of its JID,
// so that most comparisons of a search read the node alone: comparing
// through the pointer cost two cache misses per step at 1,000,000 users
// and made an update 5 times slower (docs/benchmarks.md).
type item struct {
	k0, k1 uint64
	v      *view
}

type tree = btree.BTreeG[item]

// keyOf returns the first 16 bytes of jid as two big-endian words,
// zero-padded: they order as the strings do (a JID holds no NUL byte).
func keyOf(jid string) (k0, k1 uint64) {
	for i := range 16 {
		var c uint64
		if i < len(jid) {
			c = uint64(jid[i])
		}
		if i < 8 {
			k0 = k0<<8 | c
		} else {
			k1 = k1<<8 | c
		}
	}
	return k0, k1
}

func itemOf(v *view) item {
	k0, k1 := keyOf(v.JID)
	return item{k0, k1, v}
}

// pivot is an item to search for jid with.
func pivot(jid string) item { return itemOf(&view{User: User{JID: jid}}) }

func byJID(a, b item) bool {
	switch {
	case a.k0 != b.k0:
		return a.k0 < b.k0
	case a.k1 != b.k1:
		return a.k1 < b.k1
	}
	return a.v.JID < b.v.JID
}

func newTree() *tree {
	return btree.NewBTreeGOptions(byJID, btree.Options{NoLocks: true, Degree: treeDegree})
}

// index keeps every user's view in JID order in the bucket of its domain
// label and state, and the counts that go with them, up to date at every
// change. There is no tree of everyone: an update writes one tree (two
// when the state changes), and a read of everyone merges the buckets.
// Guarded by the tracker's lock; a View copies the trees in O(labels)
// (copy-on-write: the next writes copy the nodes they touch).
type index struct {
	// buckets[label][state]; label 0 is OtherDomain.
	buckets   [][NumStates]*tree
	resources [][NumStates]int // online resources by label and state
	labels    []string
	// byDomain maps a served domain to its label. Replaced, never
	// modified, when a domain is learned: views share it.
	byDomain map[string]int
	learn    bool
	// snap is the last View taken, while nothing changed since.
	snap *View
}

func newIndex(domains []string) *index {
	ix := &index{byDomain: map[string]int{}, learn: len(domains) == 0}
	ix.addLabel(OtherDomain)
	for _, d := range domains {
		if _, dup := ix.byDomain[d]; !dup && d != "" {
			ix.byDomain[d] = ix.addLabel(d)
		}
	}
	return ix
}

func (ix *index) addLabel(name string) int {
	var b [NumStates]*tree
	for i := range b {
		b[i] = newTree()
	}
	ix.buckets = append(ix.buckets, b)
	ix.resources = append(ix.resources, [NumStates]int{})
	ix.labels = append(ix.labels, name)
	return len(ix.labels) - 1
}

// labelOf returns the label of jid's domain, learning it if the index
// learns and has room. O(1) expected.
func (ix *index) labelOf(jid string) int {
	dom := domainOf(jid)
	if l, ok := ix.byDomain[dom]; ok {
		return l
	}
	if !ix.learn || dom == "" || len(ix.labels) > maxLearned {
		return 0
	}
	m := make(map[string]int, len(ix.byDomain)+1)
	for k, v := range ix.byDomain {
		m[k] = v
	}
	l := ix.addLabel(dom)
	m[dom] = l
	ix.byDomain = m
	return l
}

// viewOne is a view and the resource of a user with one, allocated
// together: most users have one resource, and an update allocates one
// object instead of two.
type viewOne struct {
	view
	res [1]Resource
}

// newView returns a view of usr's current state, with Resources of its
// own, sorted as User.Resources says. One allocation (two for a user with
// several resources).
func newView(jid string, usr *user) *view {
	if len(usr.resources) != 1 {
		return &view{User: usr.snapshot(jid)}
	}
	vo := &viewOne{res: [1]Resource{usr.resources[0]}}
	r := &vo.res[0]
	vo.User = User{JID: jid, Online: true, Show: r.Show, Status: r.Status, Priority: r.Priority,
		Resources: vo.res[:], Since: r.Since}
	return &vo.view
}

// set replaces the view of the user with one of its current state.
// O(log users + resources of the user); one allocation for a user with
// one resource (newView).
func (ix *index) set(jid string, usr *user) {
	ix.snap = nil
	old := usr.view
	label := 0
	if old != nil {
		label = old.label
	} else {
		label = ix.labelOf(jid)
	}
	nv := newView(jid, usr)
	nv.label = label
	nv.state = stateOf(nv.Online, nv.Show)
	usr.view = nv
	it := itemOf(nv)
	b := &ix.buckets[label]
	if old != nil {
		if old.state != nv.state {
			b[old.state].Delete(it)
		}
		ix.resources[label][old.state] -= len(old.Resources)
	}
	b[nv.state].Set(it)
	ix.resources[label][nv.state] += len(nv.Resources)
}

// remove forgets the user's view. O(log users).
func (ix *index) remove(usr *user) {
	old := usr.view
	if old == nil {
		return
	}
	ix.snap = nil
	usr.view = nil
	it := itemOf(old)
	ix.buckets[old.label][old.state].Delete(it)
	ix.resources[old.label][old.state] -= len(old.Resources)
}

// view returns a View of the index at seq: the cached one if nothing
// changed since it was taken, else copies of the trees, O(labels).
func (ix *index) view(seq uint64) *View {
	if ix.snap != nil {
		return ix.snap
	}
	v := &View{seq: seq, buckets: make([][NumStates]*tree, len(ix.buckets)),
		resources: slices.Clone(ix.resources), labels: ix.labels[:len(ix.labels):len(ix.labels)],
		byDomain: ix.byDomain}
	for l := range ix.buckets {
		for s := range ix.buckets[l] {
			v.buckets[l][s] = ix.buckets[l][s].Copy()
		}
	}
	ix.snap = v
	return v
}

// viewOf returns a View of the buckets q can read, copied as view copies
// them, and an empty tree for every other: O(labels). Only Range and
// Count read it, with q itself (as compiled, q.States are states), so
// that the updates to the buckets q does not read copy nothing for it.
func (ix *index) viewOf(seq uint64, q *Query) *View {
	var states [NumStates]bool
	for _, st := range q.States {
		if i, ok := StateIndex(st); ok {
			states[i] = true
		}
	}
	need := make([][NumStates]bool, len(ix.buckets))
	addLabel := func(l int, all bool) {
		for s := range NumStates {
			need[l][s] = need[l][s] || all || len(q.States) == 0 || states[s]
		}
	}
	if len(q.Domains) == 0 && len(q.Users) == 0 {
		for l := range need {
			addLabel(l, false)
		}
	}
	for _, d := range q.Domains {
		addLabel(ix.byDomain[d], false) // 0, OtherDomain, if not served
	}
	for _, u := range q.Users {
		addLabel(ix.byDomain[domainOf(u)], true) // View.get reads every state
	}
	v := &View{seq: seq, buckets: make([][NumStates]*tree, len(ix.buckets)),
		resources: slices.Clone(ix.resources), labels: ix.labels[:len(ix.labels):len(ix.labels)],
		byDomain: ix.byDomain}
	for l := range ix.buckets {
		for s := range ix.buckets[l] {
			if v.buckets[l][s] = emptyTree; need[l][s] {
				v.buckets[l][s] = ix.buckets[l][s].Copy()
			}
		}
	}
	return v
}

// bounded reports whether reading q visits only users that it selects:
// nothing refuses candidates (no Match, no domain that is not served,
// whose users are found among every other's in the OtherDomain buckets),
// so that k users of q cost O(sources · log users + k · log sources).
// O(domains named).
func (ix *index) bounded(q *Query) bool {
	if q.Match != nil {
		return false
	}
	for _, d := range q.Domains {
		if _, ok := ix.byDomain[d]; !ok {
			return false
		}
	}
	return true
}

// emptyTree stands for the buckets a View of viewOf does not read: never
// written.
var emptyTree = newTree()

// live returns a View of the index's own trees, no copy: valid only while
// the tracker's lock is held, and then O(labels) cheaper than view, with
// no cost to the updates after it. Named users are found in users.
func (ix *index) live(seq uint64, users map[string]*user) View {
	return View{seq: seq, buckets: ix.buckets, resources: ix.resources, labels: ix.labels,
		byDomain: ix.byDomain, lookup: users}
}

// counts returns the counts by label, O(labels).
func (ix *index) counts(seq uint64) Counts {
	return countsOf(seq, ix.labels, ix.buckets, ix.resources)
}

func countsOf(seq uint64, labels []string, buckets [][NumStates]*tree, resources [][NumStates]int) Counts {
	c := Counts{Seq: seq, Domains: make([]DomainCounts, len(labels))}
	for l := range labels {
		d := &c.Domains[l]
		d.Domain = labels[l]
		for s := range buckets[l] {
			d.Users[s] = buckets[l][s].Len()
			d.Resources += resources[l][s]
		}
	}
	return c
}

// served returns the domains given as served, or nil if the index learns.
func (ix *index) served() []string {
	if ix.learn {
		return nil
	}
	return ix.labels[1:]
}

// treeDegree is the trees' B-tree degree: nodes of 7 to 15 items (360
// bytes) instead of the library's 31 to 63. After a View every update
// copies the nodes on its path that the View shares, the leaf almost
// always, so the node size is what an update allocates during reads:
// BenchmarkApplyViewEvery measured 1,035 B per update with a View every
// 20 at degree 8 against 1,915 at 32 (1,316 at 16, 815 at 4), for
// searches about as fast (more levels, fewer cache lines each).
const treeDegree = 8
