package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/store"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store. The zero value is ready to use.
type Store struct {
	mu    sync.Mutex
	users map[string]*presence.User
}

// New returns an empty Store.
func New() *Store { return &Store{} }

// Load returns every stored user, sorted by JID.
func (s *Store) Load(context.Context) ([]presence.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]presence.User, 0, len(s.users))
	for _, u := range s.users {
		c := *u
		c.Resources = slices.Clone(u.Resources)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b presence.User) int { return strings.Compare(a.JID, b.JID) })
	return out, nil
}

// Apply records events in order. It never fails.
func (s *Store) Apply(_ context.Context, events []presence.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = make(map[string]*presence.User)
	}
	for i := range events {
		s.applyLocked(&events[i])
	}
	return nil
}

func (s *Store) applyLocked(ev *presence.Event) {
	u := s.users[ev.User]
	if u == nil {
		u = &presence.User{JID: ev.User}
		s.users[ev.User] = u
	}
	i := slices.IndexFunc(u.Resources, func(r presence.Resource) bool { return r.Name == ev.Resource.Name })
	switch ev.Kind {
	case presence.EventOffline:
		if i >= 0 {
			u.Resources = slices.Delete(u.Resources, i, i+1)
		}
	default:
		if i >= 0 {
			u.Resources[i] = ev.Resource
		} else {
			u.Resources = append(u.Resources, ev.Resource)
		}
	}
	a := ev.Aggregate
	u.Online, u.Priority = a.Online, a.Priority
	if a.Online {
		u.Show, u.Status, u.LastSeen = a.Show, a.Status, time.Time{}
		if w := slices.IndexFunc(u.Resources, func(r presence.Resource) bool { return r.Name == a.Resource }); w >= 0 {
			u.Since = u.Resources[w].Since
		}
	} else {
		u.Show, u.Status, u.LastSeen, u.Since = ev.Resource.Show, ev.Resource.Status, ev.Time, ev.Time
	}
}

// Replace makes the stored state equal to users.
func (s *Store) Replace(_ context.Context, users []presence.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users = make(map[string]*presence.User, len(users))
	for _, u := range users {
		c := u
		c.Resources = slices.Clone(u.Resources)
		s.users[u.JID] = &c
	}
	return nil
}

// Close does nothing; it exists for the store.Store interface.
func (s *Store) Close() error { return nil }
