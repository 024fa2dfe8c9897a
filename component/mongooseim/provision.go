package mongooseim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/presenced/presenced/internal/jidnorm"
)

// Defaults of the zero values of Provisioner.
const (
	DefaultConcurrency     = 8
	DefaultStatementUsers  = 5000
	DefaultDatabaseTimeout = 30 * time.Second
	DefaultNick            = "presenced"
)

// Provisioner puts an external component on users' rosters on MongooseIM
// with subscription from (or both, where the user already received the
// component's presence), so that the server sends the component the
// users' presence: for users offline and online alike, without the
// component being connected. See the package documentation for why it
// takes the database and the REST admin API. Its fields are read at each
// call: set them before and do not change them during one.
type Provisioner struct {
	// REST is MongooseIM's REST admin API. Required.
	REST REST
	// Database is the URL of MongooseIM's RDBMS, PostgreSQL
	// (postgres://...), whose rosterusers table holds the rosters
	// (mod_roster with backend = "rdbms"). Required.
	Database string
	// Component is the component's JID, a bare domain such as
	// presence.example.org. Required.
	Component string
	// Nick names new roster items; "" means DefaultNick.
	Nick string
	// Concurrency bounds the REST requests in flight; zero means
	// DefaultConcurrency.
	Concurrency int
	// StatementUsers bounds the users written by one SQL statement; zero
	// means DefaultStatementUsers.
	StatementUsers int
	// DatabaseTimeout bounds connecting to the database and each statement;
	// zero means DefaultDatabaseTimeout.
	DatabaseTimeout time.Duration

	// openRoster, if set, replaces the PostgreSQL roster store (tests).
	openRoster func(ctx context.Context) (rosterStore, error)
}

// Outcome is what Provision did for one user.
type Outcome struct {
	// User is the bare JID, normalized; a user that did not parse as one
	// is as given.
	User string
	// Subscription is the component's item on the user's roster when
	// Provision verified it: from or both. Empty with Err.
	Subscription string
	// Err is nil when the component is on the user's roster with
	// subscription from or both; else a *UserError.
	Err error
}

// UserError is the failure of Provision for one user.
type UserError struct {
	User string
	Err  error
}

func (e *UserError) Error() string {
	return "mongooseim: provision " + e.User + ": " + strings.TrimPrefix(e.Err.Error(), "mongooseim: ")
}

func (e *UserError) Unwrap() error { return e.Err }

// notDone is the error of users a stopped run did not get to: it wraps
// the cause of the stop.
type notDone struct{ cause error }

func (e notDone) Error() string {
	return "not done: " + strings.TrimPrefix(e.cause.Error(), "mongooseim: ")
}

func (e notDone) Unwrap() error { return e.cause }

// Provision puts the component on the roster of each of users (bare JIDs)
// in four steps:
//
//  1. It reads each user's roster (REST GET /contacts/USER): a user
//     without an account, or of a domain the server does not host, fails
//     there, and nothing is written for it.
//  2. It writes, in one SQL statement per StatementUsers users, a pending
//     request of the component's for each user's presence in
//     rosterusers (see sqlPending), as if the component had sent
//     subscribe.
//  3. It approves the request on each user's behalf (REST PUT
//     /contacts/USER/COMPONENT with action subscribed, Concurrency at a
//     time): mod_roster turns the item into from (or both), pushes it to
//     the user's sessions, and a user online sends the component its
//     current presence at once.
//  4. It reads each roster again and checks the item is from or both.
//
// Where step 3 or 4 fails for a user, the item is put back as it was
// before step 2 (if it is still as step 2 left it), so that a failed run
// leaves no request pending and takes nobody's subscription away. Users
// already provisioned go through the same steps, which is harmless (and
// reaches their sessions again): running Provision twice is safe.
//
// It returns one Outcome per distinct user, in the order given. The error
// is non-nil when the run stopped before it had tried every user: users
// were invalid (no REST URL, no database, a malformed component address:
// then no outcomes), the REST API refused the credentials or has no
// contacts route, a server could not be reached, the database failed, or
// ctx ended. The users it did not get to carry an Err that wraps it
// (errors.Is). No request is retried: running Provision again is the
// retry.
func (p *Provisioner) Provision(ctx context.Context, users []string) ([]Outcome, error) {
	outs, errs, err := p.provision(ctx, users)
	for i, e := range errs {
		if e != nil {
			outs[i].Err = &UserError{outs[i].User, e}
		}
	}
	return outs, err
}

// provision is Provision with user i's failure in errs[i].
func (p *Provisioner) provision(ctx context.Context, users []string) (outs []Outcome, errs []error, err error) {
	if p == nil {
		return nil, nil, errors.New("mongooseim: provision: nil Provisioner")
	}
	c, err := jidnorm.Parse(p.Component)
	if err != nil || c.Localpart() != "" || c.Resourcepart() != "" {
		return nil, nil, fmt.Errorf("mongooseim: provision: the component's address %q is not a bare domain", p.Component)
	}
	component := c.String()
	if p.REST.URL == "" {
		return nil, nil, errors.New("mongooseim: provision: no REST URL configured")
	}
	if p.Database == "" && p.openRoster == nil {
		return nil, nil, errors.New("mongooseim: provision: no database URL configured")
	}
	conc := p.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	defer p.REST.client().CloseIdleConnections()

	outs = make([]Outcome, 0, len(users))
	var (
		todo, bad []int
		keys      = map[int]rosterKey{}
		seen      = map[string]bool{}
	)
	for _, u := range users {
		j, err := jidnorm.Parse(u)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			bad = append(bad, len(outs))
			outs = append(outs, Outcome{User: u})
			continue
		}
		b := j.String()
		if seen[b] {
			continue
		}
		seen[b] = true
		keys[len(outs)] = rosterKey{server: j.Domainpart(), username: j.Localpart()}
		todo = append(todo, len(outs))
		outs = append(outs, Outcome{User: b})
	}
	errs = make([]error, len(outs))
	for _, i := range bad {
		errs[i] = errors.New("not a bare user JID")
	}

	// 1. Read each roster: who exists, and what the item was before.
	before := make([]*Contact, len(outs))
	checked := make([]bool, len(outs))
	run, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	each(run, conc, todo, func(ctx context.Context, i int) {
		list, err := p.REST.Contacts(ctx, outs[i].User)
		if err != nil {
			if stopsRun(err) {
				stop(err)
			}
			errs[i] = err
			return
		}
		before[i], checked[i] = find(list, component), true
	})
	if cause := context.Cause(run); cause != nil {
		for _, i := range todo {
			if !checked[i] && (errs[i] == nil || !userFault(errs[i])) {
				errs[i] = notDone{cause}
			}
		}
		return outs, errs, cause
	}
	var next []int
	for _, i := range todo {
		if checked[i] {
			next = append(next, i)
		}
	}
	if len(next) == 0 {
		return outs, errs, nil
	}

	// 2. The pending requests, in a few statements.
	store, err := p.open(ctx, component)
	if err != nil {
		for _, i := range next {
			errs[i] = notDone{err}
		}
		return outs, errs, err
	}
	defer store.close()
	rows := make([]rosterKey, len(next))
	for k, i := range next {
		rows[k] = keys[i]
	}
	written, dbErr := store.pending(ctx, rows)
	for _, i := range next[written:] {
		errs[i] = notDone{dbErr}
	}
	next = next[:written]

	// 3 and 4. Approve and verify, each user on its own: a failure stops
	// nothing but ctx, since every user here has a row to finish or undo.
	verified := make([]bool, len(outs))
	each(ctx, conc, next, func(ctx context.Context, i int) {
		u := outs[i].User
		if err := p.REST.Subscribed(ctx, u, component); err != nil {
			errs[i] = err
			return
		}
		list, err := p.REST.Contacts(ctx, u)
		if err != nil {
			errs[i] = fmt.Errorf("verifying: %w", err)
			return
		}
		it := find(list, component)
		if it == nil || (it.Subscription != "from" && it.Subscription != "both") {
			errs[i] = fmt.Errorf("after the approval, %s", describe(component, it))
			return
		}
		outs[i].Subscription, verified[i] = it.Subscription, true
	})
	var undo []restoreRow
	var undone []int
	for _, i := range next {
		if verified[i] {
			continue
		}
		if errs[i] == nil {
			cause := context.Cause(ctx)
			if cause == nil {
				cause = errors.New("not attempted")
			}
			errs[i] = notDone{cause}
		}
		r := restoreRow{key: keys[i]}
		if b := before[i]; b != nil {
			r.existed = true
			r.subscription, r.ask = subscriptionLetter[b.Subscription], askLetter[b.Ask]
			if r.subscription == "" || r.ask == "" {
				errs[i] = fmt.Errorf("%w; its roster item may be left pending (it had subscription %q, ask %q, values unknown here)",
					errs[i], b.Subscription, b.Ask)
				continue
			}
		}
		undo = append(undo, r)
		undone = append(undone, i)
	}
	if len(undo) > 0 {
		// Even when ctx ended: a row left pending would take presence away.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.dbTimeout())
		err := store.restore(rctx, undo)
		cancel()
		for _, i := range undone {
			if err != nil {
				errs[i] = fmt.Errorf("%w; its roster item may be left pending (%v): run provision again", errs[i], err)
			} else {
				errs[i] = fmt.Errorf("%w; its roster item, if still pending, is back as it was", errs[i])
			}
		}
	}
	if dbErr != nil {
		return outs, errs, dbErr
	}
	if err := context.Cause(ctx); err != nil {
		return outs, errs, err
	}
	return outs, errs, nil
}

func (p *Provisioner) dbTimeout() time.Duration {
	if p.DatabaseTimeout > 0 {
		return p.DatabaseTimeout
	}
	return DefaultDatabaseTimeout
}

// open connects the roster store.
func (p *Provisioner) open(ctx context.Context, component string) (rosterStore, error) {
	if p.openRoster != nil {
		return p.openRoster(ctx)
	}
	nick := p.Nick
	if nick == "" {
		nick = DefaultNick
	}
	chunk := p.StatementUsers
	if chunk <= 0 {
		chunk = DefaultStatementUsers
	}
	return openPG(ctx, p.Database, component, nick, chunk, p.dbTimeout())
}

// each calls f for every index of idx, at most n at a time, and returns
// when all calls have; once ctx is done it starts no more.
func each(ctx context.Context, n int, idx []int, f func(ctx context.Context, i int)) {
	feed := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(idx)) {
		wg.Go(func() {
			for i := range feed {
				f(ctx, i)
			}
		})
	}
feeding:
	for _, i := range idx {
		select {
		case feed <- i:
		case <-ctx.Done():
			break feeding
		}
	}
	close(feed)
	wg.Wait()
}

// find returns the item of contact in list, or nil.
func find(list []Contact, contact string) *Contact {
	for i := range list {
		if strings.EqualFold(list[i].JID, contact) {
			return &list[i]
		}
	}
	return nil
}

func describe(component string, it *Contact) string {
	if it == nil {
		return component + " is not on the roster"
	}
	return fmt.Sprintf("%s's item has subscription %s, ask %s, not from or both", component, it.Subscription, it.Ask)
}

// stopsRun reports whether err will be every user's: wrong credentials,
// no such route, a server that cannot be reached.
func stopsRun(err error) bool {
	var re *RESTError
	if errors.As(err, &re) {
		return re.StatusCode == http.StatusUnauthorized || re.noRoute()
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// userFault reports whether err is about the user, not the run: the
// server's answer for this user (no such user, unknown domain, a bad JID).
func userFault(err error) bool {
	var re *RESTError
	if errors.Is(err, ErrNoSuchUser) {
		return true
	}
	return errors.As(err, &re) && !stopsRun(err) && re.StatusCode >= 400 && re.StatusCode < 500
}
