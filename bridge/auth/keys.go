package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"strings"
)

// The algorithms a key can be pinned to.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
	algHS256 = "HS256"
)

const (
	minRSABits     = 2048
	minSecretBytes = 32 // RFC 7518 §3.2: at least the hash's size
	hs256Prefix    = "hs256:"
)

// key is one verification key, pinned to the algorithm alg. pub is a
// *rsa.PublicKey, *ecdsa.PublicKey (P-256), ed25519.PublicKey or []byte
// (an HMAC secret), matching alg.
type key struct {
	alg string
	kid string // empty for keys from KeyFiles
	pub any
}

// readFile reads name, dropping the path from os errors because callers
// name the file themselves.
func readFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, fmt.Errorf("cannot read: %w", pe.Err)
	}
	return b, err
}

// loadKeyFile loads one Config.KeyFiles entry.
func loadKeyFile(entry string) ([]key, error) {
	if name, ok := strings.CutPrefix(entry, hs256Prefix); ok {
		if name == "" {
			return nil, fmt.Errorf("auth: key file %q: no file name after %q", entry, hs256Prefix)
		}
		k, err := loadSecretFile(name)
		if err != nil {
			return nil, fmt.Errorf("auth: HMAC secret file %s: %w", name, err)
		}
		return []key{k}, nil
	}
	if entry == "" {
		return nil, errors.New("auth: empty name in key files")
	}
	keys, err := loadPEMFile(entry)
	if err != nil {
		return nil, fmt.Errorf("auth: key file %s: %w", entry, err)
	}
	return keys, nil
}

func loadSecretFile(name string) (key, error) {
	b, err := readFile(name)
	if err != nil {
		return key{}, err
	}
	secret := bytes.TrimRight(b, "\r\n")
	if len(secret) < minSecretBytes {
		return key{}, fmt.Errorf("secret is %d bytes, HS256 needs at least %d", len(secret), minSecretBytes)
	}
	return key{alg: algHS256, pub: secret}, nil
}

func loadPEMFile(name string) ([]key, error) {
	rest, err := readFile(name)
	if err != nil {
		return nil, err
	}
	var keys []key
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		k, err := pemKey(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no PEM block found (an HMAC secret file needs the prefix %q)", hs256Prefix)
	}
	return keys, nil
}

func pemKey(block *pem.Block) (key, error) {
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return key{}, errors.New("a private key; give the public key (the bridge only verifies)")
		}
		return key{}, errors.New("not a public key or certificate")
	}
	if err != nil {
		return key{}, err
	}
	return publicKey(pub)
}

// publicKey pins pub to its algorithm, checking it is one we accept.
func publicKey(pub any) (key, error) {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if bits := p.N.BitLen(); bits < minRSABits {
			return key{}, fmt.Errorf("RSA key has %d bits, RS256 needs at least %d", bits, minRSABits)
		}
		return key{alg: algRS256, pub: p}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return key{}, fmt.Errorf("EC key on curve %s, only P-256 (ES256) is supported", p.Curve.Params().Name)
		}
		return key{alg: algES256, pub: p}, nil
	case ed25519.PublicKey:
		return key{alg: algEdDSA, pub: p}, nil
	default:
		return key{}, fmt.Errorf("unsupported key type %T (want RSA, EC P-256 or Ed25519)", pub)
	}
}

// jwk is the subset of RFC 7517/7518 members we read.
type jwk struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
	K   string `json:"k"`
}

func loadJWKSFile(name string) ([]key, error) {
	b, err := readFile(name)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", name, err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: not a JSON Web Key Set: %w", name, err)
	}
	if set.Keys == nil {
		return nil, fmt.Errorf("auth: JWKS file %s: no \"keys\" array", name)
	}
	var keys []key
	kids := map[string]bool{}
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("auth: JWKS file %s: key %d: %w", name, i, err)
		}
		where := fmt.Sprintf("key %d", i)
		if j.Kid != "" {
			where = fmt.Sprintf("key %d (kid %q)", i, j.Kid)
		}
		switch j.Use {
		case "", "sig":
		case "enc":
			continue
		default:
			return nil, fmt.Errorf("auth: JWKS file %s: %s: unknown \"use\" %q", name, where, j.Use)
		}
		k, err := jwkKey(j)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS file %s: %s: %w", name, where, err)
		}
		if j.Kid != "" {
			if kids[j.Kid] {
				return nil, fmt.Errorf("auth: JWKS file %s: %s: duplicate kid", name, where)
			}
			kids[j.Kid] = true
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("auth: JWKS file %s: no signing keys", name)
	}
	return keys, nil
}

// jwkKey converts one JWK, checking that its alg, kty and crv agree.
func jwkKey(j jwk) (key, error) {
	want := map[string]string{algRS256: "RSA", algES256: "EC", algEdDSA: "OKP", algHS256: "oct"}
	kty, ok := want[j.Alg]
	switch {
	case j.Alg == "":
		return key{}, errors.New(`no "alg"; want RS256, ES256, EdDSA or HS256`)
	case !ok:
		return key{}, fmt.Errorf(`"alg" %q not supported; want RS256, ES256, EdDSA or HS256`, j.Alg)
	case j.Kty != kty:
		return key{}, fmt.Errorf(`"alg" %s needs "kty" %q, not %q`, j.Alg, kty, j.Kty)
	case j.D != "":
		return key{}, errors.New("a private key; give the public key (the bridge only verifies)")
	}
	var k key
	switch j.Alg {
	case algRS256:
		n, err := b64Member("n", j.N)
		if err != nil {
			return key{}, err
		}
		e, err := b64Member("e", j.E)
		if err != nil {
			return key{}, err
		}
		ei := new(big.Int).SetBytes(e)
		if !ei.IsInt64() || ei.Int64() < 3 || ei.Int64() > 1<<31-1 || ei.Bit(0) == 0 {
			return key{}, errors.New(`"e" is not a valid RSA exponent`)
		}
		k, err = publicKey(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ei.Int64())})
		if err != nil {
			return key{}, err
		}
	case algES256:
		if j.Crv != "P-256" {
			return key{}, fmt.Errorf(`ES256 needs "crv" "P-256", not %q`, j.Crv)
		}
		x, err := b64Member("x", j.X)
		if err != nil {
			return key{}, err
		}
		y, err := b64Member("y", j.Y)
		if err != nil {
			return key{}, err
		}
		if len(x) != 32 || len(y) != 32 {
			return key{}, errors.New(`"x" and "y" must be 32 bytes each for P-256`)
		}
		p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return key{}, fmt.Errorf("invalid P-256 point: %w", err)
		}
		k = key{alg: algES256, pub: p}
	case algEdDSA:
		if j.Crv != "Ed25519" {
			return key{}, fmt.Errorf(`EdDSA needs "crv" "Ed25519", not %q`, j.Crv)
		}
		x, err := b64Member("x", j.X)
		if err != nil {
			return key{}, err
		}
		if len(x) != ed25519.PublicKeySize {
			return key{}, fmt.Errorf(`"x" must be %d bytes for Ed25519`, ed25519.PublicKeySize)
		}
		k = key{alg: algEdDSA, pub: ed25519.PublicKey(x)}
	case algHS256:
		s, err := b64Member("k", j.K)
		if err != nil {
			return key{}, err
		}
		if len(s) < minSecretBytes {
			return key{}, fmt.Errorf(`"k" is %d bytes, HS256 needs at least %d`, len(s), minSecretBytes)
		}
		k = key{alg: algHS256, pub: s}
	}
	k.kid = j.Kid
	return k, nil
}

// b64Member decodes a base64url member (RFC 7515 §2: no padding, though
// padding is tolerated). Errors never show the value: "k" is a secret.
func b64Member(name, v string) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("no %q", name)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%q is not base64url", name)
	}
	return b, nil
}
