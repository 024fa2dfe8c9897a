package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/presenced/presenced/internal/jidnorm"
)

// maxTokenLen bounds the work an unauthenticated client can cause.
const maxTokenLen = 64 << 10

// Verifier checks tokens against the keys and rules of a Config. It is
// safe for concurrent use.
type Verifier struct {
	byAlg    map[string][]key // every key, by its pinned algorithm
	byKid    map[string]key   // keys that have a kid
	algs     string           // the configured algorithms, for messages
	issuer   string           // for messages; the parser checks it
	audience string           // for messages; the parser checks it
	parser   *jwt.Parser
	now      func() time.Time // time.Now; tests replace it
}

// NewVerifier loads the keys that cfg names and returns a Verifier for
// them. Its errors name the offending file and say what is wrong with it;
// a Config without any key is an error.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: negative leeway %v", cfg.Leeway)
	}
	var keys []key
	for _, f := range cfg.KeyFiles {
		ks, err := loadKeyFile(f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if cfg.JWKSFile != "" {
		ks, err := loadJWKSFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no keys configured: set KeyFiles or JWKSFile")
	}
	v := &Verifier{
		byAlg:    map[string][]key{},
		byKid:    map[string]key{},
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		now:      time.Now,
	}
	v.parser = v.newParser(cfg.Leeway)
	for _, k := range keys {
		v.byAlg[k.alg] = append(v.byAlg[k.alg], k)
		if k.kid != "" {
			v.byKid[k.kid] = k // kids are unique: only JWKS keys have one
		}
	}
	algs := make([]string, 0, len(v.byAlg))
	for a := range v.byAlg {
		algs = append(algs, a)
	}
	sort.Strings(algs)
	v.algs = strings.Join(algs, ", ")
	return v, nil
}

// tokenClaims is the payload as the token carries it.
type tokenClaims struct {
	jwt.RegisteredClaims
	Domains []string `json:"domains"`
	Users   []string `json:"users"`
	Scope   string   `json:"scope"`
}

// Verify checks token's signature and claims and returns what it allows.
// Its errors wrap exactly one of ErrMalformed, ErrAlgorithm,
// ErrUnknownKey, ErrBadSignature, ErrExpired, ErrNotYetValid,
// ErrWrongIssuer and ErrWrongAudience, and never contain the token.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, fail(ErrMalformed, "empty token")
	}
	if len(token) > maxTokenLen {
		return nil, fail(ErrMalformed, fmt.Sprintf("longer than %d bytes", maxTokenLen))
	}
	var tc tokenClaims
	parsed, err := v.parser.ParseWithClaims(token, &tc, v.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		// Only returned once the signature is good, so tc is the
		// issuer's and its times may be shown.
		return nil, v.claimsError(&tc, err)
	case err != nil:
		return nil, classify(parsed, err)
	}
	c := &Claims{
		Subject: tc.Subject,
		Admin:   slices.Contains(strings.Fields(tc.Scope), AdminScope),
		Expires: tc.ExpiresAt.Time,
	}
	for i, d := range tc.Domains {
		j, err := jidnorm.Parse(d)
		if err != nil || j.Localpart() != "" || j.Resourcepart() != "" {
			return nil, fail(ErrMalformed, fmt.Sprintf("domains[%d] is not a domain", i))
		}
		c.Domains = append(c.Domains, j.Domainpart())
	}
	for i, u := range tc.Users {
		j, err := jidnorm.Parse(u)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return nil, fail(ErrMalformed, fmt.Sprintf("users[%d] is not a bare JID with a localpart", i))
		}
		c.Users = append(c.Users, j.String())
	}
	return c, nil
}

// keyFor is the jwt.Keyfunc: it picks the keys that may verify t, only
// ever among keys pinned to t's algorithm. The parser has decoded the
// header and found a registered signing method before calling it.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, fail(ErrMalformed, `"crit" header not supported`)
	}
	// alg is one of the names jwt registers, so it is safe to show.
	alg := t.Method.Alg()
	if alg == "none" {
		return nil, fail(ErrAlgorithm, `"none" is never accepted`)
	}
	candidates := v.byAlg[alg]
	if len(candidates) == 0 {
		return nil, fail(ErrAlgorithm, fmt.Sprintf("%s (configured: %s)", alg, v.algs))
	}
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, fail(ErrMalformed, `"kid" header is not a string`)
		}
		if kid != "" {
			if k, ok := v.byKid[kid]; ok {
				if k.alg != alg {
					return nil, fail(ErrAlgorithm, fmt.Sprintf("the token's kid names a %s key, the token uses %s", k.alg, alg))
				}
				return k.pub, nil
			}
			candidates = slices.DeleteFunc(slices.Clone(candidates), func(k key) bool { return k.kid != "" })
			if len(candidates) == 0 {
				return nil, fail(ErrUnknownKey, "no key has the token's kid")
			}
		}
	}
	if len(candidates) == 1 {
		return candidates[0].pub, nil
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(candidates))}
	for i, k := range candidates {
		set.Keys[i] = k.pub
	}
	return set, nil
}

// classify maps the parser's errors to ours. Errors from keyFor come
// through as they are; the others get details that never quote the token.
func classify(t *jwt.Token, err error) error {
	var ae *authError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(ErrMalformed, malformedDetail(err))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fail(ErrBadSignature, "")
	case errors.Is(err, jwt.ErrTokenUnverifiable) && t != nil:
		if _, ok := t.Header["alg"].(string); ok {
			// Unregistered names are not shown: they are arbitrary text.
			return fail(ErrAlgorithm, "unsupported alg")
		}
		return fail(ErrMalformed, `no "alg" header`)
	default:
		return fail(ErrMalformed, "cannot parse")
	}
}

// malformedDetail describes a malformed-token error from the parser
// without its causes' text, which can quote the token's contents (a bad
// "exp" is quoted whole), keeping only which part failed and where.
func malformedDetail(err error) string {
	// The parser's message is "token is malformed: <part>[: <cause>]".
	msg := strings.TrimPrefix(err.Error(), jwt.ErrTokenMalformed.Error()+": ")
	part, _, _ := strings.Cut(msg, ": ")
	var (
		b64Err  base64.CorruptInputError
		typeErr *json.UnmarshalTypeError
		synErr  *json.SyntaxError
	)
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("%s: claim %q has the wrong type", part, typeErr.Field)
	case errors.As(err, &synErr):
		return fmt.Sprintf("%s: invalid JSON at offset %d", part, synErr.Offset)
	case errors.As(err, &b64Err):
		return fmt.Sprintf("%s: invalid base64url at offset %d", part, int64(b64Err))
	}
	return part
}

// newParser is the parser of Verify. golang-jwt validates the registered
// claims, after the signature and only then, with the rules that Config
// documents: exp required, nbf and iat honoured when present, iss and aud
// checked only when configured, the same leeway for all three times.
func (v *Verifier) newParser(leeway time.Duration) *jwt.Parser {
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	opts := []jwt.ParserOption{
		// Non-canonical base64 would let one token have many spellings.
		jwt.WithStrictDecoding(),
		// golang-jwt compares now with nbf-leeway (and iat-leeway), not
		// now+leeway with nbf: the same answer for any clock short of
		// time.Time's limits, where Add saturates.
		jwt.WithLeeway(leeway),
		jwt.WithExpirationRequired(),
		// RFC 7519 leaves iat unchecked; an iat in the future is refused
		// like an nbf in the future, as the issuer's clock is wrong.
		jwt.WithIssuedAt(),
		// A closure, so that v.now is read when Verify runs: tests
		// replace it after NewVerifier has built the parser.
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	// Both only when set: WithAudience("") would require an "aud" claim,
	// and an empty issuer means any, or none, is accepted.
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	return jwt.NewParser(opts...)
}

// claimsError maps the validator's error, which joins every rule that
// failed, to exactly one of ours, by a fixed precedence: issuer, audience,
// missing exp, exp, nbf, iat. The validator's messages are not shown;
// ours show the configured iss and aud, not the token's, and the token's
// times, to help find clock skew.
//
// A missing claim is reported by golang-jwt as ErrTokenRequiredClaimMissing
// whichever claim it is (the name only in the text), so tc tells which one:
// exactly the claims whose absence the validator refuses.
func (v *Verifier) claimsError(tc *tokenClaims, err error) error {
	missing := errors.Is(err, jwt.ErrTokenRequiredClaimMissing)
	switch {
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ErrWrongIssuer, fmt.Sprintf("want %q", v.issuer))
	case missing && v.issuer != "" && tc.Issuer == "":
		return fail(ErrWrongIssuer, fmt.Sprintf("no iss, want %q", v.issuer))
	// An absent or empty aud (golang-jwt: missing) and one without our
	// audience (invalid) have always had the same message.
	case errors.Is(err, jwt.ErrTokenInvalidAudience),
		missing && v.audience != "" && noAudience(tc.Audience):
		return fail(ErrWrongAudience, fmt.Sprintf("aud does not include %q", v.audience))
	case missing && tc.ExpiresAt == nil:
		// Malformed, not expired: the token is not one of ours, however
		// often it is retried.
		return fail(ErrMalformed, "no exp claim (required)")
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ErrExpired, fmt.Sprintf("at %s", tc.ExpiresAt.UTC().Format(time.RFC3339)))
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fail(ErrNotYetValid, fmt.Sprintf("nbf is %s", tc.NotBefore.UTC().Format(time.RFC3339)))
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		// One error for nbf and iat: to the client both mean "retry later".
		return fail(ErrNotYetValid, fmt.Sprintf("iat %s is in the future", tc.IssuedAt.UTC().Format(time.RFC3339)))
	default:
		// A rule the parser options above do not turn on; refuse rather
		// than guess, without the validator's text.
		return fail(ErrMalformed, "claims not valid")
	}
}

// noAudience reports whether golang-jwt takes aud as absent: no value, or
// the single value "" (which a string claim "" decodes to).
func noAudience(aud jwt.ClaimStrings) bool {
	return len(aud) == 0 || len(aud) == 1 && aud[0] == ""
}
