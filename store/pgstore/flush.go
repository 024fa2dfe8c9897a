// The flusher: Apply hands events to the pending buffer, and a goroutine
// writes the buffer every FlushInterval (or when BatchSize events wait),
// keeping it and retrying with backoff while writes fail.

package pgstore

import (
	"context"
	"time"

	"github.com/presenced/presenced/internal/backoff"
	"github.com/presenced/presenced/presence"
)

// Apply buffers events for the flusher and returns at once; it never fails.
// O(len(events)).
func (s *Store) Apply(_ context.Context, events []presence.Event) error {
	s.mu.Lock()
	for i := range events {
		s.pend.add(&events[i])
	}
	n := s.pend.bound(s.cfg.HistoryLimit)
	s.dropped += n
	s.total += n
	full := s.pend.events >= s.cfg.BatchSize
	s.mu.Unlock()
	if full {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Flush writes everything buffered now, waiting for it. The flusher does
// this by itself; tests and Replace call it to read their own writes.
func (s *Store) Flush(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.flushLocked(ctx)
}

func (s *Store) flushLocked(ctx context.Context) error {
	s.mu.Lock()
	p := s.pend
	s.pend = newPending()
	dropped := s.dropped
	s.dropped = 0
	s.mu.Unlock()
	if dropped > 0 {
		s.log.Warn("pgstore: history rows dropped while PostgreSQL was unavailable", "dropped", dropped, "limit", s.cfg.HistoryLimit)
	}
	if p.empty() {
		return nil
	}
	began := time.Now()
	err := s.write(ctx, p)
	if s.flushes != nil {
		result := "ok"
		if err != nil {
			result = "error"
		}
		s.flushes.WithLabelValues(result).Observe(time.Since(began).Seconds())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		// Keep it all for the next try; newer changes win over older state.
		p.merge(s.pend)
		s.pend = p
		n := s.pend.bound(s.cfg.HistoryLimit)
		s.dropped += n
		s.total += n
		s.health = err
		return err
	}
	s.health = nil
	return nil
}

// run flushes every FlushInterval (or when a batch is full) until stopped,
// retrying failed writes with the project's one retry policy,
// internal/backoff: after the n-th failure in a row it waits
// Policy{Min: FlushInterval, Max: 10s}.Delay(n), nominally
// FlushInterval·2ⁿ capped at 10s (2×FlushInterval after the first
// failure), with equal jitter (a random point in the upper half of that).
// A write that works resets the count.
func (s *Store) run(ctx context.Context) {
	defer close(s.done)
	retry := backoff.Policy{Min: s.cfg.FlushInterval, Max: 10 * time.Second}
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	retention := time.NewTicker(s.cfg.RetentionInterval)
	defer retention.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.kick:
		case <-retention.C:
			s.retain(ctx)
			continue
		}
		if err := s.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			delay := retry.Delay(failures)
			s.log.Error("pgstore: write failed; keeping changes in memory and retrying", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			continue
		}
		if failures > 0 {
			s.log.Info("pgstore: writes work again; caught up")
			failures = 0
		}
	}
}
