package mongooseim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// UserError is the failure of SubscribeAll for one user.
type UserError struct {
	User string
	Err  error
}

func (e *UserError) Error() string {
	msg := e.Err.Error()
	if strings.HasPrefix(msg, "mongooseim: subscribe ") {
		return msg
	}
	return "mongooseim: subscribe " + e.User + ": " + strings.TrimPrefix(msg, "mongooseim: ")
}
func (e *UserError) Unwrap() error { return e.Err }

// Subscribe makes user and component mutually subscribed: afterwards the
// user's roster holds the component with subscription both, so the server
// sends the user's presence to the component and answers its probes. It is
// SubscribeAll for one user.
func (c *Client) Subscribe(ctx context.Context, user, component string) error {
	return c.SubscribeAll(ctx, []string{user}, component)
}

// SubscribeAll subscribes every user and component mutually, BatchSize
// users per request, one batch after another. It needs the component
// connected: MongooseIM has no admin call that puts an external component
// on a roster, so each user subscribes to the component (roster.subscription
// with action INVITE), the component answers subscribed and asks back (as
// package component does), and the user's side approves that request
// (action ACCEPT). Users already subscribed both ways cost one query and no
// change. The returned error joins one *UserError per failed user (an
// unknown user, a component that did not ask back within SubscribeWait,
// an error of the API); nil means every user is subscribed both ways.
func (c *Client) SubscribeAll(ctx context.Context, users []string, component string) error {
	if c == nil {
		return errors.New("mongooseim: subscribe: nil Client")
	}
	comp, err := jid.Parse(component)
	if err != nil || comp.Resourcepart() != "" {
		return fmt.Errorf("mongooseim: subscribe: invalid component address %q", component)
	}
	var (
		errs []error
		todo []string
		seen = make(map[string]bool, len(users))
	)
	for _, u := range users {
		j, err := jid.Parse(u)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			errs = append(errs, &UserError{u, fmt.Errorf("mongooseim: subscribe %q: not a bare user JID", u)})
			continue
		}
		if b := j.String(); !seen[b] {
			seen[b] = true
			todo = append(todo, b)
		}
	}
	size := c.BatchSize
	if size <= 0 {
		size = DefaultBatchSize
	}
	for len(todo) > 0 {
		if err := ctx.Err(); err != nil {
			for _, u := range todo {
				errs = append(errs, &UserError{u, fmt.Errorf("mongooseim: subscribe %s: %w", u, err)})
			}
			break
		}
		n := min(size, len(todo))
		errs = append(errs, c.subscribeBatch(ctx, todo[:n], comp.String())...)
		todo = todo[n:]
	}
	return errors.Join(errs...)
}

// contactState is what roster.getContact says of the component on one
// user's roster.
type contactState struct {
	Subscription string `json:"subscription"` // NONE, TO, FROM, BOTH
	Ask          string `json:"ask"`          // NONE, IN, OUT, BOTH, SUBSCRIBE, UNSUBSCRIBE
}

// subscribeBatch drives up to BatchSize users to subscription both.
func (c *Client) subscribeBatch(ctx context.Context, users []string, component string) []error {
	wait := c.SubscribeWait
	if wait <= 0 {
		wait = DefaultSubscribeWait
	}
	poll := max(min(250*time.Millisecond, wait/10), 10*time.Millisecond)
	deadline := time.Now().Add(wait)

	type userState struct {
		contact contactState
		invited bool
		err     error
		done    bool
	}
	st := make([]userState, len(users))
	pending := func() []int {
		var p []int
		for i := range st {
			if !st[i].done && st[i].err == nil {
				p = append(p, i)
			}
		}
		return p
	}
	first := true
	for {
		idx := pending()
		if len(idx) == 0 {
			break
		}
		// Read the component's roster item of each pending user (and, the
		// first time, whether the user exists: an INVITE for a user that
		// does not exist is accepted and does nothing).
		states, userErrs, err := c.rosterState(ctx, users, idx, component, first)
		if err != nil {
			for _, i := range idx {
				st[i].err = err
			}
			break
		}
		first = false
		var invite, accept []int
		for k, i := range idx {
			if userErrs[k] != nil {
				st[i].err = userErrs[k]
				continue
			}
			s := states[k]
			st[i].contact = s
			switch {
			case s.Subscription == "BOTH":
				st[i].done = true
			case s.Ask == "IN" || s.Ask == "BOTH":
				// The component asked for the user's presence: approve.
				accept = append(accept, i)
			case !st[i].invited:
				invite = append(invite, i)
				st[i].invited = true
			}
		}
		delay := poll
		if len(invite)+len(accept) > 0 {
			mutErrs, err := c.subscriptionMutation(ctx, users, component, invite, accept)
			if err != nil {
				for _, i := range pending() {
					st[i].err = err
				}
				break
			}
			for i, e := range mutErrs {
				st[i].err = e
			}
			// Look again soon: the component answers within milliseconds.
			delay = max(poll/5, 10*time.Millisecond)
		}
		if len(pending()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, i := range pending() {
				st[i].err = fmt.Errorf("mongooseim: subscribe %s: no mutual subscription with %s within %v "+
					"(roster item: subscription %s, ask %s): is the component connected?",
					users[i], component, wait, orNone(st[i].contact.Subscription), orNone(st[i].contact.Ask))
			}
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			for _, i := range pending() {
				st[i].err = fmt.Errorf("mongooseim: subscribe %s: %w", users[i], ctx.Err())
			}
		case <-t.C:
		}
	}
	var errs []error
	for i := range st {
		if st[i].err != nil {
			errs = append(errs, &UserError{users[i], st[i].err})
		}
	}
	return errs
}

func orNone(s string) string {
	if s == "" {
		return "NONE"
	}
	return s
}

// alias names user i in a batched request. The GraphQL error paths name
// fields by alias, so errors are told apart by it.
func alias(i int) string { return "u" + strconv.Itoa(i) }

// rosterState asks roster.getContact (and account.checkUser if check) for
// the users idx in one request. A missing roster item is state NONE. err
// fails the whole batch; userErrs[k] fails users[idx[k]].
func (c *Client) rosterState(ctx context.Context, users []string, idx []int, component string, check bool) (states []contactState, userErrs []error, err error) {
	var q strings.Builder
	vars := map[string]any{"c": component}
	q.WriteString("query RosterState($c: JID!")
	for _, i := range idx {
		fmt.Fprintf(&q, ", $%s: JID!", alias(i))
		vars[alias(i)] = users[i]
	}
	q.WriteString(") {\n")
	if check {
		q.WriteString("  account {\n")
		for _, i := range idx {
			fmt.Fprintf(&q, "    %s: checkUser(user: $%[1]s) { exist }\n", alias(i))
		}
		q.WriteString("  }\n")
	}
	q.WriteString("  roster {\n")
	for _, i := range idx {
		fmt.Fprintf(&q, "    %s: getContact(user: $%[1]s, contact: $c) { subscription ask }\n", alias(i))
	}
	q.WriteString("  }\n}")

	const op = "getContact"
	data, gqlErr, err := c.roundTrip(ctx, op, q.String(), vars)
	if err != nil {
		return nil, nil, err
	}
	var d struct {
		Account map[string]*struct {
			Exist bool `json:"exist"`
		} `json:"account"`
		Roster map[string]*contactState `json:"roster"`
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, nil, fmt.Errorf("mongooseim: %s: malformed data: %w", op, err)
		}
	}
	byAlias, unattributed := attribute(gqlErr, idx)
	if len(unattributed) > 0 {
		return nil, nil, &Error{Op: op, StatusCode: gqlErr.StatusCode, Errors: unattributed}
	}
	states = make([]contactState, len(idx))
	userErrs = make([]error, len(idx))
	for k, i := range idx {
		a := alias(i)
		var notFound bool
		var other []ErrorDetail
		for _, e := range byAlias[a] {
			if e.category == "roster" && e.Code == "contact_not_found" {
				notFound = true
			} else {
				other = append(other, e.ErrorDetail)
			}
		}
		switch {
		case len(other) > 0:
			userErrs[k] = &Error{Op: op, StatusCode: gqlErr.StatusCode, Errors: other}
		case check && (d.Account[a] == nil):
			userErrs[k] = fmt.Errorf("mongooseim: %s: no account.checkUser answer for %s", op, users[i])
		case check && !d.Account[a].Exist:
			userErrs[k] = fmt.Errorf("mongooseim: subscribe %s: no such user", users[i])
		case d.Roster[a] != nil:
			states[k] = *d.Roster[a]
		case notFound:
			states[k] = contactState{Subscription: "NONE", Ask: "NONE"}
		default:
			userErrs[k] = fmt.Errorf("mongooseim: %s: no answer for %s", op, users[i])
		}
	}
	return states, userErrs, nil
}

// subscriptionMutation sends roster.subscription with INVITE for the users
// invite and ACCEPT for the users accept, in one request. It returns the
// errors by user index; err fails them all.
func (c *Client) subscriptionMutation(ctx context.Context, users []string, component string, invite, accept []int) (map[int]error, error) {
	var q strings.Builder
	vars := map[string]any{"c": component}
	q.WriteString("mutation Subscribe($c: JID!")
	all := append(append([]int(nil), invite...), accept...)
	for _, i := range all {
		fmt.Fprintf(&q, ", $%s: JID!", alias(i))
		vars[alias(i)] = users[i]
	}
	q.WriteString(") {\n  roster {\n")
	for _, i := range invite {
		fmt.Fprintf(&q, "    %s: subscription(user: $%[1]s, contact: $c, action: INVITE)\n", alias(i))
	}
	for _, i := range accept {
		fmt.Fprintf(&q, "    %s: subscription(user: $%[1]s, contact: $c, action: ACCEPT)\n", alias(i))
	}
	q.WriteString("  }\n}")

	const op = "subscription"
	data, gqlErr, err := c.roundTrip(ctx, op, q.String(), vars)
	if err != nil {
		return nil, err
	}
	byAlias, unattributed := attribute(gqlErr, all)
	if len(unattributed) > 0 {
		return nil, &Error{Op: op, StatusCode: gqlErr.StatusCode, Errors: unattributed}
	}
	var d struct {
		Roster map[string]*string `json:"roster"`
	}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("mongooseim: %s: malformed data: %w", op, err)
		}
	}
	out := make(map[int]error)
	for _, i := range all {
		a := alias(i)
		switch {
		case len(byAlias[a]) > 0:
			var ds []ErrorDetail
			for _, e := range byAlias[a] {
				ds = append(ds, e.ErrorDetail)
			}
			out[i] = &Error{Op: op, StatusCode: gqlErr.StatusCode, Errors: ds}
		case d.Roster[a] == nil:
			out[i] = fmt.Errorf("mongooseim: %s: no answer for %s", op, users[i])
		}
	}
	return out, nil
}

type attributed struct {
	ErrorDetail
	category string // the first path element that names a category
}

// attribute sorts the errors of an answer by the alias of the user their
// path names; errors that name none fail the whole request. The operation's
// name may or may not lead the path, so the path is searched.
func attribute(e *Error, idx []int) (byAlias map[string][]attributed, unattributed []ErrorDetail) {
	if e == nil {
		return nil, nil
	}
	known := make(map[string]bool, len(idx))
	for _, i := range idx {
		known[alias(i)] = true
	}
	byAlias = make(map[string][]attributed)
	for _, d := range e.Errors {
		var a, cat string
		for _, p := range d.Path {
			switch {
			case p == "roster" || p == "account":
				cat = p
			case known[p]:
				a = p
			}
		}
		if a == "" {
			unattributed = append(unattributed, d)
			continue
		}
		byAlias[a] = append(byAlias[a], attributed{d, cat})
	}
	return byAlias, unattributed
}
