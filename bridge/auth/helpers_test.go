package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testNow is the clock of every Verifier built by newTestVerifier.
var testNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// keyPair is a signing key and the algorithm it is for.
type keyPair struct {
	alg    string
	method jwt.SigningMethod
	priv   any // what SignedString takes
	pub    any // what publicKey pins (nil for HMAC)
	secret []byte
}

type testKeySet struct {
	rsa, rsa2, ec, ed, hs keyPair
	rsaSmall              *rsa.PrivateKey
	ec384                 *ecdsa.PrivateKey
}

// keys are generated once per test binary: RSA generation is slow.
var keys = sync.OnceValue(func() *testKeySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	must(err)
	secret := make([]byte, 32)
	_, err = rand.Read(secret)
	must(err)
	return &testKeySet{
		rsa:      keyPair{alg: "RS256", method: jwt.SigningMethodRS256, priv: r1, pub: &r1.PublicKey},
		rsa2:     keyPair{alg: "RS256", method: jwt.SigningMethodRS256, priv: r2, pub: &r2.PublicKey},
		ec:       keyPair{alg: "ES256", method: jwt.SigningMethodES256, priv: ec, pub: &ec.PublicKey},
		ed:       keyPair{alg: "EdDSA", method: jwt.SigningMethodEdDSA, priv: edPriv, pub: edPub},
		hs:       keyPair{alg: "HS256", method: jwt.SigningMethodHS256, priv: secret, secret: secret},
		rsaSmall: small,
		ec384:    ec384,
	}
})

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func pemPublic(t *testing.T, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// keyFile writes k as a KeyFiles entry: a PEM file, or "hs256:" and a
// secret file.
func keyFile(t *testing.T, k keyPair) string {
	t.Helper()
	if k.secret != nil {
		return hs256Prefix + writeFile(t, "secret", k.secret)
	}
	return writeFile(t, "key.pem", pemPublic(t, k.pub))
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf is the public JWK of k (the secret for HMAC) with kid.
func jwkOf(k keyPair, kid string) map[string]any {
	m := map[string]any{"alg": k.alg}
	if kid != "" {
		m["kid"] = kid
	}
	switch p := k.pub.(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(p.N.Bytes())
		m["e"] = b64([]byte{1, 0, 1})
	case *ecdsa.PublicKey:
		raw, err := p.Bytes() // 0x04 || x || y
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"] = "EC", "P-256"
		m["x"], m["y"] = b64(raw[1:33]), b64(raw[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(p)
	default:
		m["kty"], m["k"] = "oct", b64(k.secret)
	}
	return m
}

func jwksFile(t *testing.T, jwks ...map[string]any) string {
	t.Helper()
	if jwks == nil {
		jwks = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": jwks})
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "jwks.json", b)
}

func newTestVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	v.now = func() time.Time { return testNow }
	return v
}

// claims are valid claims at testNow, with mods applied; a nil value in
// mods deletes the claim.
func claims(mods map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":     "alice@example.org",
		"iss":     "https://issuer.example",
		"aud":     "presenced",
		"exp":     testNow.Add(time.Hour).Unix(),
		"iat":     testNow.Add(-time.Minute).Unix(),
		"domains": []string{"example.org"},
		"users":   []string{"bob@example.net"},
		"scope":   "openid presence:read",
	}
	for k, v := range mods {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs c with k, setting kid when it is not empty.
func sign(t *testing.T, k keyPair, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func at(d time.Duration) int64 { return testNow.Add(d).Unix() }
