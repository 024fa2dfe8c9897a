package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/presenced/presenced/bridge/auth"
)

func ExampleVerifier() {
	// The issuer's public key, as an operator would install it.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "auth-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "issuer.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		log.Fatal(err)
	}

	v, err := auth.NewVerifier(auth.Config{
		KeyFiles: []string{keyFile},
		Issuer:   "https://login.example.org",
		Audience: "presenced",
	})
	if err != nil {
		log.Fatal(err)
	}

	// A token as the issuer would sign it for a dashboard.
	token, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss":     "https://login.example.org",
		"aud":     "presenced",
		"sub":     "alice@example.org",
		"exp":     time.Now().Add(time.Hour).Unix(),
		"domains": []string{"example.org"},
		"users":   []string{"bob@example.net"},
		"scope":   "presence:read",
	}).SignedString(priv)
	if err != nil {
		log.Fatal(err)
	}

	// The bridge, for each request.
	r := httptest.NewRequest("GET", "/v1/stream?access_token="+token, nil)
	r.Header.Set("Upgrade", "websocket") // a token in the URL is read on a WebSocket upgrade only
	r.Header.Set("Connection", "Upgrade")
	tok, ok := auth.TokenFromRequest(r)
	if !ok {
		log.Fatal("no token")
	}
	claims, err := v.Verify(tok)
	if err != nil {
		fmt.Println(err) // never contains the token
		return
	}
	fmt.Println("subject:", claims.Subject, "admin:", claims.Admin)
	for _, jid := range []string{"carol@example.org", "bob@example.net", "eve@example.net"} {
		fmt.Printf("can see %s: %v\n", jid, claims.CanSee(jid))
	}

	// Any change to the token breaks its signature.
	sig := strings.LastIndexByte(tok, '.') + 1
	changed := "A"
	if tok[sig] == 'A' {
		changed = "B"
	}
	_, err = v.Verify(tok[:sig] + changed + tok[sig+1:])
	fmt.Println(err)
	// Output:
	// subject: alice@example.org admin: false
	// can see carol@example.org: true
	// can see bob@example.net: true
	// can see eve@example.net: false
	// auth: bad signature
}
