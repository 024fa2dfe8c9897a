package store

import (
	"context"

	"github.com/presenced/presenced/presence"
)

// Store persists the presence state the tracker publishes. Implementations
// are safe for concurrent use.
type Store interface {
	// Load returns every user the store knows, for presence.Tracker.Restore.
	Load(ctx context.Context) ([]presence.User, error)
	// Apply records events, given in feed order. An error means none or
	// only some were recorded; the writer then retries with a snapshot.
	Apply(ctx context.Context, events []presence.Event) error
	// Replace makes the stored state equal to users (a snapshot), dropping
	// what is not in it.
	Replace(ctx context.Context, users []presence.User) error
	// Close releases the store's resources.
	Close() error
}
