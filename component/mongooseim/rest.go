package mongooseim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the zero values of REST.
const (
	DefaultRESTTimeout     = 10 * time.Second
	DefaultRESTMaxResponse = 4 << 20 // a roster of some 50,000 contacts
)

// REST calls MongooseIM's REST admin API (the mongoose_admin_api handler
// of a [[listen.http]]), which provisioning needs for what the admin
// GraphQL API refuses: roster calls whose contact is a JID without a local
// part, such as an external component's. Its fields are read at each call:
// set them before the first and do not change them afterwards. A REST is
// safe for concurrent use.
type REST struct {
	// URL is the handler's base, its path option included, for example
	// http://mongooseim:8088/api. Required.
	URL string
	// User and Password are the handler's username and password, sent with
	// HTTP Basic authentication. An empty User sends no credentials, which
	// only a handler configured without them accepts (and one configured
	// with them refuses).
	User, Password string
	// HTTPClient sends the requests; nil means a client of the package's
	// own, which keeps up to 32 idle connections to a host (the default
	// transport keeps 2, too few for concurrent requests on keep-alive
	// connections).
	HTTPClient *http.Client
	// Timeout bounds each request, from sending to the last byte of the
	// answer; zero means DefaultRESTTimeout, a negative value no bound (the
	// context's deadline still applies).
	Timeout time.Duration
	// MaxResponse bounds the size of an answer's body in bytes (a user's
	// whole roster, for Contacts); a larger one is an error. Zero means
	// DefaultRESTMaxResponse.
	MaxResponse int64
}

// defaultRESTClient is REST's client when HTTPClient is nil.
var defaultRESTClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t}
}()

func (r *REST) client() *http.Client {
	if r.HTTPClient != nil {
		return r.HTTPClient
	}
	return defaultRESTClient
}

// Contact is one item of a user's roster, as the REST API lists it:
// subscription none, to, from or both; ask none, in, out, both, subscribe
// or unsubscribe (mod_roster's values).
type Contact struct {
	JID          string `json:"jid"`
	Subscription string `json:"subscription"`
	Ask          string `json:"ask"`
}

// ErrNoSuchUser matches (errors.Is) the *RESTError of Contacts for a user
// that has no account. MongooseIM 6.1.0 answers that GET with HTTP 500 and
// an empty body (measured): mongoose_admin_api_contacts has no case for
// mod_roster_api's user_not_exist and the request process crashes, which
// the server logs as an error. A 404 whose message says the user does not
// exist is taken the same, for a release that answers so.
var ErrNoSuchUser = errors.New("mongooseim: no such user")

// RESTError is an answer of the REST API other than success.
type RESTError struct {
	// Request names the request, for example "GET /contacts/alice@example.org".
	Request string
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the JSON string MongooseIM sends with an error (for
	// example "Domain not found"), or the start of another body; empty for
	// an empty body.
	Message string
}

func (e *RESTError) Error() string {
	var b strings.Builder
	b.WriteString("mongooseim: ")
	b.WriteString(e.Request)
	b.WriteString(": ")
	if e.Is(ErrNoSuchUser) {
		fmt.Fprintf(&b, "no such user (HTTP %d", e.StatusCode)
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s)", e.Message)
		} else {
			b.WriteString(" with an empty body, MongooseIM 6.1.0's answer for a user without an account)")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	switch {
	case e.noRoute():
		b.WriteString(" (no such route: check the URL's path, and that the listener has a mongoose_admin_api handler with the contacts API)")
	case e.StatusCode == http.StatusUnauthorized:
		b.WriteString(" (check the handler's username and password)")
	}
	return b.String()
}

// Is reports whether target is ErrUnauthorized and the status is 401, or
// ErrNoSuchUser and the answer is one for a user that does not exist.
func (e *RESTError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrNoSuchUser:
		if !strings.HasPrefix(e.Request, "GET /contacts/") {
			return false
		}
		return (e.StatusCode == http.StatusInternalServerError && e.Message == "") ||
			(e.StatusCode == http.StatusNotFound && strings.Contains(e.Message, "does not exist"))
	}
	return false
}

// noRoute: cowboy found no handler for the path (404, empty body), so
// every request will fail alike.
func (e *RESTError) noRoute() bool {
	return e.StatusCode == http.StatusNotFound && e.Message == ""
}

// Contacts returns user's roster (GET /contacts/USER). user is a bare JID.
// An unknown domain is a *RESTError of status 404 with the message
// "Domain not found"; a user without an account matches ErrNoSuchUser.
func (r *REST) Contacts(ctx context.Context, user string) ([]Contact, error) {
	req := "GET /contacts/" + user
	body, err := r.do(ctx, req, http.MethodGet, []string{"contacts", user}, nil)
	if err != nil {
		return nil, err
	}
	var list []Contact
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("mongooseim: %s: malformed answer: %w", req, err)
	}
	return list, nil
}

// Subscribed sends, on user's behalf, presence of type subscribed to
// contact (PUT /contacts/USER/CONTACT with {"action":"subscribed"}), as
// user's client would: it approves contact's pending request for user's
// presence. MongooseIM answers 204 whether there was a request or not
// (without one it changes nothing), and for a user without an account
// too; Contacts tells what it did.
func (r *REST) Subscribed(ctx context.Context, user, contact string) error {
	_, err := r.do(ctx, "PUT /contacts/"+user+"/"+contact+" subscribed", http.MethodPut,
		[]string{"contacts", user, contact}, []byte(`{"action":"subscribed"}`))
	return err
}

// do sends one request to the path segments under URL and returns the
// body of a 2xx answer. Every error starts with "mongooseim: " and names
// the request.
func (r *REST) do(ctx context.Context, name, method string, segments []string, body []byte) ([]byte, error) {
	if r == nil {
		return nil, fmt.Errorf("mongooseim: %s: nil REST", name)
	}
	if r.URL == "" {
		return nil, fmt.Errorf("mongooseim: %s: no URL configured", name)
	}
	u := strings.TrimSuffix(r.URL, "/")
	for _, s := range segments {
		u += "/" + url.PathEscape(s)
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultRESTTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("mongooseim: %s: %w", name, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.User != "" {
		req.SetBasicAuth(r.User, r.Password)
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return nil, restTransportError(ctx, name, timeout, err)
	}
	defer resp.Body.Close()
	limit := r.MaxResponse
	if limit <= 0 {
		limit = DefaultRESTMaxResponse
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, restTransportError(ctx, name, timeout, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("mongooseim: %s: answer larger than %d bytes (REST.MaxResponse)", name, limit)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &RESTError{Request: name, StatusCode: resp.StatusCode, Message: restMessage(raw)}
	}
	return raw, nil
}

// restMessage is the text of an error body: MongooseIM sends a JSON
// string; anything else is kept as it came, clipped.
func restMessage(raw []byte) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clip(s, maxMessage)
	}
	return clip(strconv.Quote(strings.TrimSpace(string(raw))), maxBodySample)
}

// restTransportError names a timeout of the REST client as such; a
// cancelled or expired ctx of the caller keeps its own error.
func restTransportError(ctx context.Context, name string, timeout time.Duration, err error) error {
	if errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("mongooseim: %s: no answer within %v (REST.Timeout): %w", name, timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("mongooseim: %s: %w", name, err)
}
