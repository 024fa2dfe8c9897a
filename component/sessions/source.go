package sessions

import (
	"context"
	"fmt"
	"strings"

	"github.com/presenced/presenced/internal/jidnorm"
	"github.com/presenced/presenced/presence"
)

// Source is a server's list of sessions.
type Source interface {
	// ListSessions returns the available sessions of domain (of every
	// domain the server hosts when domain is empty), as
	// presence.Tracker.Reconcile takes them: User a normalized bare JID
	// (internal/jidnorm, as the component normalizes), Resource not
	// empty, Priority within -128..127. Sessions that are connected but not
	// available are left out. The list must be complete: an error, never
	// a partial list, when the server answered only in part (a missing
	// session would go offline).
	ListSessions(ctx context.Context, domain string) ([]presence.Session, error)
}

// NormalizeDomain returns domain as the bare JIDs of presence carry it
// (internal/jidnorm: mellium's jid.Parse, PRECIS, lowercased, no empty label). An empty domain, or one with a
// localpart or a resource, is an error.
func NormalizeDomain(domain string) (string, error) {
	if domain == "" || strings.ContainsAny(domain, "@/") {
		return "", fmt.Errorf("sessions: invalid domain %q", domain)
	}
	j, err := jidnorm.Parse(domain)
	if err != nil {
		return "", fmt.Errorf("sessions: invalid domain %q: %w", domain, err)
	}
	return j.Domainpart(), nil
}

// SplitJID splits a session's full JID into its normalized bare JID and
// resource; false for an address that does not parse, or has no localpart
// or no resource (the component could not have parsed it either).
func SplitJID(s string) (bare, resource string, ok bool) {
	j, err := jidnorm.Parse(s)
	if err != nil || j.Resourcepart() == "" || j.Localpart() == "" {
		return "", "", false
	}
	return j.Bare().String(), j.Resourcepart(), true
}
