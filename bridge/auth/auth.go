package auth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Config says which keys and claims Verify accepts.
type Config struct {
	// KeyFiles are PEM files of public keys, each pinned to the algorithm
	// its type implies: RSA (2048 bits or more) to RS256, ECDSA on P-256
	// to ES256, Ed25519 to EdDSA. A file may hold several PUBLIC KEY, RSA
	// PUBLIC KEY or CERTIFICATE blocks; private keys are refused. An entry
	// with the prefix "hs256:", as in "hs256:/etc/presenced/secret", names
	// a file holding a raw HMAC secret (32 bytes or more; trailing CR and
	// LF dropped) for HS256. Keys from these files have no kid. Nil means
	// none.
	KeyFiles []string
	// JWKSFile is a JSON Web Key Set file (RFC 7517). Each key must have
	// an "alg": RS256 (kty RSA), ES256 (kty EC, crv P-256), EdDSA (kty
	// OKP, crv Ed25519) or HS256 (kty oct, with "k"); it may have a "kid",
	// unique in the set. Keys with "use": "enc" are skipped. Empty means
	// none. KeyFiles and JWKSFile may be combined, but at least one key is
	// needed.
	JWKSFile string
	// Issuer, when set, must equal the token's "iss". Empty means any
	// issuer, or none, is accepted.
	Issuer string
	// Audience, when set, must be one of the token's "aud" values. Empty
	// means "aud" is not checked.
	Audience string
	// Leeway is the clock skew allowed when checking "exp", "nbf" and
	// "iat". Zero means 30s; it may not be negative.
	Leeway time.Duration
}

// DefaultLeeway is the Leeway used when Config.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// AdminScope is the scope that makes a token's Claims.Admin true.
const AdminScope = "presence:admin"

// Claims is what a verified token allows.
type Claims struct {
	// Subject is the token's "sub": for web presence, the user's bare JID.
	// It is passed through as the token has it.
	Subject string
	// Domains are the XMPP domains whose users the token may see, from the
	// "domains" claim, normalized.
	Domains []string
	// Users are bare JIDs the token may see in addition to Domains, from
	// the "users" claim, normalized.
	Users []string
	// Admin is true when the space-separated "scope" claim contains
	// "presence:admin": the token sees everyone and may use admin calls.
	Admin bool
	// Expires is the token's "exp".
	Expires time.Time
}

// SeesAll reports whether c may see every user: the admin scope.
func (c *Claims) SeesAll() bool { return c != nil && c.Admin }

// CanSee reports whether the token may see the user with bare JID jid: an
// admin sees everyone; anyone else sees the users listed in Users and the
// users of the domains in Domains. jid must be normalized, as
// jid.JID.Bare().String() gives; a JID with a resource is never seen
// (except by an admin), and neither is the empty string. A nil *Claims
// sees no one.
func (c *Claims) CanSee(jid string) bool {
	if c == nil {
		return false
	}
	if c.Admin {
		return true
	}
	// A bare JID has no '/'; refusing it also stops a resource holding
	// '@' from posing as a domain.
	if jid == "" || strings.IndexByte(jid, '/') >= 0 {
		return false
	}
	if slices.Contains(c.Users, jid) {
		return true
	}
	// A localpart cannot contain '@', so the first one ends it; a JID
	// without one is a domain.
	domain := jid
	if _, d, ok := strings.Cut(jid, "@"); ok {
		domain = d
	}
	return domain != "" && slices.Contains(c.Domains, domain)
}

// The errors Verify returns wrap exactly one of these; test with
// errors.Is. Their messages, and the details added after them, never
// contain the token.
var (
	// ErrMalformed: the token is not a well-formed JWT for this service:
	// bad encoding or JSON, no "alg", no "exp", a "crit" header, a claim
	// of the wrong type, or a "domains"/"users" entry that is not a domain
	// or bare JID.
	ErrMalformed = errors.New("auth: malformed token")
	// ErrAlgorithm: the token's "alg" is "none", unknown, or not the
	// algorithm of any key that could verify it.
	ErrAlgorithm = errors.New("auth: algorithm not allowed")
	// ErrUnknownKey: the token's "kid" names no configured key, and there
	// are no keys without a kid to try instead.
	ErrUnknownKey = errors.New("auth: unknown key")
	// ErrBadSignature: no candidate key verifies the signature.
	ErrBadSignature = errors.New("auth: bad signature")
	// ErrExpired: "exp" has passed, beyond the leeway.
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: "nbf" or "iat" is in the future, beyond the leeway.
	ErrNotYetValid = errors.New("auth: token not yet valid")
	// ErrWrongIssuer: Config.Issuer is set and "iss" differs or is absent.
	ErrWrongIssuer = errors.New("auth: wrong issuer")
	// ErrWrongAudience: Config.Audience is set and "aud" does not have it.
	ErrWrongAudience = errors.New("auth: wrong audience")
)

// authError is a sentinel with details. Its Error keeps the sentinel's
// "auth: " prefix in front.
type authError struct {
	kind   error
	detail string
}

func (e *authError) Error() string {
	if e.detail == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.detail
}

func (e *authError) Unwrap() error { return e.kind }

func fail(kind error, detail string) error {
	return &authError{kind: kind, detail: detail}
}

// TokenFromRequest finds the token of r: the credentials of an
// "Authorization: Bearer <token>" header (the scheme in any case), else,
// on a WebSocket upgrade only (IsWebSocketUpgrade), the query parameter
// "access_token", which browsers' WebSocket API needs because it cannot
// set headers. Anywhere else a token in the URL is not read: URLs end up
// in access logs, proxies and browser history. ok is false when there is
// no token it reads.
func TokenFromRequest(r *http.Request) (token string, ok bool) {
	if r == nil {
		return "", false
	}
	if scheme, cred, found := strings.Cut(r.Header.Get("Authorization"), " "); found && strings.EqualFold(scheme, "Bearer") {
		if cred = strings.TrimSpace(cred); cred != "" {
			return cred, true
		}
	}
	if r.URL != nil && IsWebSocketUpgrade(r) {
		if t := r.URL.Query().Get("access_token"); t != "" {
			return t, true
		}
	}
	return "", false
}

// IsWebSocketUpgrade reports whether r asks for a WebSocket (RFC 6455,
// section 4.1): a GET with "Upgrade: websocket" and a Connection header
// listing "upgrade", in any case.
func IsWebSocketUpgrade(r *http.Request) bool {
	if r.Method != http.MethodGet || !strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket") {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for opt := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), "upgrade") {
				return true
			}
		}
	}
	return false
}
