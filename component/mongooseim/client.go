package mongooseim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/presenced/presenced/component/sessions"
)

// Defaults of the zero values of Client.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultMaxResponse = 64 << 20 // about a million sessions of listSessions
)

// Client calls MongooseIM's admin GraphQL API. Its fields are read at each
// call: set them before the first and do not change them afterwards. A
// Client is safe for concurrent use.
type Client struct {
	// Endpoint is the URL of the admin GraphQL handler, for example
	// http://localhost:5551/api/graphql (a [[listen.http]] with a
	// mongoose_graphql_handler of schema_endpoint = "admin"). Required.
	Endpoint string
	// Host, if set, is sent as the Host header instead of the Endpoint's.
	// MongooseIM routes a request to a handler by its host option matched
	// against the Host header ("_" matches any): with the stock
	// host = "localhost", an Endpoint that names 127.0.0.1 gets 404 unless
	// Host is "localhost".
	Host string
	// User and Password are the handler's username and password, sent with
	// HTTP Basic authentication. An empty User sends no credentials, which
	// only a handler configured without username and password accepts.
	User, Password string
	// HTTPClient sends the requests; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each request, from sending to the last byte of the
	// answer; zero means DefaultTimeout, a negative value no bound (the
	// context's deadline still applies).
	Timeout time.Duration
	// MaxResponse bounds the size of an answer's body in bytes; a larger one
	// is an error. Zero means DefaultMaxResponse.
	MaxResponse int64
}

// ErrUnauthorized matches (errors.Is) an *Error of HTTP status 401: the
// credentials are wrong or missing.
var ErrUnauthorized = errors.New("mongooseim: unauthorized")

// Error is a failure the API reported: the GraphQL errors of an answer, or
// an HTTP status other than 200.
type Error struct {
	// Op names the call, for example "listSessions".
	Op string
	// StatusCode is the HTTP status: 200 for errors raised while executing
	// a query, 400 for a query the server rejected, 401 for wrong
	// credentials.
	StatusCode int
	// Errors are the GraphQL errors of the answer; empty when the body
	// carried none (then Body tells what it carried).
	Errors []ErrorDetail
	// Body is the start of a body that was no GraphQL answer.
	Body string
}

// ErrorDetail is one entry of a GraphQL errors array.
type ErrorDetail struct {
	Message string
	// Code is extensions.code (MongooseIM sets it on every error, for
	// example wrong_credentials, domain_not_found, contact_not_found).
	Code string
	// Path is the path of the field that failed, aliases as sent.
	Path []string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mongooseim: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.StatusCode != http.StatusOK {
		fmt.Fprintf(&b, "HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if len(e.Errors) > 0 || e.Body != "" {
			b.WriteString(": ")
		}
	}
	for i, d := range e.Errors {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.Message)
		if d.Code != "" {
			fmt.Fprintf(&b, " (%s)", d.Code)
		}
	}
	if len(e.Errors) == 0 && e.Body != "" {
		b.WriteString(strconv.Quote(e.Body))
	}
	if e.StatusCode == http.StatusNotFound {
		b.WriteString(" (check the Endpoint's path, and Host: MongooseIM matches the handler's host against the Host header)")
	}
	return b.String()
}

// Is reports whether target is ErrUnauthorized and the status is 401.
func (e *Error) Is(target error) bool {
	return target == ErrUnauthorized && e.StatusCode == http.StatusUnauthorized
}

// request is the body of a GraphQL request over HTTP.
type request struct {
	Query     string         `json:"query"`
	Variables map[string]any `json:"variables,omitempty"`
}

// response is the body of a GraphQL answer.
type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []rawError      `json:"errors"`
}

type rawError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Extensions struct {
		Code any `json:"code"`
	} `json:"extensions"`
}

// Bounds on what an error keeps of what the server sent.
const (
	maxErrors     = 100
	maxMessage    = 500
	maxBodySample = 200
)

func (r *rawError) detail() ErrorDetail {
	d := ErrorDetail{Message: clip(r.Message, maxMessage)}
	if r.Extensions.Code != nil {
		d.Code = clip(fmt.Sprint(r.Extensions.Code), maxMessage)
	}
	for _, p := range r.Path {
		switch p := p.(type) {
		case string:
			d.Path = append(d.Path, clip(p, maxMessage))
		case float64:
			d.Path = append(d.Path, fmt.Sprint(int64(p)))
		}
	}
	return d
}

// do sends query with vars and decodes the answer's data into out. Every
// error it returns starts with "mongooseim: op: ". Errors of the answer
// fail the call even when data came along: partial results are not
// results. The GraphQL errors of an answer are an *Error.
func (c *Client) do(ctx context.Context, op, query string, vars map[string]any, out any) error {
	data, gqlErr, err := c.roundTrip(ctx, op, query, vars)
	if err != nil {
		return err
	}
	if gqlErr != nil {
		return gqlErr
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("mongooseim: %s: malformed data: %w", op, err)
	}
	return nil
}

// roundTrip sends one request. It returns the data (nil or JSON null when
// absent) and, separately, the GraphQL errors of a 200 answer; any other
// failure is err.
func (c *Client) roundTrip(ctx context.Context, op, query string, vars map[string]any) (data json.RawMessage, gqlErr *Error, err error) {
	if c == nil {
		return nil, nil, fmt.Errorf("mongooseim: %s: nil Client", op)
	}
	if c.Endpoint == "" {
		return nil, nil, fmt.Errorf("mongooseim: %s: no Endpoint configured", op)
	}
	body, err := json.Marshal(request{Query: query, Variables: vars})
	if err != nil {
		return nil, nil, fmt.Errorf("mongooseim: %s: encoding the request: %w", op, err)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("mongooseim: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.Host != "" {
		req.Host = c.Host
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, c.transportError(ctx, op, timeout, err)
	}
	defer resp.Body.Close()
	limit := c.MaxResponse
	if limit <= 0 {
		limit = DefaultMaxResponse
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, c.transportError(ctx, op, timeout, err)
	}
	if int64(len(raw)) > limit {
		return nil, nil, fmt.Errorf("mongooseim: %s: response larger than %d bytes (Client.MaxResponse)", op, limit)
	}
	var r response
	jsonErr := json.Unmarshal(raw, &r)
	if resp.StatusCode != http.StatusOK {
		e := &Error{Op: op, StatusCode: resp.StatusCode}
		if jsonErr == nil && len(r.Errors) > 0 {
			e.Errors = details(r.Errors)
		} else {
			e.Body = clip(strings.TrimSpace(string(raw)), maxBodySample)
		}
		return nil, nil, e
	}
	if jsonErr != nil {
		return nil, nil, fmt.Errorf("mongooseim: %s: malformed response: %w", op, jsonErr)
	}
	if len(r.Errors) > 0 {
		gqlErr = &Error{Op: op, StatusCode: resp.StatusCode, Errors: details(r.Errors)}
	}
	if gqlErr == nil && (len(r.Data) == 0 || string(r.Data) == "null") {
		return nil, nil, fmt.Errorf("mongooseim: %s: response without data or errors", op)
	}
	return r.Data, gqlErr, nil
}

var errTimeout = errors.New("request timed out")

// transportError names a timeout of the Client as such; a cancelled or
// expired ctx of the caller keeps its own error.
func (c *Client) transportError(ctx context.Context, op string, timeout time.Duration, err error) error {
	if errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("mongooseim: %s: no answer within %v (Client.Timeout): %w", op, timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("mongooseim: %s: %w", op, err)
}

func details(raw []rawError) []ErrorDetail {
	out := make([]ErrorDetail, 0, min(len(raw), maxErrors))
	for i := range raw {
		if i == maxErrors {
			break
		}
		out = append(out, raw[i].detail())
	}
	return out
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// The Client is the MongooseIM Source of the session reconciler
// (component/sessions).
var _ sessions.Source = (*Client)(nil)
