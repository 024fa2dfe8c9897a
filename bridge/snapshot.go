package bridge

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/presenced/presenced/presence"
)

// The shared snapshot of the full feed: a connect storm encodes the
// snapshot once, not once per client.
//
// A connect whose filter and token let every change through (viewFilter.
// all: no filter, and no authentication or an admin token) asks the cache
// for a snapshot frame. If one was encoded recently (sharedSnapshot.ttl),
// it gets those bytes, stamped with the feed position S of the View they
// were encoded from, and the hub replays the events after S from its
// resume window, exactly as for resume=S (hub.join): the client sees a
// snapshot at S and every change after it, as if the snapshot were its
// own. If a snapshot is being encoded, the connect waits for it
// (singleflight); otherwise it encodes one itself, from a View (O(labels)
// under the tracker's lock), outside the tracker's and the hub's locks,
// for whoever comes next. The bytes are written to every client from the
// one slice, never copied per connection.
//
// Bounds: a cached snapshot serves new connects for snapshotMaxAge after
// its encoding ended, or for as long as the encoding took if that was
// longer (at a million users, seconds: so that a storm spends at most about
// half its time encoding), and only while the hub's window (ResumeWindow)
// still holds every event after S; otherwise the connect encodes a new one
// (which the next ones share); connects that waited for an encoding take it
// whatever its age. The replay is bounded by the window alone, not tighter:
// an encoding at a million users takes seconds, during which the changes
// after S pile up, and a connect that refused a long replay would encode a
// snapshot of its own meanwhile, whose changes its queue would have to hold
// all the same. A replay is cheap next to a snapshot: its batches, maxBatch
// changes each, are built once with their bytes for every connect of the
// snapshot (sharedSnapshot.replay). When the snapshot no longer serves, the
// cache drops the bytes.

// snapshotMaxAge is the least time an encoded snapshot serves new
// connects (and its bytes are kept): long enough that a storm at 100,000
// users, whose encoding takes a few tenths of a second, encodes about once
// a second (docs/benchmarks.md), short enough that the replay after it
// stays small (at 1,000 changes a second, a second of changes).
const snapshotMaxAge = time.Second

// sharedSnapshot is one encoded snapshot frame of the full feed.
type sharedSnapshot struct {
	seq     uint64        // the feed position of the View it was encoded from
	payload []byte        // the frame's JSON, shared by every client: read only
	built   time.Time     // when the encoding ended
	ttl     time.Duration // how long after built it serves: snapshotMaxAge, or the encoding's time
	done    chan struct{} // closed when payload (or err) is set
	err     error
	// replay is the changes after seq, maxBatch to a batch, as the
	// connects sharing this snapshot get them (hub.replaySharedLocked):
	// the batches' bytes are built once for all of them. Guarded by the
	// hub's lock.
	replay []*hubBatch
}

// snapshotCache holds the latest shared snapshot and the one being
// encoded. It is safe for concurrent use.
type snapshotCache struct {
	tracker *presence.Tracker
	now     func() time.Time // the clock; time.Now outside tests

	mu       sync.Mutex
	cur      *sharedSnapshot // the latest encoded one; nil once dropped
	building *sharedSnapshot // being encoded, nil if none
	drop     *time.Timer     // drops cur once it no longer serves

	// encodes counts the snapshot frames encoded (shared or not), shared
	// the connects that sent an encoding made for another (serveStream).
	encodes, shared atomic.Uint64
}

func newSnapshotCache(t *presence.Tracker) *snapshotCache {
	return &snapshotCache{tracker: t, now: time.Now}
}

// get returns a snapshot of the full feed for one connect: the cached one
// if it was encoded less than its ttl ago and is not stale, the one
// being encoded (after waiting for it), or a new one encoded by this call.
// stale, if not nil, is a snapshot the caller found too old for the hub's
// window: it is not returned again. It returns an error only if the
// encoding failed; own tells whether this call encoded it. O(users) when
// it encodes, O(1) otherwise.
func (s *snapshotCache) get(stale *sharedSnapshot) (_ *sharedSnapshot, own bool, _ error) {
	s.mu.Lock()
	if stale != nil && s.cur == stale {
		s.cur = nil
	}
	if e := s.cur; e != nil && s.now().Sub(e.built) < e.ttl {
		s.mu.Unlock()
		return e, false, nil
	}
	if e := s.building; e != nil {
		s.mu.Unlock()
		<-e.done
		if e.err != nil {
			return nil, false, e.err
		}
		return e, false, nil
	}
	e := &sharedSnapshot{done: make(chan struct{})}
	s.building = e
	s.mu.Unlock()

	began := s.now()
	v := s.tracker.View() // O(labels) under the tracker's lock
	e.seq = v.Seq()
	e.payload, e.err = encodeSnapshot(v, &viewFilter{all: true}, nil)
	s.encodes.Add(1)
	s.mu.Lock()
	s.building = nil
	if e.err == nil {
		e.built = s.now()
		e.ttl = max(snapshotMaxAge, e.built.Sub(began))
		s.cur = e
		s.armDropLocked(e.ttl)
	}
	s.mu.Unlock()
	close(e.done)
	if e.err != nil {
		return nil, true, e.err
	}
	return e, true, nil
}

// armDropLocked schedules dropping cur once it is too old to serve, so that
// its bytes (megabytes at 100,000 users) are not kept for nobody; the
// clients writing them keep their own reference until done. s.mu is held.
func (s *snapshotCache) armDropLocked(after time.Duration) {
	if s.drop == nil {
		s.drop = time.AfterFunc(after, s.expire)
		return
	}
	s.drop.Reset(after)
}

func (s *snapshotCache) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.cur; e != nil && s.now().Sub(e.built) >= e.ttl {
		s.cur = nil
	}
}

// encodeSnapshot encodes the snapshot frame of the users of v that f
// selects; visible, if not nil, gets the JIDs it holds (for a show
// filter). It encodes on a goroutine of its own: JSON encoding a snapshot
// needs a deep stack, and the calling goroutine (a connection's reader
// or writer) would keep that stack while idle (docs/benchmarks.md, memory
// per idle connection). O(users selected).
func encodeSnapshot(v *presence.View, f *viewFilter, visible map[string]bool) ([]byte, error) {
	var data []byte
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		out := []userJSON{}
		// The filter's own candidates only (presence.View.Range), read
		// while updates go on; the states were checked by the filter.
		if err = v.Range(trackerQuery(f, ""), func(u *presence.User) bool {
			out = append(out, toUser(u))
			if visible != nil {
				visible[u.JID] = true
			}
			return true
		}); err != nil {
			return
		}
		data, err = marshalSnapshot(v.Seq(), out)
	}()
	<-done
	if err != nil {
		return nil, errors.Join(errors.New("bridge: encoding a snapshot"), err)
	}
	return data, nil
}
