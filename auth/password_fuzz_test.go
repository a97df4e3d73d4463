package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mortarhq/mortar/auth"
)

// phcSeeds are strings to start fuzzing from: the known answers, a fresh
// Hash, and every malformed case.
func phcSeeds(f *testing.F) []string {
	var seeds []string
	for _, v := range argon2idVectors {
		seeds = append(seeds, v.encoded)
	}
	enc, err := smallHasher(f).Hash(f.Context(), "hunter2")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, enc, "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq")
	for _, m := range malformedHashes {
		seeds = append(seeds, m.s)
	}
	return seeds
}

// FuzzParsePHC checks that ParsePHC never panics, that its errors wrap
// ErrMalformedHash, and that whatever it accepts String gives back exactly
// and parses again to the same value.
func FuzzParsePHC(f *testing.F) {
	for _, s := range phcSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := auth.ParsePHC(s)
		if err != nil {
			if !errors.Is(err, auth.ErrMalformedHash) {
				t.Fatalf("ParsePHC(%q) error %v does not wrap ErrMalformedHash", s, err)
			}
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("ParsePHC(%q).String() = %q", s, got)
		}
		if int(p.Params.SaltLen) != len(p.Salt) || int(p.Params.KeyLen) != len(p.Hash) {
			t.Fatalf("ParsePHC(%q) lengths %+v, salt %d and hash %d bytes", s, p.Params, len(p.Salt), len(p.Hash))
		}
		again, err := auth.ParsePHC(p.String())
		if err != nil || again.String() != s || again.Params != p.Params {
			t.Fatalf("ParsePHC(String()) = %+v, %v; want %+v", again, err, p)
		}
	})
}

// FuzzVerifyMalformed feeds Verify arbitrary stored strings with a
// cancelled ctx, so that nothing is ever hashed: every string must be
// either malformed or well formed and waiting for a slot (argon2id as
// ParsePHC decides, or bcrypt), and nothing may panic.
func FuzzVerifyMalformed(f *testing.F) {
	for _, s := range phcSeeds(f) {
		f.Add(s)
	}
	h := smallHasher(f)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, s string) {
		ok, rehash, err := h.Verify(ctx, s, "password")
		if ok || rehash {
			t.Fatalf("Verify(%q) = %v, %v with a cancelled ctx", s, ok, rehash)
		}
		malformed := errors.Is(err, auth.ErrMalformedHash)
		if !malformed && !errors.Is(err, context.Canceled) {
			t.Fatalf("Verify(%q) error = %v, want ErrMalformedHash or context.Canceled", s, err)
		}
		if strings.HasPrefix(s, "$2") {
			return
		}
		if _, perr := auth.ParsePHC(s); (perr != nil) != malformed {
			t.Fatalf("Verify(%q) error = %v, but ParsePHC error = %v", s, err, perr)
		}
	})
}
