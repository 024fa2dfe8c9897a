package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var allErrors = []error{
	ErrMalformed, ErrAlgorithm, ErrUnknownKey, ErrBadSignature,
	ErrExpired, ErrNotYetValid, ErrWrongIssuer, ErrWrongAudience,
}

// checkErr checks that err wraps want and no other sentinel, has the
// "auth: " prefix and does not echo any part of token.
func checkErr(t *testing.T, err, want error, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", want)
	}
	for _, e := range allErrors {
		if got := errors.Is(err, e); got != (e == want) {
			t.Errorf("errors.Is(%q, %v) = %v", err, e, got)
		}
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "auth: ") {
		t.Errorf("error %q lacks the prefix \"auth: \"", msg)
	}
	for _, leak := range []string{"tomorrow", "evil", "x@example.org", "a@example.org/phone", "XS999", "other"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q quotes the token's contents", msg)
		}
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			t.Errorf("error %q echoes the token", msg)
		}
	}
}

func TestVerifyAlgorithms(t *testing.T) {
	ks := keys()
	for _, k := range []keyPair{ks.rsa, ks.ec, ks.ed, ks.hs} {
		for _, src := range []string{"KeyFiles", "JWKSFile"} {
			t.Run(k.alg+"/"+src, func(t *testing.T) {
				cfg := Config{Issuer: "https://issuer.example", Audience: "presenced"}
				kid := ""
				if src == "KeyFiles" {
					cfg.KeyFiles = []string{keyFile(t, k)}
				} else {
					kid = "k-" + k.alg
					cfg.JWKSFile = jwksFile(t, jwkOf(k, kid))
				}
				v := newTestVerifier(t, cfg)
				c, err := v.Verify(sign(t, k, kid, claims(nil)))
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				want := &Claims{
					Subject: "alice@example.org",
					Domains: []string{"example.org"},
					Users:   []string{"bob@example.net"},
					Expires: testNow.Add(time.Hour),
				}
				if !claimsEqual(c, want) {
					t.Errorf("claims = %+v, want %+v", c, want)
				}
			})
		}
	}
}

func claimsEqual(a, b *Claims) bool {
	return a.Subject == b.Subject && slices.Equal(a.Domains, b.Domains) &&
		slices.Equal(a.Users, b.Users) && a.Admin == b.Admin && a.Expires.Equal(b.Expires)
}

// tamper replaces the payload of token with c, keeping its signature.
func tamper(t *testing.T, token string, c jwt.MapClaims) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// rawToken builds a token from a header and payload with the signature sig.
func rawToken(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + enc(sig)
}

func TestVerifyRejects(t *testing.T) {
	ks := keys()
	rsaPEM := pemPublic(t, ks.rsa.pub)
	rsaFile := writeFile(t, "rsa.pem", rsaPEM)
	hsFile := hs256Prefix + writeFile(t, "secret", ks.hs.secret)
	jwks := jwksFile(t, jwkOf(ks.rsa, "rsa-1"), jwkOf(ks.ec, "ec-1"), jwkOf(ks.hs, "hs-1"))
	base := Config{Issuer: "https://issuer.example", Audience: "presenced"}
	withKeys := func(files ...string) Config { c := base; c.KeyFiles = files; return c }
	withJWKS := base
	withJWKS.JWKSFile = jwks

	tests := []struct {
		name  string
		cfg   Config
		token func(t *testing.T) string
		want  error
	}{
		{"alg confusion: HS256 keyed with the RSA public key", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, keyPair{method: jwt.SigningMethodHS256, priv: rsaPEM}, "", claims(nil))
		}, ErrAlgorithm},
		{"alg confusion with an HMAC key configured too", withKeys(rsaFile, hsFile), func(t *testing.T) string {
			return sign(t, keyPair{method: jwt.SigningMethodHS256, priv: rsaPEM}, "", claims(nil))
		}, ErrBadSignature},
		{"alg confusion: HS256 with the kid of an RSA key", withJWKS, func(t *testing.T) string {
			return sign(t, keyPair{method: jwt.SigningMethodHS256, priv: rsaPEM}, "rsa-1", claims(nil))
		}, ErrAlgorithm},
		{"ES256 token naming an RSA key", withJWKS, func(t *testing.T) string {
			return sign(t, ks.ec, "rsa-1", claims(nil))
		}, ErrAlgorithm},
		{"alg none", withKeys(rsaFile, hsFile), func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrAlgorithm},
		{"alg none with a signature", withKeys(hsFile), func(t *testing.T) string {
			return rawToken(`{"alg":"none"}`, `{"exp":1924991999}`, []byte("sig"))
		}, ErrAlgorithm},
		{"alg not configured", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.ed, "", claims(nil))
		}, ErrAlgorithm},
		{"alg HS512 with the right secret", withKeys(hsFile), func(t *testing.T) string {
			return sign(t, keyPair{method: jwt.SigningMethodHS512, priv: ks.hs.secret}, "", claims(nil))
		}, ErrAlgorithm},
		{"alg unknown", withKeys(hsFile), func(t *testing.T) string {
			return rawToken(`{"alg":"XS999"}`, `{"exp":1924991999}`, []byte("sig"))
		}, ErrAlgorithm},
		{"expired", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"exp": at(-time.Hour)}))
		}, ErrExpired},
		{"nbf in the future", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"nbf": at(time.Minute)}))
		}, ErrNotYetValid},
		{"iat in the future", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"iat": at(time.Minute)}))
		}, ErrNotYetValid},
		{"wrong issuer", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"iss": "https://evil.example"}))
		}, ErrWrongIssuer},
		{"no issuer", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"iss": nil}))
		}, ErrWrongIssuer},
		{"wrong audience", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"aud": []string{"other", "more"}}))
		}, ErrWrongAudience},
		{"no audience", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"aud": nil}))
		}, ErrWrongAudience},
		{"unknown kid", withJWKS, func(t *testing.T) string {
			return sign(t, ks.rsa, "rsa-2", claims(nil))
		}, ErrUnknownKey},
		{"tampered payload", withKeys(rsaFile), func(t *testing.T) string {
			tok := sign(t, ks.rsa, "", claims(nil))
			return tamper(t, tok, claims(map[string]any{"scope": "presence:admin"}))
		}, ErrBadSignature},
		{"tampered payload, HMAC", withKeys(hsFile), func(t *testing.T) string {
			tok := sign(t, ks.hs, "", claims(nil))
			return tamper(t, tok, claims(map[string]any{"domains": []string{"example.com"}}))
		}, ErrBadSignature},
		{"signed by another key", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa2, "", claims(nil))
		}, ErrBadSignature},
		{"signed by another key, kid of a configured one", withJWKS, func(t *testing.T) string {
			return sign(t, ks.rsa2, "rsa-1", claims(nil))
		}, ErrBadSignature},
		{"bad signature and expired", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa2, "", claims(map[string]any{"exp": at(-time.Hour)}))
		}, ErrBadSignature},
		{"no exp", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"exp": nil}))
		}, ErrMalformed},
		{"exp not a number", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"exp": "tomorrow"}))
		}, ErrMalformed},
		{"domains not an array", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"domains": "example.org"}))
		}, ErrMalformed},
		{"domains entry with a localpart", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"domains": []string{"x@example.org"}}))
		}, ErrMalformed},
		{"users entry with a resource", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"users": []string{"a@example.org/phone"}}))
		}, ErrMalformed},
		{"users entry without a localpart", withKeys(rsaFile), func(t *testing.T) string {
			return sign(t, ks.rsa, "", claims(map[string]any{"users": []string{"example.org"}}))
		}, ErrMalformed},
		{"crit header", withKeys(rsaFile), func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
			tok.Header["crit"] = []string{"exp"}
			s, err := tok.SignedString(ks.rsa.priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrMalformed},
		{"kid not a string", withJWKS, func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
			tok.Header["kid"] = 7
			s, err := tok.SignedString(ks.rsa.priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ErrMalformed},
		{"no alg", withKeys(rsaFile), func(t *testing.T) string {
			return rawToken(`{"typ":"JWT"}`, `{"exp":1924991999}`, []byte("sig"))
		}, ErrMalformed},
		{"empty", withKeys(rsaFile), func(*testing.T) string { return "" }, ErrMalformed},
		{"garbage", withKeys(rsaFile), func(*testing.T) string { return "not a token at all" }, ErrMalformed},
		{"two segments", withKeys(rsaFile), func(*testing.T) string { return "eyJhbGciOiJSUzI1NiJ9.e30" }, ErrMalformed},
		{"header not JSON", withKeys(rsaFile), func(*testing.T) string {
			return rawToken(`{alg`, `{}`, []byte("sig"))
		}, ErrMalformed},
		{"padded base64", withKeys(rsaFile), func(t *testing.T) string {
			parts := strings.Split(sign(t, ks.rsa, "", claims(nil)), ".")
			parts[2] += "=="
			return strings.Join(parts, ".")
		}, ErrMalformed},
		{"bearer prefix left on", withKeys(rsaFile), func(t *testing.T) string {
			return "Bearer " + sign(t, ks.rsa, "", claims(nil))
		}, ErrMalformed},
		{"too long", withKeys(hsFile), func(t *testing.T) string {
			return sign(t, ks.hs, "", claims(map[string]any{"pad": strings.Repeat("x", maxTokenLen)}))
		}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.cfg)
			token := tt.token(t)
			c, err := v.Verify(token)
			if c != nil {
				t.Errorf("Verify returned claims %+v with error %v", c, err)
			}
			checkErr(t, err, tt.want, token)
		})
	}
}

func TestLeeway(t *testing.T) {
	ks := keys()
	file := keyFile(t, ks.ed)
	tests := []struct {
		name   string
		leeway time.Duration
		mods   map[string]any
		want   error // nil: valid
	}{
		{"exp 10s ago, default leeway", 0, map[string]any{"exp": at(-10 * time.Second)}, nil},
		{"exp 29s ago, default leeway", 0, map[string]any{"exp": at(-29 * time.Second)}, nil},
		{"exp 30s ago, default leeway", 0, map[string]any{"exp": at(-30 * time.Second)}, ErrExpired},
		{"exp 40s ago, default leeway", 0, map[string]any{"exp": at(-40 * time.Second)}, ErrExpired},
		{"exp 90s ago, leeway 2m", 2 * time.Minute, map[string]any{"exp": at(-90 * time.Second)}, nil},
		{"exp 5s ago, leeway 1s", time.Second, map[string]any{"exp": at(-5 * time.Second)}, ErrExpired},
		{"exp 1s ago, leeway 1ns", time.Nanosecond, map[string]any{"exp": at(-time.Second)}, ErrExpired},
		{"exp now, default leeway", 0, map[string]any{"exp": at(0)}, nil},
		{"nbf in 20s, default leeway", 0, map[string]any{"nbf": at(20 * time.Second)}, nil},
		{"nbf in 30s, default leeway", 0, map[string]any{"nbf": at(30 * time.Second)}, nil},
		{"nbf in 31s, default leeway", 0, map[string]any{"nbf": at(31 * time.Second)}, ErrNotYetValid},
		{"nbf in 90s, leeway 2m", 2 * time.Minute, map[string]any{"nbf": at(90 * time.Second)}, nil},
		{"iat in 20s, default leeway", 0, map[string]any{"iat": at(20 * time.Second)}, nil},
		{"iat in 40s, default leeway", 0, map[string]any{"iat": at(40 * time.Second)}, ErrNotYetValid},
		{"iat long ago", 0, map[string]any{"iat": at(-24 * time.Hour)}, nil},
		{"iat in 30s, default leeway", 0, map[string]any{"iat": at(30 * time.Second)}, nil},
		{"iat in 31s, default leeway", 0, map[string]any{"iat": at(31 * time.Second)}, ErrNotYetValid},
		{"iat in 90s, leeway 2m", 2 * time.Minute, map[string]any{"iat": at(90 * time.Second)}, nil},
		{"iat in 5s, leeway 1s", time.Second, map[string]any{"iat": at(5 * time.Second)}, ErrNotYetValid},
		{"nbf in 5s, leeway 1s", time.Second, map[string]any{"nbf": at(5 * time.Second)}, ErrNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, Config{KeyFiles: []string{file}, Leeway: tt.leeway})
			token := sign(t, ks.ed, "", claims(tt.mods))
			_, err := v.Verify(token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, tt.want, token)
		})
	}
}

// TestClaimErrors pins the messages of the claim rules, which golang-jwt
// checks and claimsError names: clients and logs see these, and where
// several rules fail the first of iss, aud, exp, nbf, iat is the one named.
func TestClaimErrors(t *testing.T) {
	ks := keys()
	file := keyFile(t, ks.hs)
	full := Config{KeyFiles: []string{file}, Issuer: "https://issuer.example", Audience: "presenced"}
	tests := []struct {
		name string
		cfg  Config
		mods map[string]any
		want error
		msg  string
	}{
		{"expired", full, map[string]any{"exp": at(-time.Hour)},
			ErrExpired, "auth: token expired: at 2030-06-01T11:00:00Z"},
		{"expired exactly at the leeway", full, map[string]any{"exp": at(-DefaultLeeway)},
			ErrExpired, "auth: token expired: at 2030-06-01T11:59:30Z"},
		{"nbf in the future", full, map[string]any{"nbf": at(time.Hour)},
			ErrNotYetValid, "auth: token not yet valid: nbf is 2030-06-01T13:00:00Z"},
		{"iat in the future", full, map[string]any{"iat": at(time.Hour)},
			ErrNotYetValid, "auth: token not yet valid: iat 2030-06-01T13:00:00Z is in the future"},
		{"no exp", full, map[string]any{"exp": nil},
			ErrMalformed, "auth: malformed token: no exp claim (required)"},
		{"no exp, nothing configured", Config{KeyFiles: []string{file}}, map[string]any{"exp": nil},
			ErrMalformed, "auth: malformed token: no exp claim (required)"},
		{"wrong issuer", full, map[string]any{"iss": "https://evil.example"},
			ErrWrongIssuer, `auth: wrong issuer: want "https://issuer.example"`},
		{"no issuer", full, map[string]any{"iss": nil},
			ErrWrongIssuer, `auth: wrong issuer: no iss, want "https://issuer.example"`},
		{"empty issuer", full, map[string]any{"iss": ""},
			ErrWrongIssuer, `auth: wrong issuer: no iss, want "https://issuer.example"`},
		{"wrong audience", full, map[string]any{"aud": "other"},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		{"wrong audiences", full, map[string]any{"aud": []string{"other", "more"}},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		// golang-jwt calls the next three a missing claim, not a wrong one;
		// the message stays what it was.
		{"no audience", full, map[string]any{"aud": nil},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		{"empty audience string", full, map[string]any{"aud": ""},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		{"empty audience array", full, map[string]any{"aud": []string{}},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		{"only an empty audience", full, map[string]any{"aud": []string{""}},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		{"issuer before audience", full, map[string]any{"iss": "x", "aud": nil},
			ErrWrongIssuer, `auth: wrong issuer: want "https://issuer.example"`},
		{"missing issuer before missing audience and exp", full, map[string]any{"iss": nil, "aud": nil, "exp": nil},
			ErrWrongIssuer, `auth: wrong issuer: no iss, want "https://issuer.example"`},
		{"issuer before expiry", full, map[string]any{"iss": "x", "exp": at(-time.Hour)},
			ErrWrongIssuer, `auth: wrong issuer: want "https://issuer.example"`},
		{"audience before missing exp", full, map[string]any{"aud": "other", "exp": nil},
			ErrWrongAudience, `auth: wrong audience: aud does not include "presenced"`},
		{"missing exp before nbf", full, map[string]any{"exp": nil, "nbf": at(time.Hour)},
			ErrMalformed, "auth: malformed token: no exp claim (required)"},
		{"expiry before nbf", full, map[string]any{"exp": at(-time.Hour), "nbf": at(time.Hour)},
			ErrExpired, "auth: token expired: at 2030-06-01T11:00:00Z"},
		{"nbf before iat", full, map[string]any{"nbf": at(time.Hour), "iat": at(2 * time.Hour)},
			ErrNotYetValid, "auth: token not yet valid: nbf is 2030-06-01T13:00:00Z"},
		{"claims before domains", full, map[string]any{"exp": at(-time.Hour), "domains": []string{"x@example.org"}},
			ErrExpired, "auth: token expired: at 2030-06-01T11:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.cfg)
			token := sign(t, ks.hs, "", claims(tt.mods))
			c, err := v.Verify(token)
			if c != nil {
				t.Errorf("Verify returned claims %+v with error %v", c, err)
			}
			checkErr(t, err, tt.want, token)
			if err.Error() != tt.msg {
				t.Errorf("error = %q, want %q", err, tt.msg)
			}
		})
	}
}

// TestVerifierClock checks that the claims are judged by v.now when Verify
// runs, not by the clock the Verifier was built with.
func TestVerifierClock(t *testing.T) {
	ks := keys()
	v := newTestVerifier(t, Config{KeyFiles: []string{keyFile(t, ks.ed)}})
	token := sign(t, ks.ed, "", claims(nil)) // valid for an hour from testNow
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("Verify at testNow: %v", err)
	}
	v.now = func() time.Time { return testNow.Add(2 * time.Hour) }
	_, err := v.Verify(token)
	checkErr(t, err, ErrExpired, token)
	v.now = func() time.Time { return testNow.Add(-time.Hour) } // before iat
	_, err = v.Verify(token)
	checkErr(t, err, ErrNotYetValid, token)
}

func TestIssuerAudienceOptional(t *testing.T) {
	ks := keys()
	v := newTestVerifier(t, Config{KeyFiles: []string{keyFile(t, ks.ec)}})
	token := sign(t, ks.ec, "", claims(map[string]any{"iss": nil, "aud": nil}))
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("Verify without iss/aud configured: %v", err)
	}
}

func TestKeySelection(t *testing.T) {
	ks := keys()
	rsa1 := keyFile(t, ks.rsa)
	rsa2 := keyFile(t, ks.rsa2)
	jwks := jwksFile(t, jwkOf(ks.rsa, "one"), jwkOf(ks.rsa2, "two"))
	tests := []struct {
		name string
		cfg  Config
		key  keyPair
		kid  string
		want error
	}{
		{"no kid: second of two PEM keys", Config{KeyFiles: []string{rsa1, rsa2}}, ks.rsa2, "", nil},
		{"no kid: first of two PEM keys", Config{KeyFiles: []string{rsa1, rsa2}}, ks.rsa, "", nil},
		{"no kid: JWKS keys all tried", Config{JWKSFile: jwks}, ks.rsa2, "", nil},
		{"kid picks the key", Config{JWKSFile: jwks}, ks.rsa2, "two", nil},
		{"kid picks the other key", Config{JWKSFile: jwks}, ks.rsa, "two", ErrBadSignature},
		{"unknown kid, no kid-less keys", Config{JWKSFile: jwks}, ks.rsa, "three", ErrUnknownKey},
		{"unknown kid falls back to PEM keys", Config{KeyFiles: []string{rsa2}, JWKSFile: jwks}, ks.rsa2, "three", nil},
		{"kid with only PEM keys", Config{KeyFiles: []string{rsa1}}, ks.rsa, "whatever", nil},
		{"kid with only PEM keys, wrong key", Config{KeyFiles: []string{rsa1}}, ks.rsa2, "whatever", ErrBadSignature},
		{"known kid does not fall back", Config{KeyFiles: []string{rsa2}, JWKSFile: jwksFile(t, jwkOf(ks.rsa, "one"))}, ks.rsa2, "one", ErrBadSignature},
		{"empty kid is no kid", Config{JWKSFile: jwks}, ks.rsa, "", nil},
		{"both algorithms configured", Config{KeyFiles: []string{rsa1, keyFile(t, ks.ed), keyFile(t, ks.hs)}}, ks.ed, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.cfg)
			token := sign(t, tt.key, tt.kid, claims(nil))
			_, err := v.Verify(token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, tt.want, token)
		})
	}
}

func TestClaimsFromToken(t *testing.T) {
	ks := keys()
	v := newTestVerifier(t, Config{KeyFiles: []string{keyFile(t, ks.hs)}})
	tests := []struct {
		name string
		mods map[string]any
		want Claims
	}{
		{"admin scope", map[string]any{"scope": "openid presence:admin profile"},
			Claims{Admin: true}},
		{"admin scope alone", map[string]any{"scope": "presence:admin"}, Claims{Admin: true}},
		{"scope that only starts like admin", map[string]any{"scope": "presence:administrator presence:admin:x"},
			Claims{}},
		{"no scope", map[string]any{"scope": nil}, Claims{}},
		{"normalized", map[string]any{"domains": []string{"Example.ORG", "muc.example.org"}, "users": []string{"Bob@Example.NET"}},
			Claims{Domains: []string{"example.org", "muc.example.org"}, Users: []string{"bob@example.net"}}},
		{"absent lists", map[string]any{"domains": nil, "users": nil}, Claims{}},
		{"audience array", map[string]any{"aud": []string{"a", "presenced"}}, Claims{}},
		{"exp as a float", map[string]any{"exp": float64(at(time.Hour)) + 0.4}, Claims{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(sign(t, ks.hs, "", claims(tt.mods)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tt.want
			want.Subject = "alice@example.org"
			want.Expires = testNow.Add(time.Hour)
			if _, ok := tt.mods["domains"]; !ok {
				want.Domains = []string{"example.org"}
			}
			if _, ok := tt.mods["users"]; !ok {
				want.Users = []string{"bob@example.net"}
			}
			if !claimsEqual(c, &want) {
				t.Errorf("claims = %+v, want %+v", c, want)
			}
		})
	}
}

func TestVerifyConcurrent(t *testing.T) {
	ks := keys()
	v := newTestVerifier(t, Config{KeyFiles: []string{keyFile(t, ks.ec), keyFile(t, ks.hs)}})
	good := sign(t, ks.ec, "", claims(nil))
	bad := sign(t, ks.hs, "", claims(map[string]any{"exp": at(-time.Hour)}))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := v.Verify(good); err != nil {
					errs <- fmt.Errorf("worker %d: good token: %v", i, err)
					return
				}
				if _, err := v.Verify(bad); !errors.Is(err, ErrExpired) {
					errs <- fmt.Errorf("worker %d: expired token: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
