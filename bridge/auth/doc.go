// Package auth verifies the JSON Web Tokens (RFC 7519) that dashboards
// present to the bridge, and turns them into Claims that say which users'
// presence a client may see.
//
// # Use
//
// Build one Verifier at start-up with NewVerifier; it reads every key file
// then and never again, and is safe for concurrent use. For each request,
// TokenFromRequest finds the token (an "Authorization: Bearer" header, else,
// on a WebSocket upgrade only, the "access_token" query parameter, which
// browsers need for WebSockets),
// Verify checks it, and Claims.CanSee filters what the client gets.
//
// # Tokens
//
// A token is signed with RS256, ES256, EdDSA (Ed25519) or HS256 and carries:
//
//	exp      required; expiry (seconds since the epoch)
//	nbf, iat optional; honoured with Config.Leeway (30s by default)
//	iss      must equal Config.Issuer when that is set
//	aud      must contain Config.Audience when that is set (string or array)
//	sub      the user's bare JID for web presence (not interpreted here)
//	domains  array of XMPP domains whose users the token may see
//	users    array of bare JIDs the token may see, besides those domains
//	scope    space-separated; "presence:admin" sees everyone and may use
//	         the admin calls
//
// # Design decisions
//
// Signatures and the registered claims are checked by
// github.com/golang-jwt/jwt/v5, with its parser options:
// exp required, nbf honoured, iat checked too (an iat in the future means
// the issuer's clock is off, and is refused like an nbf in the future),
// one leeway for all three, the Verifier's clock, and iss and aud only
// when configured. It looks at the claims only once the signature is good.
// Using its validator rather than our own keeps the time arithmetic and the
// "aud" string-or-array rules in the library that decodes them.
//
// What stays here is what golang-jwt does not offer:
//
//   - Choosing the key. golang-jwt verifies with whatever key the Keyfunc
//     returns; pinning each key to one algorithm (below) is ours.
//   - Naming the errors. golang-jwt joins every rule that failed into one
//     error, and calls an absent iss or aud a missing claim rather than a
//     wrong one. Verify maps that to exactly one Err value, by the fixed
//     precedence iss, aud, exp, nbf, iat, keeping the messages clients have
//     always seen: the configured iss and aud and the token's times, never
//     the library's text. A missing exp is ErrMalformed, not ErrExpired:
//     such a token is not one this service accepts, however often retried.
//   - The "domains", "users" and "scope" claims, which golang-jwt does not
//     know. They are checked after the registered claims, while Claims is
//     built, and not in a jwt.ClaimsValidator: each entry is parsed once,
//     and their failures never join the registered claims' error.
//   - The "crit" header, the size limit, and error details that never
//     quote the token.
//
// Every key is pinned to one algorithm when it is loaded, from its type (a
// PEM key) or its "alg" member (a JWKS key), and a token is only ever
// checked against keys of its own "alg": an RSA public key can never be
// used as an HMAC secret (the classic algorithm-confusion attack), and
// "none" is refused before any key is looked at. Keys are read from local
// files only: the "jku", "x5u" and "jwk" headers are ignored, never fetched
// or trusted, and a token with a "crit" header is refused, as RFC 7515
// requires for extensions we do not implement.
//
// Key selection: a token with a "kid" uses the key with that kid; if no
// key has it, the keys without a kid (those from PEM and secret files)
// are tried, and if there are none the error is ErrUnknownKey. A token
// without a "kid" is tried against every key of its algorithm. This lets
// PEM files work with issuers that always set "kid", while a JWKS whose
// keys all carry kids gives a precise "unknown key".
//
// Loading is strict, so that mistakes show at start-up and not as 401s:
// private keys are refused (the bridge must never hold a signing key), RSA
// keys need 2048 bits, EC keys must be on P-256, HMAC secrets need 32
// bytes (RFC 7518 §3.2), a JWKS key needs an "alg" we support, and kids
// must be unique. JWKS keys marked "use": "enc" are skipped. An X.509
// certificate in a PEM file is only a container for its public key: its
// validity and chain are not checked. A secret file's trailing CR and LF
// are dropped, so that "echo secret > file" works.
//
// The "domains" and "users" claims are normalized (PRECIS, via
// mellium.im/xmpp/jid) when the token is verified, and a token with an
// entry that is not a domain or bare JID is malformed: a token that the
// issuer got wrong fails loudly instead of seeing less, or more, than
// meant. CanSee then compares strings exactly, which is cheap on the
// bridge's hot path and correct because the bridge normalizes JIDs too.
//
// Errors never contain the token, nor its signature, nor a secret; they
// name the rule that failed. Tokens longer than 64 KiB are refused unread.
// Tokens in query strings end up in access logs and browser history, so
// the bridge should not log request URLs, and issuers should keep tokens
// short-lived.
package auth
