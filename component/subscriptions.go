package component

import "sync"

// subscription is the component's side of one user's roster item.
type subscription struct {
	// asked: the component sent subscribe and has not been answered.
	asked bool
	// to: the user approved; the server sends the user's presence.
	to bool
}

// subscriptions keeps the state per bare JID, so that the component asks
// each user at most once and never answers its own echoes.
type subscriptions struct {
	mu sync.Mutex
	m  map[string]*subscription
}

func newSubscriptions() *subscriptions { return &subscriptions{m: make(map[string]*subscription)} }

func (s *subscriptions) get(user string) *subscription {
	sub := s.m[user]
	if sub == nil {
		sub = &subscription{}
		s.m[user] = sub
	}
	return sub
}

// subscribeReceived records that the user asked for the component's
// presence, and reports whether the component should ask back.
func (s *subscriptions) subscribeReceived(user string) (askBack bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.get(user)
	if sub.to || sub.asked {
		return false
	}
	sub.asked = true
	return true
}

// subscribedReceived records that the user approved the component.
func (s *subscriptions) subscribedReceived(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.get(user)
	sub.to, sub.asked = true, false
}

// unsubscribedReceived records that the user refused or revoked the
// component's subscription. The component does not ask again by itself; it
// asks again only if the user subscribes anew.
func (s *subscriptions) unsubscribedReceived(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, user) // nothing left to remember: the map does not grow
}

// users returns every bare JID with a roster relation to the component.
func (s *subscriptions) users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.m))
	for u := range s.m {
		out = append(out, u)
	}
	return out
}
