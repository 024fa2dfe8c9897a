package mongooseim

import (
	"context"
	"fmt"

	"github.com/presenced/presenced/component/sessions"
	"github.com/presenced/presenced/presence"
)

// The query of ListSessions: only the fields presence needs (the schema's
// Session also has connection, ip, port, node and uptime).
const (
	queryListSessions = `query ListSessions($domain: DomainName) {
  session { listSessions(domain: $domain) { user priority } }
}`
	queryListAllSessions = `query ListAllSessions {
  session { listSessions { user priority } }
}`
)

type listSessionsData struct {
	Session *struct {
		ListSessions *[]struct {
			User     string `json:"user"`
			Priority *int64 `json:"priority"`
		} `json:"listSessions"`
	} `json:"session"`
}

// ListSessions returns the available sessions of domain (of every domain the
// server hosts when domain is empty), from the admin query
// session.listSessions, as presence.Tracker.Reconcile takes them.
//
// Each session's full JID is split into the bare JID, normalized as the
// component normalizes addresses (mellium's jid.Parse: PRECIS, localpart
// and domain lowercased), and the resource. The schema gives a session's
// priority but neither its show nor its status: Show and Status are left
// empty (Reconcile keeps the show and status of resources it knows; a
// session it did not know comes online as plainly available until its next
// presence says more). Priority is clamped to -128..127.
//
// A session without priority is left out: MongooseIM sets the priority
// undefined (null in GraphQL) when a session sends unavailable, so such a
// session is connected but not available. A session that has not sent its
// initial presence yet cannot be told apart, though: MongooseIM opens
// sessions with priority 0, and the list has nothing else to go by. A
// session whose address does not parse, or that has no localpart or no
// resource, is left out too (the component could not have parsed it
// either).
func (c *Client) ListSessions(ctx context.Context, domain string) ([]presence.Session, error) {
	query, vars := queryListAllSessions, map[string]any(nil)
	if domain != "" {
		query, vars = queryListSessions, map[string]any{"domain": domain}
	}
	var data listSessionsData
	if err := c.do(ctx, "listSessions", query, vars, &data); err != nil {
		return nil, err
	}
	if data.Session == nil || data.Session.ListSessions == nil {
		return nil, fmt.Errorf("mongooseim: listSessions: response without session.listSessions")
	}
	list := *data.Session.ListSessions
	out := make([]presence.Session, 0, len(list))
	for _, s := range list {
		if s.Priority == nil {
			continue
		}
		user, resource, ok := sessions.SplitJID(s.User)
		if !ok {
			continue
		}
		out = append(out, presence.Session{
			User:     user,
			Resource: resource,
			Priority: int(min(max(*s.Priority, -128), 127)),
		})
	}
	return out, nil
}
