package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mortarhq/mortar/auth"
)

// fuzzTokens are a keyring at t0 and tokens made for it, the same in every
// run and every fuzz worker: test keys are fixed, Ed25519 signatures are
// deterministic, and every claim is set.
type fuzzTokens struct {
	kr      *auth.Keyring
	valid   map[string]auth.Claims // tokens kr accepts, with their claims
	expired map[string]bool        // tokens kr would accept but for their expiry
	refused []string               // tokens kr refuses: signed by a retired or unknown key
}

func newFuzzTokens(t testing.TB) *fuzzTokens {
	clock := newClock(t0)
	signer, older, retired := testKey(1, t0.Add(-time.Hour)), testKey(2, t0.Add(-2*time.Hour)), testKey(3, t0.Add(-3*time.Hour))
	retired.Retires = t0
	stranger := testKey(9, t0.Add(-time.Hour))
	ft := &fuzzTokens{
		kr:      newKeyring(clock, signer, older, retired),
		valid:   map[string]auth.Claims{},
		expired: map[string]bool{},
	}
	claims := []auth.Claims{
		{Subject: "alice", SessionID: "s1", Kind: "session", ID: "t1", ExpiresAt: t0.Add(time.Hour)},
		{Subject: "billing", Kind: "service", ID: "t2", ExpiresAt: t0.Add(24 * time.Hour)},
		{Subject: "zoë", ID: "t3", ExpiresAt: t0.Add(time.Second)},
	}
	// Each key signs each claim, from a keyring of its own (so that it is
	// the signer) ten minutes earlier.
	for _, key := range []auth.SigningKey{signer, older, retired, stranger} {
		key.Retires = time.Time{}
		issuerClock := newClock(t0.Add(-10 * time.Minute))
		kr := newKeyring(issuerClock, key)
		for _, c := range claims {
			tok := issue(t, kr, c)
			switch key.ID {
			case retired.ID, stranger.ID:
				ft.refused = append(ft.refused, tok)
			default:
				ft.valid[tok] = issued(c, issuerClock.Now())
			}
		}
		c := claims[0]
		c.ExpiresAt = t0.Add(-auth.LeewayDefault - time.Second)
		if tok := issue(t, kr, c); key.ID == signer.ID || key.ID == older.ID {
			ft.expired[tok] = true
		} else {
			ft.refused = append(ft.refused, tok)
		}
	}
	return ft
}

// FuzzVerifyToken feeds Verify and VerifyCached arbitrary tokens. They
// must never panic, must agree, and must fail only with ErrBadToken or
// ErrTokenExpired and empty claims.
//
// What may be accepted follows from how tokens are checked: every
// segment must be canonical base64url (no padding, no CR or LF, which
// Go's decoder skips, and no non-zero trailing bits, which a lax decoder
// ignores), and Go's ed25519.Verify refuses non-canonical signatures (S
// at or above the group order, a non-canonical R), so a signed message
// has one signature. A forger without the private key can therefore
// make no token that is not byte for byte one the keyring's keys signed:
// Verify must accept exactly the valid seeds, with the claims they were
// issued with, and report expired exactly the expired ones.
func FuzzVerifyToken(f *testing.F) {
	ft := newFuzzTokens(f)
	var signed []string
	for tok := range ft.valid {
		signed = append(signed, tok)
	}
	for tok := range ft.expired {
		signed = append(signed, tok)
	}
	signed = append(signed, ft.refused...)
	signer := testKey(1, t0)
	for _, tok := range signed {
		f.Add(tok)
		h, p, s := segments(f, tok)
		f.Add(tok[:len(tok)-1] + flipLowBits(tok[len(tok)-1]))
		f.Add(tok[:len(tok)/2] + "\n" + tok[len(tok)/2:])
		f.Add(tok[:len(tok)-2])
		f.Add(tok + "=")
		f.Add(h + "." + p + "." + s + "." + s)
		f.Add(seg64(`{"alg":"none","kid":"key1"}`) + "." + p + ".")
		f.Add(seg64(`{"alg":"HS256","kid":"key1"}`) + "." + p + "." + s)
		f.Add(h + "." + p[:len(p)-4] + "." + s)
	}
	f.Add(forge(f, jwt.SigningMethodHS256, []byte(signer.Public), map[string]any{"kid": signer.ID}, validPayload()))
	f.Add(forge(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": signer.ID}, validPayload()))
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, ed25519.SignatureSize))
	for _, s := range []string{
		"", ".", "..", "a.b.c", "...", "e30.e30.", "e30.e30." + sig,
		seg64(`{"alg":"EdDSA","kid":"key1"}`) + "." + seg64(`{"iss":"mortar","sub":"a","exp":1e300}`) + "." + sig,
		seg64(`{"alg":"EdDSA","kid":"key1","crit":["b64"]}`) + "." + seg64(`{}`) + "." + sig,
		seg64(`{"alg":"EdDSA","kid":["key1"]}`) + "." + seg64(`{"exp":-1e300}`) + "." + sig,
		strings.Repeat("A", auth.MaxTokenLen+1),
	} {
		f.Add(s)
	}
	cache := auth.NewTokenCache(16)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ft.kr.Verify(token)
		cc, cerr := ft.kr.VerifyCached(cache, token)
		if c != cc || (err == nil) != (cerr == nil) || errors.Is(err, auth.ErrTokenExpired) != errors.Is(cerr, auth.ErrTokenExpired) {
			t.Fatalf("Verify(%q) = %+v, %v; but VerifyCached = %+v, %v", token, c, err, cc, cerr)
		}
		want, valid := ft.valid[token]
		switch {
		case err == nil && !valid:
			t.Fatalf("Verify(%q) accepted a token no key signed: %+v", token, c)
		case err == nil && c != want:
			t.Fatalf("Verify(%q) = %+v, want %+v as issued", token, c, want)
		case err == nil:
			return
		case valid:
			t.Fatalf("Verify(%q) refused a valid token: %v", token, err)
		case c != (auth.Claims{}):
			t.Fatalf("Verify(%q) returned claims %+v with error %v", token, c, err)
		case errors.Is(err, auth.ErrTokenExpired) != ft.expired[token]:
			t.Fatalf("Verify(%q) = %v; expired token: %v", token, err, ft.expired[token])
		case !errors.Is(err, auth.ErrBadToken) && !errors.Is(err, auth.ErrTokenExpired):
			t.Fatalf("Verify(%q) error %v wraps neither ErrBadToken nor ErrTokenExpired", token, err)
		}
	})
}
