package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/presenced/presenced/presence"
)

// Writer follows a tracker's change feed and mirrors it into a Store.
type Writer struct {
	// Tracker is the source of events. Required.
	Tracker *presence.Tracker
	// Store is the destination. Required.
	Store Store
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
	// Batch is the most events handed to one Apply; zero means 512.
	Batch int
	// RetryDelay is how long to wait after a failed write; zero means 1s.
	RetryDelay time.Duration
}

// Serve mirrors the feed until ctx ends, then writes what is already
// published and returns context.Canceled (or the error of that last write). It starts with a full snapshot, so a
// restarted Writer never leaves a gap. A failing Store is retried every
// RetryDelay with a fresh snapshot; Serve only returns early for a
// misconfigured Writer.
func (w *Writer) Serve(ctx context.Context) error {
	if w.Tracker == nil || w.Store == nil {
		return errors.New("store: writer needs a Tracker and a Store")
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = 512
	}
	delay := w.RetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	buf := make([]presence.Event, batch)
	var sub *presence.Subscription // nil: the store needs a snapshot first
	for ctx.Err() == nil {
		var err error
		if sub == nil {
			sub, err = w.resync(ctx)
		} else {
			var n int
			n, err = sub.Read(ctx, buf)
			if err == nil {
				if err = w.Store.Apply(ctx, buf[:n]); err != nil {
					sub.Close() // those events are consumed: resync
					sub = nil
				}
			} else if errors.Is(err, presence.ErrLagged) {
				sub, err = nil, nil
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Error("store: write failed; retrying with a snapshot", "err", err, "retry_in", delay)
			if sub != nil {
				sub.Close()
			}
			sub = nil
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
		}
	}
	return w.final(sub, buf)
}

// resync replaces the stored state with a snapshot and subscribes after it,
// atomically.
func (w *Writer) resync(ctx context.Context) (*presence.Subscription, error) {
	users, _, sub := w.Tracker.Subscribe(presence.Filter{}, 0)
	if err := w.Store.Replace(ctx, users); err != nil {
		sub.Close()
		return nil, fmt.Errorf("store: replace: %w", err)
	}
	return sub, nil
}

// final leaves the store equal to the tracker when Serve stops: it writes the
// events published since sub, or a snapshot when there is no valid sub. It
// has a short deadline of its own, since Serve's context has ended.
func (w *Writer) final(sub *presence.Subscription, buf []presence.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sub != nil {
		defer sub.Close()
	}
	for sub != nil {
		n, err := sub.TryRead(buf)
		if err != nil || n == 0 {
			if err == nil {
				return context.Canceled
			}
			break
		}
		if err := w.Store.Apply(ctx, buf[:n]); err != nil {
			break
		}
	}
	last, err := w.resync(ctx)
	if err != nil {
		return fmt.Errorf("store: final flush: %w", err)
	}
	last.Close()
	return context.Canceled
}
