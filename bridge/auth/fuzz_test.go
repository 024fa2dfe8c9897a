package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"mellium.im/xmpp/jid"
)

// The fuzz targets need the same keys in every worker process (each
// generates nothing of its own), so that a mutated valid token stays
// comparable and corpus files keep their meaning: fixed test keys, never
// used anywhere else. "TESTING KEY" keeps secret scanners quiet.
const (
	fuzzRSAPEM = `-----BEGIN TESTING KEY-----
MIIEuwIBADANBgkqhkiG9w0BAQEFAASCBKUwggShAgEAAoIBAQDEaRF/IsqrftxU
paBccSWbizogpdPi/n9DvSkviK4VnE5eWibu3EguVDnbpxqYNf/TNcLwANZFfWR4
OT4fbfI0EKlAD5IHHNvnkLYeD2DPI6JSlgLN7rEH+aU85ZSZC67F3X7ZvNsv0e5q
9MAC2gItvXX5rsNBWW2rvTZXWlaNN/EHIDoBwGYCi4nmrbj+OY0yfh0vz9Q16rNY
Z8sdOd1Q5FE7KvWgWhd81lReHITJLVgH+3B2Y+XQYkFcZ87dECw+5ZMXNWiEZ2BS
QC9OUaesnmkx1UBP2Gd8JPdRYa86Cvun8zdR1mOfRRSSEZ2WI+j3k58R1jWViNzd
FiULVp+DAgMBAAECggEAXmywx7FfRBFqNZumu6p9zQijOlzev+tgHZ3MNhj8sFED
8CJhQ0ZNwVAmvK3agEC9q7nV7PJKEQBWk+HZNtzxqwwzgiO6LYc3RV1x4IO+I/da
q1+JG53cKBxhzyQES4utS1zQBjfgHF5Nw8fEo9pRX9IM7KuTHVC0A/OkM1yv7ZWV
XUSd4nxgXfHZcFNhKfWRnb4FB//B8VmB8XjzrixEqTGlVRagsYTT1gQ6d44u7hSN
/h3Ld054DWi6BSCgDBLoOzpWi3YcqTrIJn9s5esjds/y6aIImzg/bVJZIidJLOos
QqISlwThqY4mUHasGhMlQdMKCgcJJrGP4tPcBieveQKBgQD7VG4B2OUOO09Cwtn8
W+T3Z8NLQOFx4jsnJAISeOWfyYj0W+SmvMKojuQhxfC8zN4AowUZTcqUDSBsSyxC
fh7S+KUX5tnWhcdiQYZ9sP/tHtlWXmM1VgWB/+DmA5EBABRowSrcF8MYnm9v1cYO
vBufNEV5DJtOMwnJLrEGGaaiDQKBgQDID2NrjwM23mHgyzUOZzSmA+8ZayJm5odG
45GlDRRL6igUm+am9vtrO9mKuuBiO1loa1eeVZaq69ozRZYFUQyQyuxc8thCHxCx
lsDuHJ/O/0RfeWLtl9oCQppzZz5Z/8rNVMt7lKBr+tThe4V2KUyzDq4duV1cfK2U
qDrlQVUzzwKBgBGgFibjAw1Ac4qHB6p+90uyZyu73ROTffp8t/h7qf7Or2ATobFf
w3b2rmD/9KYI5/i7dfwUTISddwyhKPVwytCYx1spwVUeBKGLXtcptoj2hN9dty9i
XPiE7Uy0K1MaolPGWC8fK3tqgP4iy8T0xCsiC0016R5Ozfzh3WBEJD9xAn91OI8I
dsNrYuH21RpBVjeDDssKGbwOjwS0hKLSEtfRo2HYsYB0VEL8khTlNJpE9IFurXap
T3z4qTkw0ZUViGfUbxIPZDtSguFFLQ/edOcuYmOtjXJpxI/4ww28kMH3+ejaZtTT
lEJrAo25kKailZBbWj6rK/GIP4V1lRztN1q1AoGBAJMKp4NbH8WWBLJ5oggWIF0F
BCViyE5GijcekkstOx2lOj51PflicUtX+YzPmM8lDGJIdfH7ciiYNX7J+O9n4CB+
Y+72fl4B3/dT99Wk1sb+diiauUrHsYrqtFwGignQx9UBMkeNLSseL4F9NekPt+7k
pVjHkM6GDXPTI8BkqDIc
-----END TESTING KEY-----`
	fuzzECPEM = `-----BEGIN TESTING KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgavUFOZXwNN2kL0fF
xwJL4UCoP+lmD3TixgjzRxKzO+uhRANCAAStm6QQEi+RRhQNnJxm5/vwdb5iDngw
2FVffFgv9YcI+cb4bSQD0UMcEMJflDp779pjB08x3h5oR9OKU27WWhds
-----END TESTING KEY-----`
)

// fuzzKey is one key the fuzz verifier trusts, with what signs for it and
// an oracle that checks a signature with the standard library only.
type fuzzKey struct {
	alg, kid string
	method   jwt.SigningMethod
	priv     any
	verify   func(input, sig []byte) bool
}

// fuzzSetup is the verifier of the fuzz targets and its keys.
type fuzzSetup struct {
	v       *Verifier
	keys    []fuzzKey
	rsaPEM  []byte // the RSA public key as PEM, for the HS256 confusion seed
	issuer  string
	aud     string
	keyByID map[string]fuzzKey
}

func parseTestingKey(tb testing.TB, s string) any {
	tb.Helper()
	block, _ := pem.Decode([]byte(strings.ReplaceAll(s, "TESTING KEY", "PRIVATE KEY")))
	if block == nil {
		tb.Fatal("fuzz key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// newFuzzSetup builds a Verifier with one key of every algorithm from
// KeyFiles (no kid) and, from a JWKS, an Ed25519 key and a second HMAC
// secret with kids, so that kid lookup and key sets are exercised too.
func newFuzzSetup(tb testing.TB) *fuzzSetup {
	tb.Helper()
	rsaKey := parseTestingKey(tb, fuzzRSAPEM).(*rsa.PrivateKey)
	ecKey := parseTestingKey(tb, fuzzECPEM).(*ecdsa.PrivateKey)
	edKey := ed25519.NewKeyFromSeed([]byte("presenced fuzz ed25519 seed 32by"))
	hs1 := []byte("presenced fuzz HMAC secret number one")
	hs2 := []byte("presenced fuzz HMAC secret number two")

	dir := tb.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	pub := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	rsaPEM := pub(&rsaKey.PublicKey)
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "kid": "ed-1", "x": b64(edKey.Public().(ed25519.PublicKey))},
		{"kty": "oct", "alg": "HS256", "kid": "hs-2", "k": b64(hs2)},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	s := &fuzzSetup{rsaPEM: rsaPEM, issuer: "https://issuer.example", aud: "presenced"}
	cfg := Config{
		KeyFiles: []string{write("rsa.pem", rsaPEM), write("ec.pem", pub(&ecKey.PublicKey)), hs256Prefix + write("secret", hs1)},
		JWKSFile: write("jwks.json", jwks),
		Issuer:   s.issuer, Audience: s.aud,
	}
	s.v, err = NewVerifier(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	s.v.now = func() time.Time { return testNow }

	hmacVerify := func(secret []byte) func(in, sig []byte) bool {
		return func(in, sig []byte) bool {
			m := hmac.New(sha256.New, secret)
			m.Write(in)
			return hmac.Equal(m.Sum(nil), sig)
		}
	}
	s.keys = []fuzzKey{
		{alg: "RS256", method: jwt.SigningMethodRS256, priv: rsaKey, verify: func(in, sig []byte) bool {
			h := sha256.Sum256(in)
			return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, h[:], sig) == nil
		}},
		{alg: "ES256", method: jwt.SigningMethodES256, priv: ecKey, verify: func(in, sig []byte) bool {
			if len(sig) != 64 {
				return false
			}
			h := sha256.Sum256(in)
			r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(&ecKey.PublicKey, h[:], r, ss)
		}},
		{alg: "HS256", method: jwt.SigningMethodHS256, priv: hs1, verify: hmacVerify(hs1)},
		{alg: "EdDSA", kid: "ed-1", method: jwt.SigningMethodEdDSA, priv: edKey, verify: func(in, sig []byte) bool {
			return ed25519.Verify(edKey.Public().(ed25519.PublicKey), in, sig)
		}},
		{alg: "HS256", kid: "hs-2", method: jwt.SigningMethodHS256, priv: hs2, verify: hmacVerify(hs2)},
	}
	s.keyByID = map[string]fuzzKey{}
	for _, k := range s.keys {
		if k.kid != "" {
			s.keyByID[k.kid] = k
		}
	}
	return s
}

// sign signs claims with k, with extra header fields.
func (s *fuzzSetup) sign(tb testing.TB, k fuzzKey, header map[string]any, claims jwt.Claims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(k.method, claims)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	for name, v := range header {
		tok.Header[name] = v
	}
	out, err := tok.SignedString(k.priv)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// seedTokens are valid tokens for every key and the classic attacks on
// them, for f.Add.
func (s *fuzzSetup) seedTokens(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, k := range s.keys {
		out = append(out, s.sign(tb, k, nil, claims(nil)))
	}
	admin := s.sign(tb, s.keys[2], nil, claims(map[string]any{"scope": "presence:admin", "domains": nil, "users": nil}))
	out = append(out, admin)
	valid := out[0]
	h, p, _ := strings.Cut(valid, ".")
	p, _, _ = strings.Cut(p, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(p)
	confusion, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(nil)).SignedString(s.rsaPEM)
	if err != nil {
		tb.Fatal(err)
	}
	out = append(out,
		// alg none, with and without a signature.
		rawToken(`{"alg":"none","typ":"JWT"}`, string(payload), nil),
		rawToken(`{"alg":"none"}`, string(payload), []byte("x")),
		rawToken(`{"alg":"NONE"}`, string(payload), nil),
		// HS256 signed with the RSA public key as the secret (key confusion).
		confusion,
		// A valid signature spliced onto another payload.
		h+"."+b64([]byte(`{"sub":"mallory@example.org","exp":99999999999,"scope":"presence:admin"}`))+"."+strings.Split(valid, ".")[2],
		// crit header, kid of the wrong type, unknown kid.
		s.sign(tb, s.keys[2], map[string]any{"crit": []string{"exp"}}, claims(nil)),
		s.sign(tb, s.keys[2], map[string]any{"kid": 7}, claims(nil)),
		s.sign(tb, s.keys[2], map[string]any{"kid": "nope"}, claims(nil)),
		// kid of the Ed25519 key on an HS256 token.
		s.sign(tb, s.keys[2], map[string]any{"kid": "ed-1"}, claims(nil)),
		// Claims of the wrong type or shape.
		s.sign(tb, s.keys[2], nil, claims(map[string]any{"exp": "tomorrow"})),
		s.sign(tb, s.keys[2], nil, claims(map[string]any{"exp": nil})),
		s.sign(tb, s.keys[2], nil, claims(map[string]any{"domains": "example.org"})),
		s.sign(tb, s.keys[2], nil, claims(map[string]any{"users": []any{"a@example.org/phone", 3}})),
		s.sign(tb, s.keys[2], nil, claims(map[string]any{"aud": []string{"other", "presenced"}, "nbf": at(time.Hour)})),
		"", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", strings.Repeat("A", maxTokenLen+1),
	)
	return out
}

// checkVerify checks what Verify said about token: an acceptance only when
// a configured key pinned to the token's alg verifies the signature (the
// one its kid names, if any), with the claims the Config asks for; a
// refusal wrapping exactly one sentinel and never echoing the token.
func (s *fuzzSetup) checkVerify(t *testing.T, token string, c *Claims, err error) {
	t.Helper()
	if err != nil {
		if c != nil {
			t.Fatalf("claims %+v returned with error %v", c, err)
		}
		n := 0
		for _, e := range allErrors {
			if errors.Is(err, e) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q wraps %d sentinels, want exactly 1", err, n)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "auth: ") {
			t.Fatalf("error %q lacks the prefix", msg)
		}
		for _, part := range strings.Split(token, ".") {
			if len(part) >= 16 && strings.Contains(msg, part) {
				t.Fatalf("error %q echoes the token", msg)
			}
		}
		return
	}
	if c == nil {
		t.Fatal("nil claims without error")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted a token of %d parts", len(parts))
	}
	dec := base64.RawURLEncoding.Strict()
	hdrJSON, err1 := dec.DecodeString(parts[0])
	payload, err2 := dec.DecodeString(parts[1])
	sig, err3 := dec.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("accepted a token that is not base64url: %v", err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		t.Fatalf("accepted a token whose header is not a JSON object: %v", err)
	}
	alg, _ := hdr["alg"].(string)
	if _, crit := hdr["crit"]; crit {
		t.Fatal("accepted a token with a crit header")
	}
	input := []byte(parts[0] + "." + parts[1])
	kid, _ := hdr["kid"].(string)
	verified := false
	if k, ok := s.keyByID[kid]; ok && kid != "" {
		verified = k.alg == alg && k.verify(input, sig)
	} else {
		for _, k := range s.keys {
			if k.alg == alg && (kid == "" || k.kid == "") && k.verify(input, sig) {
				verified = true
			}
		}
	}
	if !verified {
		t.Fatalf("accepted a token (alg %q, kid %q) that no key pinned to its alg verifies", alg, kid)
	}
	var pl map[string]json.RawMessage
	if err := json.Unmarshal(payload, &pl); err != nil {
		t.Fatalf("accepted a payload that is not a JSON object: %v", err)
	}
	if c.Expires.IsZero() || !testNow.Before(c.Expires.Add(DefaultLeeway)) {
		t.Fatalf("accepted a token expiring at %v (now %v)", c.Expires, testNow)
	}
	for _, d := range c.Domains {
		j, err := jid.Parse(d)
		if err != nil || j.String() != d || j.Localpart() != "" || j.Resourcepart() != "" {
			t.Fatalf("claims domain %q is not a normalized domain", d)
		}
	}
	for _, u := range c.Users {
		j, err := jid.Parse(u)
		if err != nil || j.String() != u || j.Localpart() == "" || j.Resourcepart() != "" {
			t.Fatalf("claims user %q is not a normalized bare JID", u)
		}
	}
	// A non-admin never sees a full JID or the empty string.
	if !c.Admin && (c.CanSee("") || slices.ContainsFunc(c.Users, func(u string) bool { return c.CanSee(u + "/r") })) {
		t.Fatal("CanSee lets a full JID or the empty string through")
	}
}

// FuzzVerify feeds arbitrary strings (seeded with valid tokens of every
// key and known attacks) to Verifier.Verify.
func FuzzVerify(f *testing.F) {
	s := newFuzzSetup(f)
	seeds := s.seedTokens(f)
	// The first seeds are valid (one per key, then an admin token): if the
	// setup broke, the oracle would only ever see refusals.
	for i, tok := range seeds[:len(s.keys)+1] {
		if _, err := s.v.Verify(tok); err != nil {
			f.Fatalf("valid seed %d refused: %v", i, err)
		}
	}
	for _, tok := range seeds {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.v.Verify(token)
		s.checkVerify(t, token, c, err)
	})
}

// FuzzVerifySigned signs arbitrary header and payload bytes with a real
// key (keyIdx picks which), so that what lies behind the signature check
// (header rules, alg pinning, kid lookup, claim types and rules, JID
// normalization) is reached: no panic, and an acceptance only when the
// header's alg is the signing key's and the claims follow the rules.
func FuzzVerifySigned(f *testing.F) {
	s := newFuzzSetup(f)
	valid, err := json.Marshal(claims(nil))
	if err != nil {
		f.Fatal(err)
	}
	for i, h := range []string{`{"alg":"RS256","typ":"JWT"}`, `{"alg":"ES256"}`, `{"alg":"HS256","typ":"JWT"}`, `{"alg":"EdDSA","kid":"ed-1"}`, `{"alg":"HS256","kid":"hs-2"}`} {
		f.Add(h, string(valid), uint8(i))
	}
	f.Add(`{"alg":"RS256"}`, string(valid), uint8(2)) // HS256 signature under an RS256 header
	f.Add(`{"alg":"HS256","kid":"ed-1"}`, string(valid), uint8(2))
	f.Add(`{"alg":"HS256","kid":"hs-2"}`, string(valid), uint8(2)) // signed with the other secret
	f.Add(`{"alg":"HS256","crit":["b64"],"b64":false}`, string(valid), uint8(2))
	f.Add(`{"alg":"HS256"}`, `{"exp":1e400}`, uint8(2))
	f.Add(`{"alg":"HS256"}`, `{"exp":-1,"iss":"https://issuer.example","aud":"presenced"}`, uint8(2))
	f.Add(`{"alg":"HS256"}`, `{"exp":99999999999,"iss":"https://issuer.example","aud":["presenced"],"users":["Bob@Example.NET","a@b"],"domains":["EXAMPLE.org"],"scope":"presence:admin x"}`, uint8(2))
	f.Add(`{"alg":"HS256"}`, `{"exp":99999999999,"iss":"https://issuer.example","aud":"presenced","users":["@example.org"],"domains":["a@b"]}`, uint8(2))
	f.Add(`{"alg":"HS256"}`, `{"EXP":99999999999,"ISS":"https://issuer.example","Aud":"presenced","exp":null}`, uint8(2))
	f.Add(`{"alg":"HS256"}`, `{"exp":99999999999,"iss":"https://issuer.example","aud":"presenced","nbf":"soon","iat":{}}`, uint8(2))
	f.Add(`{"alg":"HS256"}`, "{\"exp\":99999999999,\"iss\":\"https://issuer.example\",\"aud\":\"presenced\",\"sub\":\"\xff\xfe\",\"domains\":[\"\u00e9xample.org\"]}", uint8(2))
	f.Add(`[]`, `[]`, uint8(2))
	f.Fuzz(func(t *testing.T, header, payload string, keyIdx uint8) {
		k := s.keys[int(keyIdx)%len(s.keys)]
		if k.alg == "RS256" && keyIdx >= 64 {
			k = s.keys[2] // RSA signing is slow: only for a quarter of the indexes
		}
		input := b64([]byte(header)) + "." + b64([]byte(payload))
		sig, err := k.method.Sign(input, k.priv)
		if err != nil {
			t.Fatal(err)
		}
		token := input + "." + b64(sig)
		c, err := s.v.Verify(token)
		s.checkVerify(t, token, c, err)
		if err == nil {
			var hdr struct {
				Alg string `json:"alg"`
			}
			_ = json.Unmarshal([]byte(header), &hdr)
			if hdr.Alg != k.alg {
				t.Fatalf("a %s signature accepted under alg %q", k.alg, hdr.Alg)
			}
		}
	})
}
