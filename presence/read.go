package presence

import "time"

// Reads of the live index. A View costs little to take (O(labels) under
// the lock), but every update after it copies the index nodes on its path
// that the View still shares: at 1,000,000 users that copy, a leaf and
// most of the path, happens for almost every update as long as Views are
// taken more often than about once a second, because the updates between
// two Views rarely touch the same leaf (docs/benchmarks.md). So the reads
// whose cost is what they return take no View: Range and Count read the
// index itself under the tracker's lock, a bounded step at a time. The
// others (a domain that is not served, whose users are sought among the
// OtherDomain buckets; a Query.Match) read a View of only the buckets
// they need, and long reads that catch up from a View's position (a
// WebSocket connect) share one through RecentView.

const (
	// rangeStep bounds the users one step of Range hands out under the
	// lock: tens of microseconds.
	rangeStep = 512
	// recentMax bounds how old a View RecentView hands out, and how long
	// the tracker keeps the last one for it.
	recentMax = time.Second
)

// Range calls fn for every user q selects, in JID order, until fn returns
// false, and returns the position of the change feed when it began.
//
// For a query that visits only what it selects (no Match, only served
// domains), it reads the index itself, not a View: in steps of at most
// rangeStep users under the tracker's lock, calling fn between them
// without it. A step costs O(k · log users + step) for k sources (see
// View.Range), so a REST page holds up updates for microseconds and costs
// them nothing afterwards. A range that fits in one step is the users as
// of seq; a longer one reflects every change up to seq and, past its first
// step, may reflect later ones: each user is seen at most once, as it was
// when its step read it. Any other query reads a View of the buckets it
// needs (O(labels) under the lock), as of seq, outside the lock.
//
// The error is View.Range's (a state that is not one), before any call.
func (t *Tracker) Range(q Query, fn func(u *User) bool) (seq uint64, err error) {
	var buf []*view
	left := q.Limit // users still wanted; <= 0: no bound
	for first := true; ; first = false {
		step := rangeStep
		if left > 0 {
			step = min(step, left)
		}
		if buf == nil {
			buf = make([]*view, 0, step)
		}
		buf = buf[:0]
		more := false
		t.mu.Lock()
		if first {
			seq = t.seq
			if !t.ix.bounded(&q) {
				v := t.ix.viewOf(t.seq, &q)
				t.mu.Unlock()
				return seq, v.Range(q, fn)
			}
		}
		lv := t.ix.live(t.seq, t.users)
		p, err := lv.compile(&q)
		if err != nil {
			t.mu.Unlock()
			return 0, err
		}
		lv.merge(p.sources, func(w *view) bool {
			if len(buf) == step {
				more = true // w is read again by the next step
				return false
			}
			buf = append(buf, w)
			return true
		})
		t.mu.Unlock()
		for _, w := range buf {
			if !fn(&w.User) {
				return seq, nil
			}
		}
		if left -= len(buf); !more || left == 0 {
			return seq, nil
		}
		q.After = buf[len(buf)-1].JID
	}
}

// Count counts the users q selects (q.After is ignored), by domain, as
// View.Count does, and returns the position of the change feed they
// reflect. A query that visits only what it selects (no Match, only
// served domains) is counted from whole buckets under the tracker's lock,
// O(labels · states + users named), without a View; any other reads a
// View of the buckets it needs outside the lock. The error is
// View.Count's.
func (t *Tracker) Count(q Query) (_ []DomainCounts, seq uint64, err error) {
	q.After = ""
	t.mu.Lock()
	seq = t.seq
	if !t.ix.bounded(&q) {
		v := t.ix.viewOf(t.seq, &q)
		t.mu.Unlock()
		res, err := v.Count(q)
		return res, seq, err
	}
	lv := t.ix.live(t.seq, t.users)
	if res, ok := lv.countAll(&q); ok {
		t.mu.Unlock()
		return res, seq, nil
	}
	p, err := lv.compile(&q)
	if err != nil {
		t.mu.Unlock()
		return nil, 0, err
	}
	res := lv.count(&q, p) // every tree source whole: no user visited
	t.mu.Unlock()
	return res, seq, nil
}

// RecentView returns a View taken at most maxAge ago (and never more than a
// second ago), or a new one: for readers that catch up from the View's Seq
// anyway, such as a WebSocket connect whose snapshot is followed by the
// changes after it, so that a storm of them takes one View a second
// instead of one each. O(labels) under the lock.
func (t *Tracker) RecentView(maxAge time.Duration) *View {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v := t.recent; v != nil && (v == t.ix.snap || t.clock.Now().Sub(t.recentAt) < min(maxAge, recentMax)) {
		return v
	}
	return t.viewLocked()
}
