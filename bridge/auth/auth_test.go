package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCanSee(t *testing.T) {
	user := &Claims{
		Domains: []string{"example.org", "muc.example.net"},
		Users:   []string{"carol@example.com", "dave@example.net"},
	}
	admin := &Claims{Admin: true}
	tests := []struct {
		name string
		c    *Claims
		jid  string
		want bool
	}{
		{"user of a domain", user, "alice@example.org", true},
		{"another user of a domain", user, "zed@example.org", true},
		{"listed user", user, "carol@example.com", true},
		{"unlisted user of a listed user's domain", user, "eve@example.com", false},
		{"listed user of another domain", user, "dave@example.net", true},
		{"subdomain of a listed domain", user, "alice@sub.example.org", false},
		{"parent of a listed domain", user, "alice@example.net", false},
		{"listed subdomain", user, "room@muc.example.net", true},
		{"suffix is not a domain match", user, "alice@evilexample.org", false},
		{"domain JID of a listed domain", user, "example.org", true},
		{"domain JID of another domain", user, "example.com", false},
		{"full JID", user, "alice@example.org/phone", false},
		{"resource posing as a domain", user, "evil.com/x@example.org", false},
		{"full JID of a listed user", user, "carol@example.com/web", false},
		{"case differs (not normalized)", user, "alice@EXAMPLE.org", false},
		{"empty", user, "", false},
		{"empty domainpart", user, "alice@", false},
		{"admin sees anyone", admin, "anyone@anywhere.example", true},
		{"admin sees full JIDs", admin, "a@b/c", true},
		{"no grants", &Claims{}, "alice@example.org", false},
		{"nil claims", nil, "alice@example.org", false},
		{"empty domain entry matches nothing", &Claims{Domains: []string{""}}, "alice@", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.CanSee(tt.jid); got != tt.want {
				t.Errorf("CanSee(%q) = %v, want %v", tt.jid, got, tt.want)
			}
		})
	}
}

func TestTokenFromRequest(t *testing.T) {
	ws := []string{"Upgrade: websocket", "Connection: Upgrade"}
	tests := []struct {
		name   string
		method string // "" is GET
		target string
		auth   []string
		hdr    []string // "Name: value"
		want   string
		wantOK bool
	}{
		{"bearer header", "", "/v1/presence", []string{"Bearer abc.def.ghi"}, nil, "abc.def.ghi", true},
		{"scheme in lower case", "", "/", []string{"bearer abc.def.ghi"}, nil, "abc.def.ghi", true},
		{"scheme in upper case", "", "/", []string{"BEARER abc"}, nil, "abc", true},
		{"extra spaces", "", "/", []string{"Bearer   abc  "}, nil, "abc", true},
		{"query parameter on an upgrade", "", "/v1/stream?access_token=abc.def.ghi", nil, ws, "abc.def.ghi", true},
		{"escaped query parameter", "", "/v1/stream?x=1&access_token=a%2Bb", nil, ws, "a+b", true},
		{"upgrade in other cases, Connection with a list", "", "/v1/stream?access_token=q", nil, []string{"Upgrade: WebSocket", "Connection: keep-alive, upgrade"}, "q", true},
		{"query parameter on a plain request is not read", "", "/v1/stream?access_token=abc", nil, nil, "", false},
		{"query parameter on a REST call is not read", "", "/v1/presence?access_token=abc", nil, []string{"Connection: keep-alive"}, "", false},
		{"upgrade to something else", "", "/v1/stream?access_token=q", nil, []string{"Upgrade: h2c", "Connection: Upgrade"}, "", false},
		{"upgrade without Connection", "", "/v1/stream?access_token=q", nil, []string{"Upgrade: websocket"}, "", false},
		{"POST with upgrade headers", "POST", "/v1/webpresence?access_token=q", nil, ws, "", false},
		{"header wins over query", "", "/?access_token=fromquery", []string{"Bearer fromheader"}, ws, "fromheader", true},
		{"basic auth falls back to query", "", "/?access_token=q", []string{"Basic dXNlcjpwYXNz"}, ws, "q", true},
		{"basic auth only", "", "/", []string{"Basic dXNlcjpwYXNz"}, nil, "", false},
		{"bearer without token", "", "/", []string{"Bearer "}, nil, "", false},
		{"bearer without token, query", "", "/?access_token=q", []string{"Bearer"}, ws, "q", true},
		{"scheme glued to token", "", "/", []string{"Bearerabc"}, nil, "", false},
		{"empty query parameter", "", "/?access_token=", nil, ws, "", false},
		{"other query parameter", "", "/?token=abc", nil, ws, "", false},
		{"nothing", "", "/", nil, nil, "", false},
		{"first of two headers", "", "/", []string{"Bearer one", "Bearer two"}, nil, "one", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := httptest.NewRequest(method, tt.target, nil)
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			for _, h := range tt.hdr {
				k, v, _ := strings.Cut(h, ": ")
				r.Header.Add(k, v)
			}
			got, ok := TokenFromRequest(r)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("TokenFromRequest = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if tok, ok := TokenFromRequest(nil); tok != "" || ok {
		t.Errorf("TokenFromRequest(nil) = %q, %v", tok, ok)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	ks := keys()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	rsaDER, err := x509.MarshalPKCS8PrivateKey(ks.rsa.priv)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := writeFile(t, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}))
	badPEM := writeFile(t, "bad.pem", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	notPEM := writeFile(t, "notpem.pem", []byte("just some text\n"))
	small := writeFile(t, "small.pem", pemPublic(t, &ks.rsaSmall.PublicKey))
	p384 := writeFile(t, "p384.pem", pemPublic(t, &ks.ec384.PublicKey))
	shortSecret := writeFile(t, "short", []byte("too short\n"))
	csr := writeFile(t, "csr.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1}}))
	jwks := func(keys ...map[string]any) string { return jwksFile(t, keys...) }
	with := func(k map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for key, val := range k {
			m[key] = val
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	rsaJWK, ecJWK, edJWK, hsJWK := jwkOf(ks.rsa, "r"), jwkOf(ks.ec, "e"), jwkOf(ks.ed, "d"), jwkOf(ks.hs, "h")

	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error
	}{
		{"no keys", Config{}, []string{"no keys configured"}},
		{"no keys, issuer set", Config{Issuer: "x"}, []string{"no keys configured"}},
		{"missing file", Config{KeyFiles: []string{missing}}, []string{missing, "cannot read", "no such file"}},
		{"missing secret file", Config{KeyFiles: []string{"hs256:" + missing}}, []string{missing, "cannot read"}},
		{"missing JWKS file", Config{JWKSFile: missing}, []string{missing, "cannot read"}},
		{"bad PEM", Config{KeyFiles: []string{badPEM}}, []string{badPEM, "PEM block 1 (PUBLIC KEY)"}},
		{"not PEM", Config{KeyFiles: []string{notPEM}}, []string{notPEM, "no PEM block", "hs256:"}},
		{"private key", Config{KeyFiles: []string{privPEM}}, []string{privPEM, "private key"}},
		{"CSR", Config{KeyFiles: []string{csr}}, []string{csr, "CERTIFICATE REQUEST", "not a public key"}},
		{"small RSA key", Config{KeyFiles: []string{small}}, []string{small, "1024 bits", "2048"}},
		{"P-384 key", Config{KeyFiles: []string{p384}}, []string{p384, "P-384", "P-256"}},
		{"short secret", Config{KeyFiles: []string{"hs256:" + shortSecret}}, []string{shortSecret, "9 bytes", "32"}},
		{"empty secret file name", Config{KeyFiles: []string{"hs256:"}}, []string{"no file name"}},
		{"empty key file name", Config{KeyFiles: []string{""}}, []string{"empty name"}},
		{"second file bad", Config{KeyFiles: []string{keyFile(t, ks.ed), missing}}, []string{missing}},
		{"negative leeway", Config{KeyFiles: []string{keyFile(t, ks.ed)}, Leeway: -1}, []string{"negative leeway"}},
		{"JWKS not JSON", Config{JWKSFile: writeFile(t, "j.json", []byte("{"))}, []string{"j.json", "not a JSON Web Key Set"}},
		{"JWKS without keys", Config{JWKSFile: writeFile(t, "j.json", []byte(`{"kty":"RSA"}`))}, []string{"j.json", `no "keys"`}},
		{"JWKS empty", Config{JWKSFile: jwks()}, []string{"jwks.json", "no signing keys"}},
		{"JWKS only enc keys", Config{JWKSFile: jwks(with(rsaJWK, "use", "enc"))}, []string{"no signing keys"}},
		{"JWKS unknown use", Config{JWKSFile: jwks(with(rsaJWK, "use", "sign"))}, []string{`key 0 (kid "r")`, `"use"`}},
		{"JWKS no alg", Config{JWKSFile: jwks(with(rsaJWK, "alg", nil))}, []string{"jwks.json", `key 0 (kid "r")`, `no "alg"`}},
		{"JWKS unsupported alg", Config{JWKSFile: jwks(ecJWK, with(rsaJWK, "alg", "RS512"))}, []string{`key 1 (kid "r")`, "RS512", "not supported"}},
		{"JWKS alg none", Config{JWKSFile: jwks(with(hsJWK, "alg", "none"))}, []string{`"none" not supported`}},
		{"JWKS alg and kty disagree", Config{JWKSFile: jwks(with(rsaJWK, "alg", "HS256"))}, []string{`needs "kty" "oct"`}},
		{"JWKS RSA key without n", Config{JWKSFile: jwks(with(rsaJWK, "n", nil))}, []string{`no "n"`}},
		{"JWKS RSA key bad exponent", Config{JWKSFile: jwks(with(rsaJWK, "e", "AQAA"))}, []string{`"e"`}},
		{"JWKS RSA private key", Config{JWKSFile: jwks(with(rsaJWK, "d", "AQAB"))}, []string{"private key"}},
		{"JWKS EC wrong curve", Config{JWKSFile: jwks(with(ecJWK, "crv", "P-384"))}, []string{`"P-256"`}},
		{"JWKS EC point not on curve", Config{JWKSFile: jwks(with(ecJWK, "y", ecJWK["x"]))}, []string{"invalid P-256 point"}},
		{"JWKS EC bad base64", Config{JWKSFile: jwks(with(ecJWK, "x", "!!"))}, []string{`"x" is not base64url`}},
		{"JWKS Ed25519 short x", Config{JWKSFile: jwks(with(edJWK, "x", "AQAB"))}, []string{"32 bytes"}},
		{"JWKS short HMAC k", Config{JWKSFile: jwks(with(hsJWK, "k", "c2hvcnQ"))}, []string{`"k" is 5 bytes`}},
		{"JWKS duplicate kid", Config{JWKSFile: jwks(rsaJWK, with(ecJWK, "kid", "r"))}, []string{`key 1 (kid "r")`, "duplicate kid"}},
		{"JWKS entry not an object", Config{JWKSFile: writeFile(t, "j.json", []byte(`{"keys":[1]}`))}, []string{"key 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			if err == nil {
				t.Fatalf("NewVerifier = %v, nil; want an error", v)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "auth: ") {
				t.Errorf("error %q lacks the prefix \"auth: \"", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Count(msg, missing) > 1 {
				t.Errorf("error %q names the file twice", msg)
			}
		})
	}

	t.Run("missing file is fs.ErrNotExist", func(t *testing.T) {
		_, err := NewVerifier(Config{KeyFiles: []string{missing}})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
		}
	})
	t.Run("secret never in errors", func(t *testing.T) {
		secret := "c2VjcmV0LXNlY3JldA" // base64url of a short secret
		_, err := NewVerifier(Config{JWKSFile: jwks(with(hsJWK, "k", secret))})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("error %v shows the secret", err)
		}
	})
}

// certFile writes a self-signed certificate for the key ks.rsa.
func certFile(t *testing.T, ks *testKeySet) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "issuer.example"},
		NotBefore:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC), // expiry is not checked
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ks.rsa.pub, ks.rsa.priv)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestNewVerifierAccepts(t *testing.T) {
	ks := keys()
	pkcs1 := writeFile(t, "pkcs1.pem", pem.EncodeToMemory(&pem.Block{
		Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(ks.rsa.pub.(*rsa.PublicKey)),
	}))
	multi := writeFile(t, "multi.pem", append(append([]byte("# keys of the issuer\n"), pemPublic(t, ks.rsa.pub)...), pemPublic(t, ks.ed.pub)...))
	crlf := writeFile(t, "secret", append(append([]byte{}, ks.hs.secret...), '\r', '\n'))
	tests := []struct {
		name string
		cfg  Config
		key  keyPair
	}{
		{"RSA PUBLIC KEY block", Config{KeyFiles: []string{pkcs1}}, ks.rsa},
		{"certificate", Config{KeyFiles: []string{certFile(t, ks)}}, ks.rsa},
		{"several blocks, RSA", Config{KeyFiles: []string{multi}}, ks.rsa},
		{"several blocks, Ed25519", Config{KeyFiles: []string{multi}}, ks.ed},
		{"secret with CRLF", Config{KeyFiles: []string{"hs256:" + crlf}}, ks.hs},
		{"JWKS with an enc key", Config{JWKSFile: jwksFile(t, func() map[string]any {
			m := jwkOf(ks.rsa2, "enc")
			m["use"] = "enc"
			return m
		}(), jwkOf(ks.ec, ""))}, ks.ec},
		{"JWKS with padded members", Config{JWKSFile: jwksFile(t, func() map[string]any {
			m := jwkOf(ks.hs, "")
			m["k"] = m["k"].(string) + "="
			return m
		}())}, ks.hs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.cfg)
			if _, err := v.Verify(sign(t, tt.key, "", claims(nil))); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}
