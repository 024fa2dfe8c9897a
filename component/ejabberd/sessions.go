package ejabberd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/presenced/presenced/component/sessions"
	"github.com/presenced/presenced/presence"
)

// userSession is one entry of connected_users_info's answer, as ejabberd
// 23.01 sends it (testdata/connected_users_info.json, captured from the
// real server); resource (the JID has it), connection, ip, port, node
// and uptime are not read.
type userSession struct {
	JID        string `json:"jid"` // full JID
	Priority   *int64 `json:"priority"`
	Status     string `json:"status"` // available, away, chat, dnd, xa, or unavailable
	StatusText string `json:"statustext"`
}

// ListSessions returns the available sessions of domain (of every domain
// the server hosts when domain is empty), from the command
// connected_users_info, as presence.Tracker.Reconcile takes them.
//
// The command takes no argument and lists the sessions of every virtual
// host; those of other domains are left out here. Each session's full JID
// is split into the bare JID, normalized as the component normalizes
// addresses (mellium's jid.Parse: PRECIS, localpart and domain
// lowercased), and the resource. ejabberd's "status" is the session's last
// show ("available" for none, "away", "chat", "dnd", "xa") and
// "statustext" its status text; priority is clamped to -128..127.
//
// A session whose status is "unavailable" is left out: it has not sent
// initial presence yet (measured: a fresh session is listed as
// unavailable with priority -1), or it sent unavailable. So is a session
// whose address does not parse or lacks a localpart or a resource, and one
// with a status ejabberd does not send (a newer server's). An answer that
// is not a JSON array of sessions is an error, never a shorter list.
// O(sessions).
func (c *Client) ListSessions(ctx context.Context, domain string) ([]presence.Session, error) {
	if domain != "" {
		d, err := sessions.NormalizeDomain(domain)
		if err != nil {
			return nil, fmt.Errorf("ejabberd: connected_users_info: invalid domain %q", domain)
		}
		domain = d
	}
	raw, err := c.call(ctx, "connected_users_info", struct{}{})
	if err != nil {
		return nil, err
	}
	return parseSessions(raw, domain)
}

// parseSessions decodes connected_users_info's answer, keeping the
// available sessions of domain ("" for all).
func parseSessions(raw []byte, domain string) ([]presence.Session, error) {
	var list []userSession
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("ejabberd: connected_users_info: malformed response: %w", err)
	}
	if list == nil {
		return nil, fmt.Errorf("ejabberd: connected_users_info: response is not a list of sessions")
	}
	out := make([]presence.Session, 0, len(list))
	for _, s := range list {
		if s.Status == "unavailable" {
			continue
		}
		show, ok := presence.ParseShow(s.Status)
		if s.Status == "available" {
			show, ok = presence.ShowNone, true
		} else if s.Status == "" {
			ok = false // "" is no status of ejabberd's
		}
		if !ok {
			continue
		}
		user, resource, ok := sessions.SplitJID(s.JID)
		if !ok {
			continue
		}
		if domain != "" && !strings.HasSuffix(user, "@"+domain) {
			continue
		}
		prio := int64(0)
		if s.Priority != nil {
			prio = min(max(*s.Priority, -128), 127)
		}
		out = append(out, presence.Session{User: user, Resource: resource, Show: show, Status: s.StatusText, Priority: int(prio)})
	}
	return out, nil
}
