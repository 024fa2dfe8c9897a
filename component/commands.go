package component

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/form"
	"mellium.im/xmpp/jid"

	"github.com/presenced/presenced/internal/jidnorm"
	"github.com/presenced/presenced/presence"
	"github.com/presenced/presenced/xmppext/adhoc"
)

// Command nodes: XEP-0133's where it defines the command, presenced's own
// otherwise.
const (
	nsAdmin          = "http://jabber.org/protocol/admin"
	nodeOnlineNum    = nsAdmin + "#get-online-users-num"
	nodeOnlineList   = nsAdmin + "#get-online-users-list"
	nodeActiveUsers  = nsAdmin + "#get-active-users"
	nodeIdleUsers    = nsAdmin + "#get-idle-users"
	nodeLastLogin    = nsAdmin + "#get-user-lastlogin"
	nodeUserStats    = nsAdmin + "#user-stats"
	nodeEndSession   = nsAdmin + "#end-user-session"
	nsPresenced      = "urn:presenced:commands"
	nodeStats        = nsPresenced + "#stats"
	nodeReconcileNow = nsPresenced + "#reconcile-now"
)

// isAdmin reports whether from is one of the configured admins: a bare JID,
// or a whole domain.
func (c *Component) isAdmin(from jid.JID) bool {
	bare, domain := from.Bare().String(), from.Domainpart()
	for _, a := range c.cfg.Admins {
		if a == bare || a == domain {
			return true
		}
	}
	return false
}

// result builds a result form whose FORM_TYPE is formType.
func result(formType string, fields ...form.Field) *form.Data {
	return form.New(append([]form.Field{form.Result, form.Hidden("FORM_TYPE", form.Value(formType))}, fields...)...)
}

// field builds a field of kind mk (form.Text, form.JIDMulti…) with a label
// and values: form's options take one value each.
func field(mk func(string, ...form.Option) form.Field, name, label string, values ...string) form.Field {
	opts := make([]form.Option, 0, len(values)+1)
	if label != "" {
		opts = append(opts, form.Label(label))
	}
	for _, v := range values {
		opts = append(opts, form.Value(v))
	}
	return mk(name, opts...)
}

// ask builds the form of a command's first stage: one required field.
func ask(title string, mk func(string, ...form.Option) form.Field, name, label string) adhoc.Response {
	return adhoc.Response{Form: form.New(form.Title(title), form.Hidden("FORM_TYPE", form.Value(nsAdmin)),
		mk(name, form.Label(label), form.Required))}
}

// accounts reads the bare JIDs submitted in the field name.
func accounts(f *form.Data, name string) ([]string, error) {
	var out []string
	// Raw, not GetJIDs: a submission may leave out the field's type, and
	// form then reads it as text-single.
	values, _ := f.Raw(name)
	for _, v := range values {
		j, err := jidnorm.Parse(strings.TrimSpace(v))
		if err != nil || j.Localpart() == "" {
			return nil, fmt.Errorf("%q is not a user JID", v)
		}
		out = append(out, j.Bare().String())
	}
	if len(out) == 0 {
		return nil, errors.New(name + " is required")
	}
	return out, nil
}

// onlineStates are the aggregate states of an online user.
var onlineStates = []string{"available", "chat", "away", "xa", "dnd"}

// onlineUsers returns the online users keep accepts, in JID order, read
// from a View: the tracker's lock is held for O(domains), not O(users).
func (c *Component) onlineUsers(keep func(*presence.User) bool) []presence.User {
	var out []presence.User
	_ = c.cfg.Tracker.View().Range(presence.Query{States: onlineStates}, func(u *presence.User) bool {
		if keep(u) {
			out = append(out, *u)
		}
		return true
	})
	return out
}

func jids(us []presence.User) []string {
	out := make([]string, len(us))
	for i := range us {
		out[i] = us[i].JID
	}
	return out
}

// idle reports whether the user's winning resource says it is idle.
func idle(u *presence.User) bool { return len(u.Resources) > 0 && !u.Resources[0].Idle.IsZero() }

// adminCommands are the commands admins run from their XMPP client.
func (c *Component) adminCommands() []adhoc.Command {
	done := func(f *form.Data) (adhoc.Response, error) { return adhoc.Response{Done: true, Form: f}, nil }
	return []adhoc.Command{
		{Node: nodeOnlineNum, Name: "Get Number of Online Users", Run: func(adhoc.Request) (adhoc.Response, error) {
			n := 0
			for _, d := range c.cfg.Tracker.Counts().Domains {
				n += d.Online() // kept as changes happen: O(domains)
			}
			return done(result(nsAdmin, field(form.Text, "onlineusersnum", "Online users", strconv.Itoa(n))))
		}},
		{Node: nodeOnlineList, Name: "Get List of Online Users", Run: func(adhoc.Request) (adhoc.Response, error) {
			us := c.onlineUsers(func(*presence.User) bool { return true })
			lines := make([]string, len(us))
			for i := range us {
				lines[i] = fmt.Sprintf("%s %s %s", us[i].JID, us[i].State(), us[i].Status)
			}
			return done(result(nsAdmin,
				field(form.JIDMulti, "onlineuserjids", "Online users", jids(us)...),
				field(form.TextMulti, "onlineusers", "Online users with show and status", lines...)))
		}},
		{Node: nodeActiveUsers, Name: "Get List of Active Users", Run: func(adhoc.Request) (adhoc.Response, error) {
			us := c.onlineUsers(func(u *presence.User) bool { return !idle(u) })
			return done(result(nsAdmin, field(form.JIDMulti, "activeuserjids", "Active users", jids(us)...)))
		}},
		{Node: nodeIdleUsers, Name: "Get List of Idle Users", Run: func(adhoc.Request) (adhoc.Response, error) {
			us := c.onlineUsers(idle)
			return done(result(nsAdmin, field(form.JIDMulti, "idleuserjids", "Idle users", jids(us)...)))
		}},
		{Node: nodeLastLogin, Name: "Get User Last Login Time", Run: func(r adhoc.Request) (adhoc.Response, error) {
			if r.Stage == 0 {
				return ask("Last activity of a user", form.JID, "accountjid", "The user"), nil
			}
			acc, err := accounts(r.Form, "accountjid")
			if err != nil {
				return adhoc.Response{}, err
			}
			last := "unknown"
			if u, ok := c.cfg.Tracker.Get(acc[0]); ok {
				last = "online now"
				if !u.Online {
					last = u.LastSeen.UTC().Format(time.RFC3339)
				}
			}
			return done(result(nsAdmin, field(form.JID, "accountjid", "", acc[0]),
				field(form.Text, "lastlogin", "Last seen", last)))
		}},
		{Node: nodeUserStats, Name: "Get User Statistics", Run: func(r adhoc.Request) (adhoc.Response, error) {
			if r.Stage == 0 {
				return ask("Presence of a user", form.JID, "accountjid", "The user"), nil
			}
			acc, err := accounts(r.Form, "accountjid")
			if err != nil {
				return adhoc.Response{}, err
			}
			u, _ := c.cfg.Tracker.Get(acc[0])
			var res []string
			for _, rs := range u.Resources {
				show := string(rs.Show)
				if show == "" {
					show = "available"
				}
				res = append(res, fmt.Sprintf("%s %s priority %d %s", rs.Name, show, rs.Priority, rs.Status))
			}
			return done(result(nsAdmin, field(form.JID, "accountjid", "", acc[0]),
				field(form.Text, "presence", "Presence", u.State()+" "+u.Status),
				field(form.TextMulti, "onlineresources", "Online resources", res...)))
		}},
		{Node: nodeEndSession, Name: "End User Session", Run: func(r adhoc.Request) (adhoc.Response, error) {
			if r.Stage == 0 {
				return ask("Mark users offline in presenced", form.JIDMulti, "accountjids", "The users"), nil
			}
			acc, err := accounts(r.Form, "accountjids")
			if err != nil {
				return adhoc.Response{}, err
			}
			n := 0
			for _, a := range acc {
				n += c.cfg.Tracker.Drop(a, presence.ReasonAdmin)
			}
			return adhoc.Response{Done: true, Note: fmt.Sprintf("%d resources marked offline (reason admin)", n)}, nil
		}},
		{Node: nodeStats, Name: "Presence statistics by show and domain", Run: func(adhoc.Request) (adhoc.Response, error) {
			// Counts kept as changes happen, by served domain (and other):
			// O(domains), whatever the users.
			counts := map[string]int{}
			users := 0
			states := presence.StateNames()
			for _, d := range c.cfg.Tracker.Counts().Domains {
				for s, n := range d.Users {
					if n > 0 {
						counts["show "+states[s]] += n
					}
				}
				if n := d.Total(); n > 0 {
					counts["domain "+d.Domain] += n
				}
				users += d.Total()
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			lines := make([]string, len(keys))
			for i, k := range keys {
				lines[i] = fmt.Sprintf("%s: %d", k, counts[k])
			}
			return done(result(nsPresenced,
				field(form.Text, "users", "Known users", strconv.Itoa(users)),
				field(form.TextMulti, "counts", "Users by show and by domain", lines...)))
		}},
		{Node: nodeReconcileNow, Name: "Probe every online user now", Run: func(adhoc.Request) (adhoc.Response, error) {
			select {
			case c.sweepNow <- struct{}{}:
			default: // one is already asked for
			}
			return adhoc.Response{Done: true, Note: "probe sweep started"}, nil
		}},
	}
}
