package auth_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mortarhq/mortar/auth"
)

// t0 is the time tests start at: a whole second, so that tokens' times
// are what the test set.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testClock is a clock that tests set, safe for concurrent use.
type testClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *testClock {
	c := new(testClock)
	c.Set(t)
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testKey returns a key made from a seed of n repeated, named "key<n>":
// the same in every run, so that fuzz seeds are the same in every worker.
func testKey(n byte, created time.Time) auth.SigningKey {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
	return auth.SigningKey{
		ID:      fmt.Sprintf("key%d", n),
		Private: priv,
		Public:  priv.Public().(ed25519.PublicKey),
		Created: created,
	}
}

// verifyOnly returns k without its private key.
func verifyOnly(k auth.SigningKey) auth.SigningKey {
	k.Private = nil
	return k
}

// newKeyring returns a Keyring on clock holding keys.
func newKeyring(clock *testClock, keys ...auth.SigningKey) *auth.Keyring {
	kr := auth.NewKeyring(&auth.KeyringConfig{Now: clock.Now})
	kr.SetKeys(keys)
	return kr
}

func issue(t testing.TB, kr *auth.Keyring, c auth.Claims) string {
	t.Helper()
	tok, err := kr.Issue(c)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", c, err)
	}
	return tok
}

// aliceFor returns claims for alice that expire d after t0.
func aliceFor(d time.Duration) auth.Claims {
	return auth.Claims{Subject: "alice", SessionID: "s1", Kind: "session", ID: "t1", ExpiresAt: t0.Add(d)}
}

// issued returns c as Verify returns it after Issue at now: with issuer
// "mortar", issue time now, and times in whole seconds in UTC.
func issued(c auth.Claims, now time.Time) auth.Claims {
	c.Issuer = auth.IssuerDefault
	c.IssuedAt = now.Truncate(time.Second).UTC()
	c.ExpiresAt = c.ExpiresAt.Truncate(time.Second).UTC()
	return c
}

// segments returns tok's three segments.
func segments(t testing.TB, tok string) (header, payload, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments", tok, len(parts))
	}
	return parts[0], parts[1], parts[2]
}

// decodeSegment decodes a token segment as JSON into v.
func decodeSegment(t testing.TB, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("decode segment %q: %v", seg, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("unmarshal segment %s: %v", b, err)
	}
}

// seg64 encodes s as a token segment.
func seg64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// validPayload is a payload that key1's keyring accepts at t0.
func validPayload() jwt.MapClaims {
	return jwt.MapClaims{"iss": "mortar", "sub": "alice", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
}

// forge returns claims signed with method and key, with header fields
// added (a nil value deletes the field). For EdDSA, key is a SigningKey
// whose kid the header names unless header says otherwise.
func forge(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if k, ok := key.(auth.SigningKey); ok {
		tok.Header["kid"] = k.ID
		key = k.Private
	}
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("SignedString: %v", err)
	}
	return s
}

func TestGenerateSigningKey(t *testing.T) {
	t.Parallel()
	k, err := auth.GenerateSigningKey(t0)
	if err != nil {
		t.Fatalf("GenerateSigningKey: %v", err)
	}
	if id, err := base64.RawURLEncoding.Strict().DecodeString(k.ID); err != nil || len(id) != 9 {
		t.Errorf("GenerateSigningKey ID %q decodes to %d bytes, %v; want 9", k.ID, len(id), err)
	}
	if !k.Created.Equal(t0) || !k.Retires.IsZero() {
		t.Errorf("GenerateSigningKey(%v) created %v, retires %v", t0, k.Created, k.Retires)
	}
	if len(k.Private) != ed25519.PrivateKeySize || !k.Public.Equal(k.Private.Public()) {
		t.Errorf("GenerateSigningKey: private key does not match public key")
	}
	msg := []byte("hello")
	if !ed25519.Verify(k.Public, msg, ed25519.Sign(k.Private, msg)) {
		t.Errorf("GenerateSigningKey: key does not sign")
	}
	k2, _ := auth.GenerateSigningKey(t0)
	if k2.ID == k.ID || k2.Public.Equal(k.Public) {
		t.Errorf("two GenerateSigningKey keys share an ID or public key")
	}
}

// sameKey reports whether a and b are the same key.
func sameKey(a, b auth.SigningKey) bool {
	return a.ID == b.ID && bytes.Equal(a.Private, b.Private) && (a.Private == nil) == (b.Private == nil) &&
		bytes.Equal(a.Public, b.Public) && a.Created.Equal(b.Created) && a.Retires.Equal(b.Retires)
}

func TestMarshalSigningKey(t *testing.T) {
	t.Parallel()
	k := testKey(1, t0)
	x := base64.RawURLEncoding.EncodeToString(k.Public)
	d := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	retiring := k
	retiring.Retires = t0.Add(36 * time.Hour).In(time.FixedZone("CET", 3600))
	generated, err := auth.GenerateSigningKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  auth.SigningKey
		want string // "" to skip comparing
	}{
		{"signing", k, `{"kty":"OKP","crv":"Ed25519","kid":"key1","x":"` + x + `","d":"` + d + `","created":"2026-01-02T03:04:05Z"}`},
		{"verify only", verifyOnly(k), `{"kty":"OKP","crv":"Ed25519","kid":"key1","x":"` + x + `","created":"2026-01-02T03:04:05Z"}`},
		{"retires", retiring, `{"kty":"OKP","crv":"Ed25519","kid":"key1","x":"` + x + `","d":"` + d + `","created":"2026-01-02T03:04:05Z","retires":"2026-01-03T15:04:05Z"}`},
		{"generated", generated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := auth.MarshalSigningKey(tt.key)
			if err != nil {
				t.Fatalf("MarshalSigningKey: %v", err)
			}
			if tt.want != "" && string(b) != tt.want {
				t.Errorf("MarshalSigningKey = %s\nwant %s", b, tt.want)
			}
			got, err := auth.UnmarshalSigningKey(b)
			if err != nil {
				t.Fatalf("UnmarshalSigningKey(%s): %v", b, err)
			}
			if !sameKey(got, tt.key) {
				t.Errorf("UnmarshalSigningKey(MarshalSigningKey(k)) = %+v, want %+v", got, tt.key)
			}
			if again, err := auth.MarshalSigningKey(got); err != nil || !bytes.Equal(again, b) {
				t.Errorf("MarshalSigningKey(UnmarshalSigningKey(b)) = %s, %v; want %s", again, err, b)
			}
		})
	}
}

func TestMarshalSigningKeyMalformed(t *testing.T) {
	t.Parallel()
	k := testKey(1, t0)
	other := testKey(2, t0)
	// halfSwapped has k's seed but other's public half.
	halfSwapped := k
	halfSwapped.Private = append(bytes.Clone(k.Private[:32]), other.Public...)
	tests := []struct {
		name string
		edit func(k *auth.SigningKey)
	}{
		{"no ID", func(k *auth.SigningKey) { k.ID = "" }},
		{"ID not base64url", func(k *auth.SigningKey) { k.ID = "key 1" }},
		{"ID too long", func(k *auth.SigningKey) { k.ID = strings.Repeat("k", 65) }},
		{"no public key", func(k *auth.SigningKey) { k.Public = nil }},
		{"short public key", func(k *auth.SigningKey) { k.Public = k.Public[:31] }},
		{"short private key", func(k *auth.SigningKey) { k.Private = k.Private[:32] }},
		{"empty private key", func(k *auth.SigningKey) { k.Private = ed25519.PrivateKey{} }},
		{"other public key", func(k *auth.SigningKey) { k.Public = other.Public }},
		{"private half mismatch", func(k *auth.SigningKey) { k.Private = halfSwapped.Private; k.Public = other.Public }},
		{"zero created", func(k *auth.SigningKey) { k.Created = time.Time{} }},
		{"created after 9999", func(k *auth.SigningKey) { k.Created = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := k
			key.Private = bytes.Clone(k.Private)
			tt.edit(&key)
			if b, err := auth.MarshalSigningKey(key); !errors.Is(err, auth.ErrBadSigningKey) {
				t.Errorf("MarshalSigningKey = %s, %v; want ErrBadSigningKey", b, err)
			}
		})
	}
}

func TestUnmarshalSigningKeyMalformed(t *testing.T) {
	t.Parallel()
	k := testKey(1, t0)
	x := base64.RawURLEncoding.EncodeToString(k.Public)
	d := base64.RawURLEncoding.EncodeToString(k.Private.Seed())
	otherX := base64.RawURLEncoding.EncodeToString(testKey(2, t0).Public)
	key := func(kty, crv, kid, x, d, created string) string {
		return fmt.Sprintf(`{"kty":%q,"crv":%q,"kid":%q,"x":%q,"d":%q,"created":%q}`, kty, crv, kid, x, d, created)
	}
	const created = "2026-01-02T03:04:05Z"
	if _, err := auth.UnmarshalSigningKey([]byte(key("OKP", "Ed25519", "key1", x, d, created))); err != nil {
		t.Fatalf("UnmarshalSigningKey(valid): %v", err)
	}
	tests := []struct{ name, json string }{
		{"empty", ``},
		{"null", `null`},
		{"empty object", `{}`},
		{"array", `[]`},
		{"truncated", key("OKP", "Ed25519", "key1", x, d, created)[:40]},
		{"RSA", key("RSA", "Ed25519", "key1", x, d, created)},
		{"X25519", key("OKP", "X25519", "key1", x, d, created)},
		{"no kid", key("OKP", "Ed25519", "", x, d, created)},
		{"kid with a space", key("OKP", "Ed25519", "key 1", x, d, created)},
		{"no x", key("OKP", "Ed25519", "key1", "", d, created)},
		{"short x", key("OKP", "Ed25519", "key1", x[:42], d, created)},
		{"long x", key("OKP", "Ed25519", "key1", x+"AA", d, created)},
		{"padded x", key("OKP", "Ed25519", "key1", x+"=", d, created)},
		{"x in std base64", key("OKP", "Ed25519", "key1", strings.NewReplacer("-", "+", "_", "/").Replace(x)+"+", d, created)},
		{"x with a newline", key("OKP", "Ed25519", "key1", x[:20]+"\n"+x[20:], d, created)},
		{"x with trailing bits", key("OKP", "Ed25519", "key1", x[:42]+flipLowBits(x[42]), d, created)},
		{"short d", key("OKP", "Ed25519", "key1", x, d[:40], created)},
		{"d not base64", key("OKP", "Ed25519", "key1", x, "!"+d[1:], created)},
		{"d of another key", key("OKP", "Ed25519", "key1", otherX, d, created)},
		{"no created", strings.Replace(key("OKP", "Ed25519", "key1", x, d, created), `,"created":"2026-01-02T03:04:05Z"`, "", 1)},
		{"bad created", key("OKP", "Ed25519", "key1", x, d, "yesterday")},
		{"bad retires", strings.Replace(key("OKP", "Ed25519", "key1", x, d, created), "}", `,"retires":7}`, 1)},
		{"x a number", strings.Replace(key("OKP", "Ed25519", "key1", x, d, created), `"x":"`+x+`"`, `"x":7`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := auth.UnmarshalSigningKey([]byte(tt.json))
			if !errors.Is(err, auth.ErrBadSigningKey) {
				t.Errorf("UnmarshalSigningKey(%s) = %+v, %v; want ErrBadSigningKey", tt.json, k, err)
			}
			if err != nil && strings.Contains(err.Error(), d) {
				t.Errorf("UnmarshalSigningKey error %q quotes the private key", err)
			}
		})
	}
}

// flipLowBits returns the base64url character c with its low bits set,
// which the last character of a segment whose bit length is not a
// multiple of 6 does not use: a lax decoder decodes the same bytes.
func flipLowBits(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[strings.IndexByte(alphabet, c)|1])
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims auth.Claims
	}{
		{"minimal", auth.Claims{Subject: "alice", ExpiresAt: t0.Add(time.Second)}},
		{"full", aliceFor(time.Hour)},
		{"service", auth.Claims{Subject: "billing", Kind: "service", ExpiresAt: t0.Add(24 * time.Hour)}},
		{"unicode", auth.Claims{Subject: "zoë 🐙", SessionID: "\x00\"\\<>&\u2028", Kind: "séance", ExpiresAt: t0.Add(time.Minute)}},
		{"fraction of a second", auth.Claims{Subject: "alice", ExpiresAt: t0.Add(90*time.Second + 999*time.Millisecond)}},
		{"local time zone", auth.Claims{Subject: "alice", ExpiresAt: t0.Add(time.Hour).In(time.FixedZone("PST", -8*3600))}},
		{"issuer and issue time ignored", auth.Claims{Subject: "alice", Issuer: "evil", IssuedAt: t0.Add(-time.Hour), ExpiresAt: t0.Add(time.Hour)}},
		{"far future", auth.Claims{Subject: "alice", ExpiresAt: time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock(t0.Add(123 * time.Millisecond))
			key := testKey(1, t0)
			kr := newKeyring(clock, key)
			tok := issue(t, kr, tt.claims)
			got, err := kr.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(Issue(%+v)): %v", tt.claims, err)
			}
			want := issued(tt.claims, clock.Now())
			if want.ID == "" {
				if id, err := base64.RawURLEncoding.Strict().DecodeString(got.ID); err != nil || len(id) != 16 {
					t.Errorf("Issue made the ID %q, want 16 bytes in base64url", got.ID)
				}
				want.ID = got.ID
			}
			if got != want { // == also checks the times are in UTC
				t.Errorf("Verify(Issue(%+v)) =\n%+v, want\n%+v", tt.claims, got, want)
			}

			h, _, _ := segments(t, tok)
			var header map[string]any
			decodeSegment(t, h, &header)
			if len(header) != 3 || header["alg"] != "EdDSA" || header["kid"] != key.ID || header["typ"] != "JWT" {
				t.Errorf("Issue header = %v, want alg EdDSA, kid %s, typ JWT", header, key.ID)
			}
		})
	}
}

// TestTokenPayload checks the claim names in an issued token.
func TestTokenPayload(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	kr := newKeyring(clock, testKey(1, t0))
	_, p, _ := segments(t, issue(t, kr, aliceFor(time.Hour)))
	var got map[string]any
	decodeSegment(t, p, &got)
	want := map[string]any{"iss": "mortar", "sub": "alice", "sid": "s1", "knd": "session", "jti": "t1",
		"iat": float64(t0.Unix()), "exp": float64(t0.Add(time.Hour).Unix())}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("payload = %v, want %v", got, want)
	}
}

func TestIssueUniqueIDs(t *testing.T) {
	t.Parallel()
	kr := newKeyring(newClock(t0), testKey(1, t0))
	seen := map[string]bool{}
	for range 100 {
		c, err := kr.Verify(issue(t, kr, auth.Claims{Subject: "alice", ExpiresAt: t0.Add(time.Hour)}))
		if err != nil || seen[c.ID] {
			t.Fatalf("Verify = %+v, %v; ID seen before: %v", c, err, seen[c.ID])
		}
		seen[c.ID] = true
	}
}

func TestIssueErrors(t *testing.T) {
	t.Parallel()
	key := testKey(1, t0)
	retired := key
	retired.Retires = t0
	tests := []struct {
		name   string
		keys   []auth.SigningKey
		claims auth.Claims
		want   error // nil for any error
	}{
		{"no keys", nil, aliceFor(time.Hour), auth.ErrNoSigningKey},
		{"verify-only key", []auth.SigningKey{verifyOnly(key)}, aliceFor(time.Hour), auth.ErrNoSigningKey},
		{"retired key", []auth.SigningKey{retired}, aliceFor(time.Hour), auth.ErrNoSigningKey},
		{"future key", []auth.SigningKey{testKey(1, t0.Add(time.Second))}, aliceFor(time.Hour), auth.ErrNoSigningKey},
		{"no subject", []auth.SigningKey{key}, auth.Claims{ExpiresAt: t0.Add(time.Hour)}, nil},
		{"no expiry", []auth.SigningKey{key}, auth.Claims{Subject: "alice"}, nil},
		{"expired", []auth.SigningKey{key}, aliceFor(-time.Second), nil},
		{"expires now", []auth.SigningKey{key}, aliceFor(0), nil},
		{"expires within the second", []auth.SigningKey{key}, aliceFor(999 * time.Millisecond), nil},
		{"subject not UTF-8", []auth.SigningKey{key}, auth.Claims{Subject: "al\xffce", ExpiresAt: t0.Add(time.Hour)}, nil},
		{"session not UTF-8", []auth.SigningKey{key}, auth.Claims{Subject: "alice", SessionID: "\xc0", ExpiresAt: t0.Add(time.Hour)}, nil},
		{"kind not UTF-8", []auth.SigningKey{key}, auth.Claims{Subject: "alice", Kind: "\xed\xa0\x80", ExpiresAt: t0.Add(time.Hour)}, nil},
		{"ID not UTF-8", []auth.SigningKey{key}, auth.Claims{Subject: "alice", ID: "\x80", ExpiresAt: t0.Add(time.Hour)}, nil},
		{"too long", []auth.SigningKey{key}, auth.Claims{Subject: strings.Repeat("a", auth.MaxTokenLen), ExpiresAt: t0.Add(time.Hour)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kr := newKeyring(newClock(t0), tt.keys...)
			tok, err := kr.Issue(tt.claims)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("Issue(%+v) = %q, %v; want error %v", tt.claims, tok, err, tt.want)
			}
		})
	}
}

// TestIssueLongest checks that Issue makes a token up to MaxTokenLen, and
// Verify accepts it.
func TestIssueLongest(t *testing.T) {
	t.Parallel()
	kr := newKeyring(newClock(t0), testKey(1, t0))
	c := aliceFor(time.Hour)
	short := issue(t, kr, c)
	// 3 bytes of subject are 4 characters of token.
	c.Subject += strings.Repeat("a", (auth.MaxTokenLen-len(short))/4*3)
	tok := issue(t, kr, c)
	if n := len(tok); n > auth.MaxTokenLen || n < auth.MaxTokenLen-4 {
		t.Fatalf("token is %d bytes, want just under %d", n, auth.MaxTokenLen)
	}
	if got, err := kr.Verify(tok); err != nil || got.Subject != c.Subject {
		t.Errorf("Verify(%d-byte token) = %v; want ok", len(tok), err)
	}
}

func TestVerifyExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		leeway time.Duration
		at     time.Duration // after the expiry
		want   error
	}{
		{"before", 0, -time.Second, nil},
		{"just before", 0, -time.Nanosecond, nil},
		{"at, within default leeway", 0, 0, nil},
		{"within default leeway", 0, auth.LeewayDefault - time.Nanosecond, nil},
		{"at default leeway", 0, auth.LeewayDefault, auth.ErrTokenExpired},
		{"long after", 0, time.Hour, auth.ErrTokenExpired},
		{"within a minute's leeway", time.Minute, 59 * time.Second, nil},
		{"after a minute's leeway", time.Minute, time.Minute, auth.ErrTokenExpired},
		{"no leeway, just before", -1, -time.Nanosecond, nil},
		{"no leeway, at", -1, 0, auth.ErrTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newClock(t0)
			kr := auth.NewKeyring(&auth.KeyringConfig{Leeway: tt.leeway, Now: clock.Now})
			kr.SetKeys([]auth.SigningKey{testKey(1, t0)})
			exp := t0.Add(time.Hour)
			tok := issue(t, kr, auth.Claims{Subject: "alice", ExpiresAt: exp})
			clock.Set(exp.Add(tt.at))
			_, err := kr.Verify(tok)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("Verify at exp%+v, leeway %v: %v, want %v", tt.at, tt.leeway, err, tt.want)
			}
			if errors.Is(err, auth.ErrBadToken) {
				t.Errorf("Verify error %v wraps both sentinels", err)
			}
		})
	}
}

// TestVerifyRefuses checks tokens that Verify must refuse with
// ErrBadToken, most of them forged with the key's private key or by hand.
func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	key := testKey(1, t0)
	stranger := testKey(9, t0) // a key the keyring does not hold
	good := func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, validPayload()) }
	with := func(name string, v any) jwt.MapClaims {
		c := validPayload()
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
		return c
	}
	tests := []struct {
		name  string
		token func(t testing.TB) string
	}{
		{"empty", func(testing.TB) string { return "" }},
		{"junk", func(testing.TB) string { return "not a token" }},
		{"dots", func(testing.TB) string { return ".." }},
		{"two segments", func(t testing.TB) string { h, p, _ := segments(t, good(t)); return h + "." + p }},
		{"four segments", func(t testing.TB) string { return good(t) + ".AAAA" }},
		{"no signature", func(t testing.TB) string { h, p, _ := segments(t, good(t)); return h + "." + p + "." }},
		{"oversize", func(testing.TB) string { return strings.Repeat("A", auth.MaxTokenLen-2) + ".A." }},
		{"oversize valid prefix", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, nil, with("pad", strings.Repeat("x", auth.MaxTokenLen)))
		}},
		{"alg none", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": key.ID}, validPayload())
		}},
		{"alg none by hand", func(t testing.TB) string {
			_, p, _ := segments(t, good(t))
			return seg64(`{"alg":"none","kid":"key1"}`) + "." + p + "."
		}},
		{"alg None with signature", func(t testing.TB) string {
			_, p, s := segments(t, good(t))
			return seg64(`{"alg":"None","kid":"key1","typ":"JWT"}`) + "." + p + "." + s
		}},
		{"HS256 keyed with the public key", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodHS256, []byte(key.Public), map[string]any{"kid": key.ID}, validPayload())
		}},
		{"HS256 keyed with the base64 public key", func(t testing.TB) string {
			x := base64.RawURLEncoding.EncodeToString(key.Public)
			return forge(t, jwt.SigningMethodHS256, []byte(x), map[string]any{"kid": key.ID}, validPayload())
		}},
		{"HS512 with an empty key", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodHS512, []byte{}, map[string]any{"kid": key.ID}, validPayload())
		}},
		{"alg header of EdDSA's signature swapped to Ed25519", func(t testing.TB) string {
			_, p, s := segments(t, good(t))
			return seg64(`{"alg":"Ed25519","kid":"key1","typ":"JWT"}`) + "." + p + "." + s
		}},
		{"no alg", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"alg": nil}, validPayload())
		}},
		{"no kid", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": nil}, validPayload())
		}},
		{"kid a number", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": 1}, validPayload())
		}},
		{"unknown kid", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, stranger, nil, validPayload()) }},
		{"known kid, unknown key", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, stranger, map[string]any{"kid": key.ID}, validPayload())
		}},
		{"crit header", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, map[string]any{"crit": []string{"exp"}}, validPayload())
		}},
		{"header not JSON", func(t testing.TB) string { _, p, s := segments(t, good(t)); return seg64("{") + "." + p + "." + s }},
		{"payload not JSON", func(t testing.TB) string { h, _, s := segments(t, good(t)); return h + "." + seg64("[") + "." + s }},
		{"tampered payload", func(t testing.TB) string {
			h, _, s := segments(t, good(t))
			p, _ := json.Marshal(with("sub", "root"))
			return h + "." + seg64(string(p)) + "." + s
		}},
		{"tampered header", func(t testing.TB) string {
			_, p, s := segments(t, good(t))
			return seg64(`{"alg":"EdDSA","kid":"key1","typ":"JWT","x":1}`) + "." + p + "." + s
		}},
		{"tampered signature", func(t testing.TB) string {
			h, p, s := segments(t, good(t))
			sig, _ := base64.RawURLEncoding.DecodeString(s)
			sig[10] ^= 1
			return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(sig)
		}},
		{"signature with S+L", func(t testing.TB) string {
			h, p, s := segments(t, good(t))
			sig, _ := base64.RawURLEncoding.DecodeString(s)
			return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(addOrder(sig))
		}},
		{"short signature", func(t testing.TB) string { tok := good(t); return tok[:len(tok)-4] }},
		{"signature trailing bits", func(t testing.TB) string { tok := good(t); return tok[:len(tok)-1] + flipLowBits(tok[len(tok)-1]) }},
		{"newline in signature", func(t testing.TB) string { tok := good(t); return tok[:len(tok)-10] + "\n" + tok[len(tok)-10:] }},
		{"CRLF at end", func(t testing.TB) string { return good(t) + "\r\n" }},
		{"padded signature", func(t testing.TB) string {
			h, p, s := segments(t, good(t))
			return h + "." + p + "." + s + "=="
		}},
		{"standard base64", func(t testing.TB) string {
			for i := 0; ; i++ { // find a token whose signature has a - or _
				tok := forge(t, jwt.SigningMethodEdDSA, key, nil, with("jti", fmt.Sprint(i)))
				if strings.ContainsAny(tok, "-_") {
					return strings.NewReplacer("-", "+", "_", "/").Replace(tok)
				}
			}
		}},
		{"space", func(t testing.TB) string { return " " + good(t) }},
		{"wrong issuer", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("iss", "other")) }},
		{"issuer case", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("iss", "Mortar")) }},
		{"no issuer", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("iss", nil)) }},
		{"issuer a number", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("iss", 7)) }},
		{"audience", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("aud", "mortar")) }},
		{"audience list", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, nil, with("aud", []string{"a", "b"}))
		}},
		{"no subject", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("sub", nil)) }},
		{"no expiry", func(t testing.TB) string { return forge(t, jwt.SigningMethodEdDSA, key, nil, with("exp", nil)) }},
		{"expiry an object", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, nil, with("exp", map[string]int64{"s": t0.Add(time.Hour).Unix()}))
		}},
		{"expiry null", func(t testing.TB) string {
			h, _, _ := segments(t, good(t))
			p := seg64(`{"iss":"mortar","sub":"alice","exp":null}`)
			return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(key.Private, []byte(h+"."+p)))
		}},
		{"not before, beyond leeway", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, nil, with("nbf", t0.Add(auth.LeewayDefault+time.Second).Unix()))
		}},
		{"issued in the future, beyond leeway", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, key, nil, with("iat", t0.Add(auth.LeewayDefault+time.Second).Unix()))
		}},
		{"expired and wrong issuer", func(t testing.TB) string {
			c := with("iss", "other")
			c["exp"] = t0.Add(-time.Hour).Unix()
			return forge(t, jwt.SigningMethodEdDSA, key, nil, c)
		}},
		{"expired with a bad signature", func(t testing.TB) string {
			tok := forge(t, jwt.SigningMethodEdDSA, key, nil, with("exp", t0.Add(-time.Hour).Unix()))
			return tok[:len(tok)-3] + "AAA"
		}},
		{"expired by a stranger", func(t testing.TB) string {
			return forge(t, jwt.SigningMethodEdDSA, stranger, nil, with("exp", t0.Add(-time.Hour).Unix()))
		}},
	}
	kr := newKeyring(newClock(t0), key)
	if _, err := kr.Verify(good(t)); err != nil {
		t.Fatalf("Verify(good token): %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := tt.token(t)
			c, err := kr.Verify(tok)
			if !errors.Is(err, auth.ErrBadToken) || errors.Is(err, auth.ErrTokenExpired) {
				t.Errorf("Verify(%.200q) = %+v, %v; want ErrBadToken", tok, c, err)
			}
			if c != (auth.Claims{}) {
				t.Errorf("Verify(%.200q) returned claims %+v with its error", tok, c)
			}
		})
	}
}

// TestVerifyLeewayOnTimes checks tokens issued, or valid from, just
// within the leeway in the future.
func TestVerifyLeewayOnTimes(t *testing.T) {
	t.Parallel()
	key := testKey(1, t0)
	kr := newKeyring(newClock(t0), key)
	for _, name := range []string{"iat", "nbf"} {
		c := validPayload()
		c[name] = t0.Add(auth.LeewayDefault).Unix()
		if _, err := kr.Verify(forge(t, jwt.SigningMethodEdDSA, key, nil, c)); err != nil {
			t.Errorf("Verify(%s = now+leeway) = %v, want ok", name, err)
		}
	}
	// A token of another issuer's own keyring.
	other := auth.NewKeyring(&auth.KeyringConfig{Issuer: "other", Now: newClock(t0).Now})
	other.SetKeys([]auth.SigningKey{key})
	tok := issue(t, other, aliceFor(time.Hour))
	if c, err := other.Verify(tok); err != nil || c.Issuer != "other" {
		t.Errorf("other.Verify(own token) = %+v, %v", c, err)
	}
	if _, err := kr.Verify(tok); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("Verify(other issuer's token) = %v, want ErrBadToken", err)
	}
}

// addOrder returns the Ed25519 signature sig with the group order L
// added to its scalar S, which a lax verifier accepts as the same
// signature.
func addOrder(sig []byte) []byte {
	// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	out := bytes.Clone(sig)
	carry := 0
	for i := range 32 {
		v := int(out[32+i]) + int(l[i]) + carry
		out[32+i], carry = byte(v), v>>8
	}
	return out
}

func kidOf(t testing.TB, tok string) string {
	t.Helper()
	h, _, _ := segments(t, tok)
	var header struct{ Kid string }
	decodeSegment(t, h, &header)
	return header.Kid
}

// TestKeyRotation walks a key through its life: it signs, is superseded
// by a newer key and only verifies, then retires and verifies nothing;
// and a key dropped from the set verifies nothing at once. Each check is
// made with Verify and with VerifyCached on a cache that has seen the
// token.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	k1 := testKey(1, t0)
	kr := newKeyring(clock, k1)
	cache := auth.NewTokenCache(0)
	verify := func(step, tok string, want error) {
		t.Helper()
		for _, v := range []struct {
			name string
			f    func(string) (auth.Claims, error)
		}{
			{"Verify", kr.Verify},
			{"VerifyCached", func(tok string) (auth.Claims, error) { return kr.VerifyCached(cache, tok) }},
		} {
			c, err := v.f(tok)
			switch {
			case want == nil && (err != nil || c.Subject != "alice"):
				t.Errorf("%s: %s(token of %s) = %+v, %v; want alice", step, v.name, kidOf(t, tok), c, err)
			case want != nil && !errors.Is(err, want):
				t.Errorf("%s: %s(token of %s) = %+v, %v; want %v", step, v.name, kidOf(t, tok), c, err, want)
			}
		}
	}
	claims := auth.Claims{Subject: "alice", ExpiresAt: t0.Add(48 * time.Hour)}

	tok1 := issue(t, kr, claims)
	if kid := kidOf(t, tok1); kid != k1.ID {
		t.Fatalf("first token signed by %q, want %q", kid, k1.ID)
	}
	verify("one key", tok1, nil)

	// A new key is created an hour later; the old one retires a day after.
	clock.Advance(time.Hour)
	k2 := testKey(2, clock.Now())
	k1.Retires = clock.Now().Add(24 * time.Hour)
	kr.SetKeys([]auth.SigningKey{k1, k2})
	tok2 := issue(t, kr, claims)
	if kid := kidOf(t, tok2); kid != k2.ID {
		t.Fatalf("token after rotation signed by %q, want %q", kid, k2.ID)
	}
	verify("rotated", tok1, nil)
	verify("rotated", tok2, nil)

	clock.Set(k1.Retires.Add(-time.Nanosecond))
	verify("just before retirement", tok1, nil)
	clock.Set(k1.Retires)
	verify("at retirement", tok1, auth.ErrBadToken)
	verify("at retirement", tok2, nil)
	if n := len(kr.Keys()); n != 2 {
		t.Errorf("Keys() has %d keys, want both, retired or not", n)
	}

	// Un-retire k1 in the set, then drop it: its tokens stop verifying at
	// once, though the cache has just seen them.
	k1.Retires = time.Time{}
	kr.SetKeys([]auth.SigningKey{k1, k2})
	verify("un-retired", tok1, nil)
	kr.SetKeys([]auth.SigningKey{k2})
	verify("dropped", tok1, auth.ErrBadToken)
	verify("dropped", tok2, nil)

	// Setting the same keys again keeps the cache's entries.
	kr.SetKeys([]auth.SigningKey{k2})
	if _, ok := cache.Get(tok2, clock.Now()); !ok {
		t.Errorf("SetKeys with the same key dropped its cached token")
	}
	k2.Retires = clock.Now().Add(time.Hour)
	kr.SetKeys([]auth.SigningKey{k2})
	if _, ok := cache.Get(tok2, clock.Now()); ok {
		t.Errorf("SetKeys that changed the key kept its cached token")
	}
	verify("retiring later", tok2, nil)
	clock.Set(k2.Retires)
	verify("retired", tok2, auth.ErrBadToken)
	if _, err := kr.Issue(claims); !errors.Is(err, auth.ErrNoSigningKey) {
		t.Errorf("Issue with every key retired = %v, want ErrNoSigningKey", err)
	}
}

// TestKeyPublishedAhead checks that a key created in the future verifies
// before it signs.
func TestKeyPublishedAhead(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	k1, k2 := testKey(1, t0), testKey(2, t0.Add(time.Minute))
	// Node a has both keys; node b has only the new one's public half,
	// from a's JWKS say.
	a := newKeyring(clock, k1, k2)
	b := newKeyring(clock, verifyOnly(k2))
	if kid := kidOf(t, issue(t, a, aliceFor(time.Hour))); kid != k1.ID {
		t.Errorf("before k2 is due, signed by %q, want %q", kid, k1.ID)
	}
	clock.Set(k2.Created)
	tok := issue(t, a, aliceFor(time.Hour))
	if kid := kidOf(t, tok); kid != k2.ID {
		t.Errorf("once k2 is due, signed by %q, want %q", kid, k2.ID)
	}
	if _, err := b.Verify(tok); err != nil {
		t.Errorf("Verify with a verify-only key: %v", err)
	}
	if _, err := b.Issue(aliceFor(time.Hour)); !errors.Is(err, auth.ErrNoSigningKey) {
		t.Errorf("Issue with a verify-only key = %v, want ErrNoSigningKey", err)
	}
}

func TestSetKeys(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := testKey(1, t0.Add(time.Hour)), testKey(2, t0), testKey(3, t0.Add(2*time.Hour))
	bad := testKey(4, t0)
	bad.Public = k1.Public
	dup := testKey(5, t0.Add(3*time.Hour))
	dup.ID = k2.ID
	kr := newKeyring(newClock(t0), k1, k2, bad, k3, auth.SigningKey{}, dup)
	got := kr.Keys()
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	// k2 was replaced by dup, which is the newest.
	if want := "key1 key3 key2"; strings.Join(ids, " ") != want {
		t.Fatalf("Keys() = %v, want %s", ids, want)
	}
	if !sameKey(got[2], dup) {
		t.Errorf("of two keys with one ID, Keys() has %+v, want the last", got[2])
	}
	// Neither the keys given nor those returned are shared.
	got[0].Public[0] ^= 0xff
	k1.Private[0] ^= 0xff
	if again := kr.Keys(); !sameKey(again[0], testKey(1, t0.Add(time.Hour))) {
		t.Errorf("Keys() changed with the slices given to or returned from the keyring")
	}
	kr.SetKeys(nil)
	if n := len(kr.Keys()); n != 0 {
		t.Errorf("after SetKeys(nil), Keys() has %d keys", n)
	}
}

func TestNewKeyringDoesNotModifyConfig(t *testing.T) {
	t.Parallel()
	cfg := auth.KeyringConfig{}
	kr := auth.NewKeyring(&cfg)
	if cfg.Issuer != "" || cfg.Leeway != 0 || cfg.Now != nil {
		t.Errorf("NewKeyring modified its config: %+v", cfg)
	}
	key, err := auth.GenerateSigningKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kr.SetKeys([]auth.SigningKey{key})
	// The system clock, by default.
	if _, err := kr.Verify(issue(t, kr, auth.Claims{Subject: "alice", ExpiresAt: time.Now().Add(time.Minute)})); err != nil {
		t.Errorf("Verify with defaults: %v", err)
	}
	if _, err := auth.NewKeyring(nil).Issue(aliceFor(time.Hour)); !errors.Is(err, auth.ErrNoSigningKey) {
		t.Errorf("NewKeyring(nil).Issue = %v, want ErrNoSigningKey", err)
	}
}

// jwksKey is a key of a JWKS as RFC 8037 defines it.
type jwksKey struct{ Kty, Crv, X, Kid, Use, Alg string }

func TestJWKS(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	old, cur, next := testKey(1, t0.Add(-time.Hour)), testKey(2, t0), testKey(3, t0.Add(time.Hour))
	retired := testKey(4, t0.Add(-2*time.Hour))
	retired.Retires = t0
	kr := newKeyring(clock, next, verifyOnly(old), retired, cur)
	tok := issue(t, kr, aliceFor(time.Hour))

	var set struct{ Keys []jwksKey }
	if err := json.Unmarshal(kr.JWKS(), &set); err != nil {
		t.Fatalf("JWKS() = %s: %v", kr.JWKS(), err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Use != "sig" || k.Alg != "EdDSA" {
			t.Errorf("JWKS key %+v, want an Ed25519 signing key for EdDSA", k)
		}
	}
	if want := "key1 key2 key3"; strings.Join(kids, " ") != want {
		t.Errorf("JWKS kids = %v, want %s (by creation, none retired)", kids, want)
	}

	// Decode the key the token names, and check its signature with it.
	kid := kidOf(t, tok)
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("JWKS x %q decodes to %d bytes, %v", k.X, len(x), err)
		}
		h, p, s := segments(t, tok)
		sig, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(ed25519.PublicKey(x), []byte(h+"."+p), sig) {
			t.Errorf("the JWKS key %s does not verify its token", kid)
		}
		// And a keyring made from the JWKS alone verifies it.
		vk := auth.SigningKey{ID: k.Kid, Public: x, Created: t0}
		if _, err := newKeyring(clock, vk).Verify(tok); err != nil {
			t.Errorf("Verify with the JWKS key: %v", err)
		}
		return
	}
	t.Errorf("JWKS has no key %q", kid)
}

func TestJWKSEmpty(t *testing.T) {
	t.Parallel()
	if got := string(auth.NewKeyring(nil).JWKS()); got != `{"keys":[]}` {
		t.Errorf("JWKS() of no keys = %s", got)
	}
	k := testKey(1, t0)
	want := `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + base64.RawURLEncoding.EncodeToString(k.Public) +
		`","kid":"key1","use":"sig","alg":"EdDSA"}]}`
	if got := string(newKeyring(newClock(t0), k).JWKS()); got != want {
		t.Errorf("JWKS() = %s\nwant %s", got, want)
	}
}

func TestTokenCache(t *testing.T) {
	t.Parallel()
	cl := auth.Claims{Subject: "alice", ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name string
		run  func(c *auth.TokenCache) (ok bool, want bool)
	}{
		{"miss", func(c *auth.TokenCache) (bool, bool) { _, ok := c.Get("a", t0); return ok, false }},
		{"hit", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			got, ok := c.Get("a", t0)
			return ok && got == cl, true
		}},
		{"just before expiry", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			_, ok := c.Get("a", cl.ExpiresAt.Add(-time.Nanosecond))
			return ok, true
		}},
		{"at expiry", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			_, ok := c.Get("a", cl.ExpiresAt)
			return ok, false
		}},
		{"no expiry", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", auth.Claims{Subject: "alice"})
			_, ok := c.Get("a", t0)
			return ok, false
		}},
		{"replaced", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			bob := auth.Claims{Subject: "bob", ExpiresAt: t0.Add(time.Minute)}
			c.Put("a", bob)
			got, ok := c.Get("a", t0)
			return ok && got == bob, true
		}},
		{"other token", func(c *auth.TokenCache) (bool, bool) { c.Put("a", cl); _, ok := c.Get("b", t0); return ok, false }},
		{"forgotten", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			c.Forget("a")
			_, ok := c.Get("a", t0)
			return ok, false
		}},
		{"other forgotten", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			c.Forget("b")
			_, ok := c.Get("a", t0)
			return ok, true
		}},
		{"purged", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			c.Purge()
			_, ok := c.Get("a", t0)
			return ok, false
		}},
		{"put after purge", func(c *auth.TokenCache) (bool, bool) {
			c.Put("a", cl)
			c.Purge()
			c.Put("a", cl)
			_, ok := c.Get("a", t0)
			return ok, true
		}},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1} {
			t.Run(fmt.Sprintf("%s/size %d", tt.name, size), func(t *testing.T) {
				t.Parallel()
				if got, want := tt.run(auth.NewTokenCache(size)); got != want {
					t.Errorf("hit = %v, want %v", got, want)
				}
			})
		}
	}
}

// TestTokenCacheBound puts more tokens than fit and counts what stays.
func TestTokenCacheBound(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 10, 100, 1000, 5000, auth.TokenCacheSizeDefault} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			c := auth.NewTokenCache(size)
			n := 3 * size
			for i := range n {
				c.Put(fmt.Sprint("token", i), auth.Claims{Subject: "alice", ExpiresAt: t0.Add(time.Duration(i+1) * time.Second)})
			}
			hits := 0
			for i := range n {
				if _, ok := c.Get(fmt.Sprint("token", i), t0); ok {
					hits++
				}
			}
			if _, ok := c.Get(fmt.Sprint("token", n-1), t0); !ok {
				t.Errorf("the last token put is not in the cache")
			}
			if hits > size || hits < size/2 {
				t.Errorf("after %d puts, %d tokens in a cache of %d", n, hits, size)
			}
		})
	}
}

// TestTokenCacheEviction checks that a full cache evicts the entry that
// dies first, when it is small enough that Put looks at every entry.
func TestTokenCacheEviction(t *testing.T) {
	t.Parallel()
	for _, dies := range []int{0, 1, 2, 3} {
		t.Run(fmt.Sprint(dies), func(t *testing.T) {
			t.Parallel()
			c := auth.NewTokenCache(4)
			for i := range 4 {
				exp := t0.Add(time.Duration(10+i) * time.Hour)
				if i == dies {
					exp = t0.Add(time.Hour)
				}
				c.Put(fmt.Sprint(i), auth.Claims{Subject: "alice", ExpiresAt: exp})
			}
			c.Put("new", auth.Claims{Subject: "alice", ExpiresAt: t0.Add(100 * time.Hour)})
			for i := range 4 {
				if _, ok := c.Get(fmt.Sprint(i), t0); ok == (i == dies) {
					t.Errorf("token %d in the cache: %v, want %v", i, ok, i != dies)
				}
			}
		})
	}
}

func TestVerifyCached(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	kr := newKeyring(clock, testKey(1, t0))
	c := auth.NewTokenCache(10)
	tok := issue(t, kr, aliceFor(time.Hour))
	want := issued(aliceFor(time.Hour), t0)

	for _, cache := range []*auth.TokenCache{nil, c, c} {
		if got, err := kr.VerifyCached(cache, tok); err != nil || got != want {
			t.Errorf("VerifyCached(%p) = %+v, %v; want %+v", cache, got, err, want)
		}
	}
	if got, ok := c.Get(tok, t0); !ok || got != want {
		t.Errorf("after VerifyCached, Get = %+v, %v; want %+v", got, ok, want)
	}
	// A hit is believed: the cache is what VerifyCached trusts.
	c.Put("trusted", want)
	if got, err := kr.VerifyCached(c, "trusted"); err != nil || got != want {
		t.Errorf("VerifyCached(put token) = %+v, %v; want a hit", got, err)
	}
	// Expiry ends a cached entry, without leeway, and Verify then reports
	// it expired.
	clock.Set(want.ExpiresAt)
	if _, ok := c.Get(tok, clock.Now()); ok {
		t.Errorf("Get at expiry hit")
	}
	if _, err := kr.VerifyCached(c, tok); err != nil {
		t.Errorf("VerifyCached at expiry, in the leeway: %v", err)
	}
	clock.Advance(auth.LeewayDefault)
	if _, err := kr.VerifyCached(c, tok); !errors.Is(err, auth.ErrTokenExpired) {
		t.Errorf("VerifyCached after expiry and leeway = %v, want ErrTokenExpired", err)
	}
	// Failures are not cached.
	if _, err := kr.VerifyCached(c, "junk"); !errors.Is(err, auth.ErrBadToken) {
		t.Errorf("VerifyCached(junk) = %v, want ErrBadToken", err)
	}
	if _, ok := c.Get("junk", t0); ok {
		t.Errorf("VerifyCached cached a refused token")
	}
}

// TestTokenCacheConcurrent runs VerifyCached, Put, Forget, Purge and
// SetKeys at once, for the race detector; each VerifyCached must return
// the token's claims or, while its key is out of the set, ErrBadToken.
func TestTokenCacheConcurrent(t *testing.T) {
	t.Parallel()
	clock := newClock(t0)
	k1, k2 := testKey(1, t0), testKey(2, t0.Add(-time.Hour))
	kr := newKeyring(clock, k1, k2)
	c := auth.NewTokenCache(8)
	var toks []string
	for i := range 16 {
		toks = append(toks, issue(t, kr, auth.Claims{Subject: fmt.Sprint("user", i), ExpiresAt: t0.Add(time.Hour)}))
	}
	const rounds = 500
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range rounds {
				j := (g + i) % len(toks)
				got, err := kr.VerifyCached(c, toks[j])
				if err != nil && !errors.Is(err, auth.ErrBadToken) || err == nil && got.Subject != fmt.Sprint("user", j) {
					t.Errorf("VerifyCached(token %d) = %+v, %v", j, got, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range rounds {
			switch i % 4 {
			case 0:
				c.Forget(toks[i%len(toks)])
			case 1:
				c.Purge()
			case 2:
				c.Put(fmt.Sprint("other", i), auth.Claims{Subject: "x", ExpiresAt: t0.Add(time.Minute)})
			case 3:
				c.Get(toks[i%len(toks)], clock.Now())
			}
		}
	})
	wg.Go(func() {
		for i := range rounds / 10 {
			if i%2 == 0 {
				kr.SetKeys([]auth.SigningKey{k2})
			} else {
				kr.SetKeys([]auth.SigningKey{k1, k2})
			}
			kr.JWKS()
			kr.Keys()
			if _, err := kr.Issue(aliceFor(time.Hour)); err != nil {
				t.Errorf("Issue: %v", err)
			}
		}
	})
	wg.Wait()
}

// benchToken returns a keyring and a token of a typical size.
func benchToken(b *testing.B) (*auth.Keyring, string) {
	kr := auth.NewKeyring(nil)
	key, err := auth.GenerateSigningKey(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	kr.SetKeys([]auth.SigningKey{key})
	tok, err := kr.Issue(auth.Claims{Subject: "alice@example.com", SessionID: "2b7c1d4e9f0a", Kind: "session", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	return kr, tok
}

func BenchmarkIssueToken(b *testing.B) {
	kr, _ := benchToken(b)
	c := auth.Claims{Subject: "alice@example.com", SessionID: "2b7c1d4e9f0a", Kind: "session", ExpiresAt: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	kr, tok := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tok)), "token-bytes")
}

func BenchmarkVerifyTokenCached(b *testing.B) {
	kr, tok := benchToken(b)
	c := auth.NewTokenCache(0)
	// A full cache, as a busy node's is.
	for i := range auth.TokenCacheSizeDefault - 1 {
		c.Put(fmt.Sprint(tok, i), auth.Claims{Subject: "x", ExpiresAt: time.Now().Add(time.Hour)})
	}
	if _, err := kr.VerifyCached(c, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := kr.VerifyCached(c, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := kr.VerifyCached(c, tok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
