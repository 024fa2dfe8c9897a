package ejabberd

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
	DefaultMaxResponse = 256 << 20 // about a million sessions of connected_users_info
)

// The Client is the ejabberd Source of the generic reconciler.
var _ sessions.Source = (*Client)(nil)

// Client calls ejabberd's HTTP API (mod_http_api). Its fields are read at
// each call: set them before the first and do not change them afterwards.
// A Client is safe for concurrent use.
type Client struct {
	// URL is the base of mod_http_api's handler, without a trailing slash,
	// for example http://127.0.0.1:5281/api (a listener of module
	// ejabberd_http with request_handlers: {/api: mod_http_api}); commands
	// are POSTed to URL/command. Required.
	URL string
	// User and Password are sent with HTTP Basic authentication: an
	// account's full address (presenced@example.org) and its password,
	// which ejabberd checks and then matches against api_permissions. An
	// empty User sends no credentials, which only an api_permissions rule
	// without a user (for example one allowing 127.0.0.1) accepts.
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

// Sentinels that an *Error matches with errors.Is.
var (
	// ErrUnauthorized: HTTP 401, the credentials are wrong or missing
	// where api_permissions wants an account.
	ErrUnauthorized = errors.New("ejabberd: unauthorized")
	// ErrForbidden: HTTP 403, no api_permissions rule lets this caller run
	// the command.
	ErrForbidden = errors.New("ejabberd: forbidden")
)

// Error is an answer of the API with an HTTP status other than 200.
type Error struct {
	// Command is the command called, for example "connected_users_info".
	Command string
	// StatusCode is the HTTP status: 400 for arguments the command does not
	// take, 401 for wrong credentials, 403 for a caller api_permissions
	// does not allow, 404 for an unknown command (or a command the server's
	// modules do not provide: connected_users_info is mod_admin_extra's
	// neighbour in ejabberd_commands, always there in 23.01).
	StatusCode int
	// Code and Message are the body's "code" and "message" when it is
	// ejabberd's error object ({"status":"error","code":32,...}); a body
	// that is a bare JSON string (as for 400) is its Message, with Code 0.
	Code    int
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ejabberd: %s: HTTP %d %s", e.Command, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " (code %d)", e.Code)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		b.WriteString(" (check Client.User, a full account address, and Client.Password)")
	case http.StatusForbidden:
		b.WriteString(" (api_permissions must allow this caller the command " + e.Command + " from mod_http_api)")
	case http.StatusNotFound:
		b.WriteString(" (check the URL: it ends with mod_http_api's path, e.g. /api)")
	}
	return b.String()
}

// Is reports whether target is ErrUnauthorized for a 401 or ErrForbidden
// for a 403.
func (e *Error) Is(target error) bool {
	return (target == ErrUnauthorized && e.StatusCode == http.StatusUnauthorized) ||
		(target == ErrForbidden && e.StatusCode == http.StatusForbidden)
}

// Bounds on what an error keeps of what the server sent.
const maxMessage = 500

// call POSTs args as JSON to URL/command and returns the body of a 200
// answer. Every error it returns starts with "ejabberd: command: ".
func (c *Client) call(ctx context.Context, command string, args any) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("ejabberd: %s: nil Client", command)
	}
	if c.URL == "" {
		return nil, fmt.Errorf("ejabberd: %s: no URL configured", command)
	}
	body, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("ejabberd: %s: encoding the request: %w", command, err)
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/"+command, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("ejabberd: %s: %w", command, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transportError(ctx, command, timeout, err)
	}
	defer resp.Body.Close()
	limit := c.MaxResponse
	if limit <= 0 {
		limit = DefaultMaxResponse
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, transportError(ctx, command, timeout, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("ejabberd: %s: response larger than %d bytes (Client.MaxResponse)", command, limit)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, parseError(command, resp.StatusCode, raw)
	}
	return raw, nil
}

// parseError reads ejabberd's error body: an object with code and message
// (401, 403, 404), or a bare JSON string (400), or anything else, kept
// clipped as the message.
func parseError(command string, status int, raw []byte) *Error {
	e := &Error{Command: command, StatusCode: status}
	var obj struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	var str string
	switch {
	case json.Unmarshal(raw, &obj) == nil && obj.Message != "":
		e.Code, e.Message = obj.Code, clip(obj.Message, maxMessage)
	case json.Unmarshal(raw, &str) == nil:
		e.Message = clip(str, maxMessage)
	default:
		e.Message = strconv.Quote(clip(strings.TrimSpace(string(raw)), maxMessage))
	}
	return e
}

var errTimeout = errors.New("request timed out")

// transportError names a timeout of the Client as such; a cancelled or
// expired ctx of the caller keeps its own error.
func transportError(ctx context.Context, command string, timeout time.Duration, err error) error {
	if errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("ejabberd: %s: no answer within %v (Client.Timeout): %w", command, timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("ejabberd: %s: %w", command, err)
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
