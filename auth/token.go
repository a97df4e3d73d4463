package auth

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The KeyringConfig defaults.
const (
	// IssuerDefault is a Keyring's issuer, the "iss" claim of its tokens.
	IssuerDefault = "mortar"
	// LeewayDefault is the clock skew Verify allows either way on a
	// token's times: enough for the clocks of a cluster's nodes, not so
	// much that an expired token lives on.
	LeewayDefault = 5 * time.Second
)

// MaxTokenLen is the longest token, in bytes, that Verify parses and Issue
// makes. A mortar token is a few hundred bytes; the bound caps the work an
// unauthenticated request can cause before its signature is checked.
const MaxTokenLen = 8 << 10

// TokenCacheSizeDefault is the number of tokens NewTokenCache remembers
// when given a size of 0 or less: a few MiB of tokens and claims.
const TokenCacheSizeDefault = 10_000

// Lengths of the random identifiers GenerateSigningKey and Issue make, in
// bytes before base64url encoding.
const (
	keyIDLen   = 9  // 72 bits, 12 characters: unique among a keyring's few keys
	tokenIDLen = 16 // 128 bits, 22 characters: unique among all tokens
)

// maxKeyIDLen is the longest key ID a SigningKey may have.
const maxKeyIDLen = 64

var (
	// ErrBadToken is returned, wrapped with the reason, by Verify for a
	// token it refuses for any reason but expiry: malformed, too long,
	// signed with an algorithm other than EdDSA or by a key the Keyring
	// does not hold or has retired, with a bad signature, not valid yet,
	// or with the wrong issuer or any audience. The reason never quotes
	// the token.
	ErrBadToken = errors.New("auth: invalid token")
	// ErrTokenExpired is returned, wrapped, by Verify for a token that
	// would be valid but for its expiry. Only a token whose signature has
	// been checked is reported expired.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrNoSigningKey is returned by Issue when the Keyring holds no key
	// it can sign with.
	ErrNoSigningKey = errors.New("auth: no signing key")
	// ErrBadSigningKey is returned, wrapped with the reason, for a
	// SigningKey that cannot be used or stored. The reason never quotes
	// key material.
	ErrBadSigningKey = errors.New("auth: malformed signing key")
)

// SigningKey is one Ed25519 key of a Keyring.
//
// A key's life is: Created, from when a Keyring may sign with it (it
// verifies as soon as it is in the set, so a key can be published ahead
// of its use); superseded, when a newer key is created, after which it
// only verifies; and Retires, from when it does not even verify. Retire a
// key no sooner than the longest token lifetime after its successor
// starts signing, or tokens die before their expiry.
type SigningKey struct {
	// ID is the key ID, the "kid" header of the tokens it signs: 1 to 64
	// base64url characters, unique in a Keyring. GenerateSigningKey makes
	// 12 random ones.
	ID string
	// Private is the private key, nil on a verify-only key (for example,
	// one loaded from another node's JWKS).
	Private ed25519.PrivateKey
	// Public is the public key.
	Public ed25519.PublicKey
	// Created is when the key was made; a Keyring signs with the newest
	// key whose Created is not in the future. It must not be zero.
	Created time.Time
	// Retires is when the key retires: from then on a Keyring neither
	// signs with it nor verifies tokens it signed. Zero means never.
	Retires time.Time
}

// GenerateSigningKey returns a new Ed25519 key with a random ID, created
// at now and never retiring.
func GenerateSigningKey(now time.Time) (SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return SigningKey{}, fmt.Errorf("auth: generate signing key: %w", err)
	}
	return SigningKey{ID: randomID(keyIDLen), Private: priv, Public: pub, Created: now.Round(0)}, nil
}

// randomID returns n random bytes in unpadded base64url.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails: since Go 1.24 it crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}

// retired reports whether k has retired at now.
func (k *SigningKey) retired(now time.Time) bool {
	return !k.Retires.IsZero() && !now.Before(k.Retires)
}

// check reports, wrapping ErrBadSigningKey, why k cannot be used: a bad
// ID, a public key of the wrong size, a private key of the wrong size or
// not matching the public key, or a zero Created.
func (k *SigningKey) check() error {
	switch {
	case k.ID == "" || len(k.ID) > maxKeyIDLen || !isBase64URL(k.ID):
		return fmt.Errorf("%w: key ID is not 1 to %d base64url characters", ErrBadSigningKey, maxKeyIDLen)
	case len(k.Public) != ed25519.PublicKeySize:
		return fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadSigningKey, len(k.Public), ed25519.PublicKeySize)
	case k.Private == nil:
	case len(k.Private) != ed25519.PrivateKeySize:
		return fmt.Errorf("%w: private key is %d bytes, want %d", ErrBadSigningKey, len(k.Private), ed25519.PrivateKeySize)
	case !bytes.Equal(ed25519.NewKeyFromSeed(k.Private.Seed()), k.Private) || !bytes.Equal(k.Private[ed25519.SeedSize:], k.Public):
		return fmt.Errorf("%w: private key does not match public key", ErrBadSigningKey)
	}
	if k.Created.IsZero() {
		return fmt.Errorf("%w: zero creation time", ErrBadSigningKey)
	}
	return nil
}

// isBase64URL reports whether s holds only base64url characters.
func isBase64URL(s string) bool {
	for i := range len(s) {
		if !base64URLChar[s[i]] {
			return false
		}
	}
	return true
}

// base64URLChar is the base64url alphabet, RFC 4648 section 5.
var base64URLChar = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()

// strictBase64URL decodes unpadded base64url, refusing non-zero trailing
// bits, so that a value has exactly one encoding. It still skips CR and
// LF, so callers check the alphabet first.
var strictBase64URL = base64.RawURLEncoding.Strict()

// storedKey is the JSON form of a SigningKey: a private JWK (RFC 8037),
// or a public one for a verify-only key, with two members of its own.
type storedKey struct {
	Kty     string    `json:"kty"` // "OKP"
	Crv     string    `json:"crv"` // "Ed25519"
	Kid     string    `json:"kid"`
	X       string    `json:"x"`           // the public key
	D       string    `json:"d,omitempty"` // the private key's 32-byte seed
	Created time.Time `json:"created"`
	Retires time.Time `json:"retires,omitzero"`
}

// MarshalSigningKey returns k in a stable JSON form for storage: a JWK
// (RFC 7517, RFC 8037) with the private key's seed as "d", omitted on a
// verify-only key, and the times in RFC 3339 in UTC as "created" and
// "retires" (omitted when zero), in that member order:
//
//	{"kty":"OKP","crv":"Ed25519","kid":"…","x":"…","d":"…","created":"2026-01-02T03:04:05Z"}
//
// The result holds the private key: store it where only the nodes can read
// it. It returns an error wrapping ErrBadSigningKey for a key that
// UnmarshalSigningKey would refuse.
func MarshalSigningKey(k SigningKey) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	s := storedKey{
		Kty:     "OKP",
		Crv:     "Ed25519",
		Kid:     k.ID,
		X:       base64.RawURLEncoding.EncodeToString(k.Public),
		Created: k.Created.UTC(),
	}
	if k.Private != nil {
		s.D = base64.RawURLEncoding.EncodeToString(k.Private.Seed())
	}
	if !k.Retires.IsZero() {
		s.Retires = k.Retires.UTC()
	}
	b, err := json.Marshal(s)
	if err != nil { // a time outside years 0 to 9999
		return nil, fmt.Errorf("%w: %v", ErrBadSigningKey, err)
	}
	return b, nil
}

// UnmarshalSigningKey parses a key in MarshalSigningKey's form. It checks
// that the key is an Ed25519 JWK with a valid ID, that the public key and
// the seed (if any) are 32 bytes of unpadded base64url, that the seed
// makes the public key, and that "created" is set; it ignores members it
// does not know. Its times are in UTC. It returns an error wrapping
// ErrBadSigningKey for anything else.
func UnmarshalSigningKey(b []byte) (SigningKey, error) {
	var s storedKey
	if err := json.Unmarshal(b, &s); err != nil {
		return SigningKey{}, fmt.Errorf("%w: %v", ErrBadSigningKey, err)
	}
	if s.Kty != "OKP" || s.Crv != "Ed25519" {
		return SigningKey{}, fmt.Errorf("%w: not an Ed25519 key", ErrBadSigningKey)
	}
	k := SigningKey{ID: s.Kid, Created: s.Created.UTC()}
	if !s.Retires.IsZero() {
		k.Retires = s.Retires.UTC()
	}
	pub, err := decodeKeyBytes(s.X, ed25519.PublicKeySize)
	if err != nil {
		return SigningKey{}, fmt.Errorf("%w: public key: %v", ErrBadSigningKey, err)
	}
	k.Public = pub
	if s.D != "" {
		seed, err := decodeKeyBytes(s.D, ed25519.SeedSize)
		if err != nil {
			return SigningKey{}, fmt.Errorf("%w: private key: %v", ErrBadSigningKey, err)
		}
		k.Private = ed25519.NewKeyFromSeed(seed)
	}
	if err := k.check(); err != nil {
		return SigningKey{}, err
	}
	return k, nil
}

// decodeKeyBytes decodes s, unpadded base64url, and checks that it is n
// bytes. Its errors never quote s.
func decodeKeyBytes(s string, n int) ([]byte, error) {
	if !isBase64URL(s) {
		return nil, errors.New("not unpadded base64url")
	}
	b, err := strictBase64URL.DecodeString(s)
	switch {
	case err != nil:
		return nil, err // a CorruptInputError gives only an offset
	case len(b) != n:
		return nil, fmt.Errorf("%d bytes, want %d", len(b), n)
	}
	return b, nil
}

// Claims are what a mortar token says. Times in a token are whole
// seconds: Issue truncates them, and Verify returns them in UTC.
type Claims struct {
	// Subject is the principal, a user or service name: the "sub" claim.
	// It must not be empty.
	Subject string
	// SessionID is the session the token belongs to, empty for none: the
	// "sid" claim.
	SessionID string
	// Kind is what the token is for, such as "session" or "service": the
	// "knd" claim.
	Kind string
	// ID is the token's unique ID, the "jti" claim. Issue sets a random
	// one when it is empty.
	ID string
	// Issuer is the "iss" claim. Issue sets it to KeyringConfig.Issuer,
	// whatever it was.
	Issuer string
	// IssuedAt is the "iat" claim. Issue sets it to the current time,
	// whatever it was.
	IssuedAt time.Time
	// ExpiresAt is the "exp" claim: the token is valid until then (give or
	// take the leeway). It is required and must be in the future.
	ExpiresAt time.Time
}

// tokenClaims is the JSON form of Claims.
type tokenClaims struct {
	SessionID string `json:"sid,omitempty"`
	Kind      string `json:"knd,omitempty"`
	jwt.RegisteredClaims
}

// KeyringConfig configures a Keyring. Its zero value issues tokens as
// "mortar", allows 5 s of clock skew and uses the system clock.
type KeyringConfig struct {
	// Issuer is the "iss" claim of the tokens the Keyring issues, and the
	// only one Verify accepts. Defaults to IssuerDefault.
	Issuer string
	// Leeway is the clock skew Verify allows on a token's expiry, issue
	// time and not-before time. Defaults to LeewayDefault; negative means
	// none.
	Leeway time.Duration
	// Now returns the current time. Defaults to time.Now.
	Now func() time.Time
}

// Keyring issues and verifies mortar's bearer tokens: JWTs (RFC 7519)
// signed with EdDSA over Ed25519 keys (RFC 8037), each naming its key in
// a "kid" header. It holds a set of SigningKeys, typically all nodes'
// view of the keys stored in a KV bucket, replaced whole by SetKeys; it
// signs with the newest and verifies with any that has not retired, so
// keys can be rotated without refusing tokens in flight.
//
// Verify accepts only tokens signed by one of its keys: alg "EdDSA" and
// nothing else ("none", HMAC and RSA are refused whatever the key), a
// known kid, canonical unpadded base64url, and a signature that Go's
// ed25519 checks strictly (it has one valid encoding), so that a token
// accepted is byte for byte one that was signed. Keyrings with the same
// keys and issuer, on any node, accept each other's tokens.
//
// A Keyring is safe for concurrent use. Verify and Issue take no lock:
// the key set is immutable and replaced atomically.
type Keyring struct {
	issuer string
	leeway time.Duration
	now    func() time.Time
	parser *jwt.Parser

	mu  sync.Mutex             // held by SetKeys, so that concurrent calls agree on which keys died
	set atomic.Pointer[keySet] // never nil
}

// keySet is a Keyring's keys. It is never modified once stored.
type keySet struct {
	keys []*keyEntry // by Created, then ID
	byID map[string]*keyEntry
}

// keyEntry is a key of a keySet. SetKeys carries an entry over to the
// next set when the key is unchanged, and marks it dead otherwise, which
// ends the TokenCache entries of the tokens it signed.
type keyEntry struct {
	SigningKey
	dead atomic.Bool
}

// NewKeyring returns a Keyring for cfg, with no keys; a nil cfg means all
// defaults. cfg is not modified.
func NewKeyring(cfg *KeyringConfig) *Keyring {
	var c KeyringConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	k := &Keyring{
		issuer: cmp.Or(c.Issuer, IssuerDefault),
		leeway: max(cmp.Or(c.Leeway, LeewayDefault), 0),
		now:    c.Now,
		// Claims are checked by checkClaims, so that a token is reported
		// expired only when nothing else is wrong with it.
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithStrictDecoding(),
			jwt.WithoutClaimsValidation(),
		),
	}
	k.set.Store(&keySet{byID: map[string]*keyEntry{}})
	return k
}

// SetKeys replaces k's keys with keys, as when the stored keys change. It
// leaves out keys that MarshalSigningKey would refuse, as they can verify
// nothing; of keys sharing an ID, the last wins. From the next Issue, k
// signs with the newest key, by Created, that has a private key, was
// created by then and has not retired. Tokens signed by a key left out of
// keys stop verifying at once, in VerifyCached too. keys is not retained.
func (k *Keyring) SetKeys(keys []SigningKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.set.Load()
	next := &keySet{byID: make(map[string]*keyEntry, len(keys))}
	for _, key := range keys {
		if key.check() != nil {
			continue
		}
		if e := old.byID[key.ID]; e != nil && e.same(&key) {
			next.byID[key.ID] = e
			continue
		}
		next.byID[key.ID] = &keyEntry{SigningKey: cloneKey(key)}
	}
	for _, e := range next.byID {
		next.keys = append(next.keys, e)
	}
	slices.SortFunc(next.keys, func(a, b *keyEntry) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	k.set.Store(next)
	for _, e := range old.keys {
		if next.byID[e.ID] != e {
			e.dead.Store(true)
		}
	}
}

// same reports whether e holds exactly key.
func (e *keyEntry) same(key *SigningKey) bool {
	return e.ID == key.ID && bytes.Equal(e.Public, key.Public) && bytes.Equal(e.Private, key.Private) &&
		(e.Private == nil) == (key.Private == nil) && e.Created.Equal(key.Created) && e.Retires.Equal(key.Retires)
}

// cloneKey returns a copy of key that shares no memory with it.
func cloneKey(key SigningKey) SigningKey {
	key.Public = bytes.Clone(key.Public)
	key.Private = bytes.Clone(key.Private)
	return key
}

// Keys returns copies of k's keys, retired ones included, by Created.
func (k *Keyring) Keys() []SigningKey {
	set := k.set.Load()
	keys := make([]SigningKey, len(set.keys))
	for i, e := range set.keys {
		keys[i] = cloneKey(e.SigningKey)
	}
	return keys
}

// signer returns the key to sign with at now, or nil.
func (s *keySet) signer(now time.Time) *keyEntry {
	for _, e := range slices.Backward(s.keys) {
		if e.Private != nil && !e.retired(now) && !e.Created.After(now) {
			return e
		}
	}
	return nil
}

// Issue returns a signed token that says c, with c.Issuer and c.IssuedAt
// set to k's issuer and the current time, c.ID set to a random 22
// characters if empty, and the times truncated to whole seconds. It signs
// with EdDSA and names the key in the "kid" header.
//
// c.Subject must be non-empty, c.ExpiresAt after the current time, and
// the strings valid UTF-8 (which is all JSON can carry unchanged), making
// a token of at most MaxTokenLen bytes. Issue returns ErrNoSigningKey when
// k holds no key to sign with.
func (k *Keyring) Issue(c Claims) (string, error) {
	now := k.now()
	key := k.set.Load().signer(now)
	if key == nil {
		return "", ErrNoSigningKey
	}
	exp := c.ExpiresAt.Truncate(time.Second)
	switch {
	case c.Subject == "":
		return "", errors.New("auth: issue token: empty subject")
	case c.ExpiresAt.IsZero():
		return "", errors.New("auth: issue token: no expiry")
	case !exp.After(now):
		return "", errors.New("auth: issue token: expiry not in the future")
	case !utf8.ValidString(c.Subject) || !utf8.ValidString(c.SessionID) || !utf8.ValidString(c.Kind) || !utf8.ValidString(c.ID):
		return "", errors.New("auth: issue token: claim is not valid UTF-8")
	}
	if c.ID == "" {
		c.ID = randomID(tokenIDLen)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &tokenClaims{
		SessionID: c.SessionID,
		Kind:      c.Kind,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    k.issuer,
			Subject:   c.Subject,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now.Truncate(time.Second)),
			ID:        c.ID,
		},
	})
	t.Header["kid"] = key.ID
	s, err := t.SignedString(key.Private)
	if err != nil {
		return "", fmt.Errorf("auth: issue token: %w", err)
	}
	if len(s) > MaxTokenLen {
		return "", fmt.Errorf("auth: issue token: %d bytes, longer than %d", len(s), MaxTokenLen)
	}
	return s, nil
}

// Verify checks token and returns what it says. The token must be at most
// MaxTokenLen bytes of canonical unpadded base64url in three segments,
// have alg "EdDSA", no "crit" header and the kid of a key of k that has
// not retired, carry that key's valid signature, and claim k's issuer, a
// subject, no audience and an expiry. The expiry, issue time and
// not-before time (if any) must hold at the current time, give or take
// the leeway.
//
// An error wraps ErrTokenExpired for a token valid but for its expiry,
// and ErrBadToken for any other failure.
func (k *Keyring) Verify(token string) (Claims, error) {
	c, _, err := k.verify(token, k.now())
	return c, err
}

// Reasons Verify refuses a token, wrapped into its ErrBadToken.
var (
	errUnknownKey  = errors.New("unknown key")
	errRetiredKey  = errors.New("key retired")
	errCritHeader  = errors.New("critical header")
	errTokenSyntax = errors.New("not three base64url segments")
)

// verify is Verify at now; it also returns the key that signed the token.
func (k *Keyring) verify(token string, now time.Time) (Claims, *keyEntry, error) {
	if len(token) > MaxTokenLen {
		return Claims{}, nil, fmt.Errorf("%w: longer than %d bytes", ErrBadToken, MaxTokenLen)
	}
	if !validTokenSyntax(token) {
		return Claims{}, nil, fmt.Errorf("%w: %v", ErrBadToken, errTokenSyntax)
	}
	set := k.set.Load()
	var (
		key *keyEntry
		tc  tokenClaims
	)
	_, err := k.parser.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritHeader // RFC 7515 section 4.1.11: we understand no extensions
		}
		kid, _ := t.Header["kid"].(string)
		e := set.byID[kid]
		switch {
		case e == nil:
			return nil, errUnknownKey
		case e.retired(now):
			return nil, errRetiredKey
		}
		key = e
		return e.Public, nil
	})
	if err != nil {
		return Claims{}, nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	c, err := k.checkClaims(&tc, now)
	if err != nil {
		return Claims{}, nil, err
	}
	return c, key, nil
}

// checkClaims checks the claims of a token whose signature is good, and
// converts them.
func (k *Keyring) checkClaims(tc *tokenClaims, now time.Time) (Claims, error) {
	late := now.Add(k.leeway) // the latest the current time may be
	var reason string
	switch {
	case tc.Issuer != k.issuer:
		reason = "wrong issuer"
	case len(tc.Audience) > 0:
		// RFC 7519 section 4.1.3: a verifier that is not in the audience
		// must refuse the token, and a Keyring is in none.
		reason = "has an audience"
	case tc.Subject == "":
		reason = "no subject"
	case tc.ExpiresAt == nil:
		reason = "no expiry"
	case tc.NotBefore != nil && late.Before(tc.NotBefore.Time):
		reason = "not valid yet"
	case tc.IssuedAt != nil && late.Before(tc.IssuedAt.Time):
		reason = "issued in the future"
	case !now.Before(tc.ExpiresAt.Add(k.leeway)):
		return Claims{}, fmt.Errorf("%w: at %s", ErrTokenExpired, tc.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if reason != "" {
		return Claims{}, fmt.Errorf("%w: %s", ErrBadToken, reason)
	}
	c := Claims{
		Subject:   tc.Subject,
		SessionID: tc.SessionID,
		Kind:      tc.Kind,
		ID:        tc.ID,
		Issuer:    tc.Issuer,
		ExpiresAt: tc.ExpiresAt.UTC(),
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.UTC()
	}
	return c, nil
}

// validTokenSyntax reports whether s is three segments of base64url
// characters. The decoder skips CR and LF and, with the parser's strict
// decoding, refuses non-zero trailing bits; so, after this check, each
// segment has one encoding only.
func validTokenSyntax(s string) bool {
	dots := 0
	for i := range len(s) {
		switch c := s[i]; {
		case c == '.':
			dots++
		case !base64URLChar[c]:
			return false
		}
	}
	return dots == 2
}

// jwk is a public key in a JWKS.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS returns k's keys that have not retired as a JSON Web Key Set (RFC
// 7517), for others to verify k's tokens with, ordered by Created:
//
//	{"keys":[{"kty":"OKP","crv":"Ed25519","x":"…","kid":"…","use":"sig","alg":"EdDSA"}]}
//
// It includes keys created in the future, so a key can be published
// before it signs; a verifier that caches the set should refetch it more
// often than keys are published ahead.
func (k *Keyring) JWKS() []byte {
	now := k.now()
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, e := range k.set.Load().keys {
		if e.retired(now) {
			continue
		}
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(e.Public),
			Kid: e.ID,
			Use: "sig",
			Alg: jwt.SigningMethodEdDSA.Alg(),
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		panic(err) // strings only: cannot fail
	}
	return b
}

// VerifyCached is Verify with a cache in front: it returns the claims of
// a token c holds, and otherwise verifies the token and puts it in c. A
// hit skips the signature check, so it costs about 100 ns rather than
// 60 µs; it holds while the token has not expired (without leeway) and
// its key is in k, unchanged and not retired. A nil c means no cache.
// Give each Keyring its own TokenCache: a hit does not say which Keyring
// verified the token.
func (k *Keyring) VerifyCached(c *TokenCache, token string) (Claims, error) {
	now := k.now()
	if c == nil {
		cl, _, err := k.verify(token, now)
		return cl, err
	}
	if cl, ok := c.Get(token, now); ok {
		return cl, nil
	}
	cl, key, err := k.verify(token, now)
	if err != nil {
		return Claims{}, err
	}
	c.put(token, cl, key)
	return cl, nil
}

// Bounds on a TokenCache's structure.
const (
	// maxCacheShards is the most shards a TokenCache has: enough that
	// Gets on many cores rarely share a lock's cache line.
	maxCacheShards = 16
	// minShardSize is the fewest entries a shard holds, so that small
	// caches have one shard and evict from all their entries.
	minShardSize = 64
	// evictSample is how many entries Put looks at to choose one to
	// evict.
	evictSample = 8
)

// TokenCache remembers verified tokens, so that a hot path (every RPC
// call, every API request) can skip the signature check: Get returns the
// Claims of a token put before, until it expires. Keyring.VerifyCached
// uses it so.
//
// An entry dies at its token's expiry or, for a token put by
// VerifyCached, when its key retires or leaves the Keyring. A TokenCache
// is bounded: when full, Put evicts of a few entries sampled at random
// the one that dies soonest. Forget and Purge remove entries; a caller
// that revokes a token must also refuse it (say, by its SessionID) before
// VerifyCached, or it is verified and cached again.
//
// A TokenCache is safe for concurrent use. It is sharded by token, each
// shard a map under a sync.RWMutex, so that Gets run in parallel.
type TokenCache struct {
	seed   maphash.Seed
	shards []cacheShard // a power of two of them
}

type cacheShard struct {
	mu  sync.RWMutex
	m   map[string]cacheEntry
	max int

	_ [64]byte // keeps shards' locks off each other's cache lines
}

type cacheEntry struct {
	claims Claims
	dies   time.Time // the entry is valid before then
	key    *keyEntry // the key that signed the token, or nil
}

// NewTokenCache returns an empty TokenCache that holds at most size
// tokens. A size of 0 or less means TokenCacheSizeDefault.
func NewTokenCache(size int) *TokenCache {
	if size <= 0 {
		size = TokenCacheSizeDefault
	}
	n := 1
	for n < maxCacheShards && size/(2*n) >= minShardSize {
		n *= 2
	}
	c := &TokenCache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = size / n
		if i < size%n {
			s.max++
		}
		s.m = make(map[string]cacheEntry)
	}
	return c
}

func (c *TokenCache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)&uint64(len(c.shards)-1)]
}

// Get returns the claims put for token, if c holds them and their entry
// is alive at now.
func (c *TokenCache) Get(token string, now time.Time) (Claims, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	if !ok || !now.Before(e.dies) || e.key != nil && e.key.dead.Load() {
		return Claims{}, false
	}
	return e.claims, true
}

// Put remembers cl, a verified token's claims, for token until
// cl.ExpiresAt. It replaces any claims put for token before. A zero
// cl.ExpiresAt puts nothing.
func (c *TokenCache) Put(token string, cl Claims) { c.put(token, cl, nil) }

// put is Put for a token signed by key; a nil key is none. The entry also
// dies when key retires or is dropped from its Keyring.
func (c *TokenCache) put(token string, cl Claims, key *keyEntry) {
	e := cacheEntry{claims: cl, dies: cl.ExpiresAt, key: key}
	if key != nil && !key.Retires.IsZero() && key.Retires.Before(e.dies) {
		e.dies = key.Retires
	}
	if e.dies.IsZero() {
		return
	}
	token = strings.Clone(token) // the caller's may be part of a larger buffer
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[token]; !ok && len(s.m) >= s.max {
		s.evict()
	}
	s.m[token] = e
}

// evict removes, of evictSample entries at random, the one that dies
// first; an entry whose key is dead dies first of all. s.mu must be held,
// and s.m not empty.
func (s *cacheShard) evict() {
	var (
		victim string
		dies   time.Time
		n      int
	)
	for t, e := range s.m { // from a random position
		d := e.dies
		if e.key != nil && e.key.dead.Load() {
			d = time.Time{}
		}
		if n == 0 || d.Before(dies) {
			victim, dies = t, d
		}
		if n++; n == evictSample {
			break
		}
	}
	delete(s.m, victim)
}

// Forget removes token from c.
func (c *TokenCache) Forget(token string) {
	s := c.shard(token)
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}

// Purge removes every token from c.
func (c *TokenCache) Purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
