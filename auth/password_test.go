package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/auth"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// small are parameters cheap enough for most tests (64 KiB, one pass).
var small = auth.Argon2Params{Memory: 64, Time: 1}

func newHasher(t testing.TB, cfg *auth.HasherConfig) *auth.Hasher {
	t.Helper()
	h, err := auth.NewHasher(cfg)
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

func smallHasher(t testing.TB) *auth.Hasher {
	return newHasher(t, &auth.HasherConfig{Params: small})
}

func TestNewHasherDefaults(t *testing.T) {
	t.Parallel()
	want := auth.Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
	if got := newHasher(t, nil).Params(); got != want {
		t.Errorf("NewHasher(nil).Params() = %+v, want %+v", got, want)
	}
	cfg := &auth.HasherConfig{Params: auth.Argon2Params{Time: 3, KeyLen: 64}}
	want.Time, want.KeyLen = 3, 64
	if got := newHasher(t, cfg).Params(); got != want {
		t.Errorf("NewHasher(t=3, key 64).Params() = %+v, want %+v", got, want)
	}
	if cfg.Params != (auth.Argon2Params{Time: 3, KeyLen: 64}) || cfg.Concurrency != 0 {
		t.Errorf("NewHasher modified its config: %+v", *cfg)
	}
}

func TestNewHasherBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    auth.HasherConfig
		wantOK bool
	}{
		{"min memory", auth.HasherConfig{Params: auth.Argon2Params{Memory: 8}}, true},
		{"min memory 4 threads", auth.HasherConfig{Params: auth.Argon2Params{Memory: 32, Threads: 4}}, true},
		{"max memory", auth.HasherConfig{Params: auth.Argon2Params{Memory: auth.MaxArgon2Memory}}, true},
		{"max time threads salt key", auth.HasherConfig{Params: auth.Argon2Params{Time: 10, Threads: 16, SaltLen: 64, KeyLen: 64}}, true},
		{"min salt key", auth.HasherConfig{Params: auth.Argon2Params{SaltLen: 16, KeyLen: 16}}, true},
		{"concurrency 1", auth.HasherConfig{Concurrency: 1}, true},
		{"memory below 8 KiB", auth.HasherConfig{Params: auth.Argon2Params{Memory: 7}}, false},
		{"memory below 8 KiB per thread", auth.HasherConfig{Params: auth.Argon2Params{Memory: 31, Threads: 4}}, false},
		{"memory above 1 GiB", auth.HasherConfig{Params: auth.Argon2Params{Memory: auth.MaxArgon2Memory + 1}}, false},
		{"time 11", auth.HasherConfig{Params: auth.Argon2Params{Time: 11}}, false},
		{"threads 17", auth.HasherConfig{Params: auth.Argon2Params{Threads: 17}}, false},
		{"salt 15", auth.HasherConfig{Params: auth.Argon2Params{SaltLen: 15}}, false},
		{"salt 8, verify-only", auth.HasherConfig{Params: auth.Argon2Params{SaltLen: 8}}, false},
		{"salt 65", auth.HasherConfig{Params: auth.Argon2Params{SaltLen: 65}}, false},
		{"key 15", auth.HasherConfig{Params: auth.Argon2Params{KeyLen: 15}}, false},
		{"key 65", auth.HasherConfig{Params: auth.Argon2Params{KeyLen: 65}}, false},
		{"negative concurrency", auth.HasherConfig{Concurrency: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewHasher(&tt.cfg)
			if (err == nil) != tt.wantOK {
				t.Errorf("NewHasher(%+v) error = %v, want ok %v", tt.cfg, err, tt.wantOK)
			}
		})
	}
}

// argon2idVectors are known answers from the argon2 reference
// implementation (github.com/P-H-C/phc-winner-argon2): its CLI, and the
// argon2id cases of src/test.c. They have no secret or associated data,
// so golang.org/x/crypto/argon2.IDKey can compute them; RFC 9106's
// argon2id vector needs both, which IDKey does not take (x/crypto checks
// it in its own tests through an unexported function).
var argon2idVectors = []struct {
	name           string
	password, salt string
	params         auth.Argon2Params
	hex            string // raw hash; empty when only the encoded form was recorded
	encoded        string
}{
	{
		// echo -n 'correct horse battery staple' | argon2 'mortar-kat-salt!' -id -t 2 -k 19456 -p 1 -l 32
		name: "cli OWASP defaults", password: "correct horse battery staple", salt: "mortar-kat-salt!",
		params:  auth.Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
		hex:     "d8f03ea803a879ac36a938399fa3e79303981ac7bdaa900bed4cfe0dc72ec3c7",
		encoded: "$argon2id$v=19$m=19456,t=2,p=1$bW9ydGFyLWthdC1zYWx0IQ$2PA+qAOoeaw2qTg5n6PnkwOYGse9qpAL7Uz+Dccuw8c",
	},
	{
		name: "test.c m=256 p=1", password: "password", salt: "somesalt",
		params:  auth.Argon2Params{Memory: 256, Time: 2, Threads: 1, SaltLen: 8, KeyLen: 32},
		hex:     "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
		encoded: "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
	},
	{
		name: "test.c m=256 p=2", password: "password", salt: "somesalt",
		params:  auth.Argon2Params{Memory: 256, Time: 2, Threads: 2, SaltLen: 8, KeyLen: 32},
		hex:     "6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037",
		encoded: "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc",
	},
	{
		// echo -n 'pässwörd €' | argon2 saltsaltsaltsalt -id -t 3 -k 64 -p 4 -l 16 -e
		name: "cli utf-8 p=4 key 16", password: "pässwörd €", salt: "saltsaltsaltsalt",
		params:  auth.Argon2Params{Memory: 64, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 16},
		encoded: "$argon2id$v=19$m=64,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$GZVp72FzsIPMxj6fdeO9Ng",
	},
}

func TestArgon2idKnownAnswers(t *testing.T) {
	t.Parallel()
	defaults := newHasher(t, nil)
	for _, v := range argon2idVectors {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			p := v.params
			key := argon2.IDKey([]byte(v.password), []byte(v.salt), p.Time, p.Memory, p.Threads, p.KeyLen)
			if v.hex != "" {
				if got := hex.EncodeToString(key); got != v.hex {
					t.Errorf("IDKey = %s, want %s", got, v.hex)
				}
			}

			phc, err := auth.ParsePHC(v.encoded)
			if err != nil {
				t.Fatalf("ParsePHC(%q): %v", v.encoded, err)
			}
			if phc.Algorithm != "argon2id" || phc.Version != 19 || phc.Params != p ||
				string(phc.Salt) != v.salt || !bytes.Equal(phc.Hash, key) {
				t.Errorf("ParsePHC(%q) = %+v, want params %+v, salt %q, hash %x", v.encoded, phc, p, v.salt, key)
			}
			if got := phc.String(); got != v.encoded {
				t.Errorf("String() = %q, want %q", got, v.encoded)
			}

			ok, rehash, err := defaults.Verify(t.Context(), v.encoded, v.password)
			wantRehash := p != defaults.Params()
			if !ok || rehash != wantRehash || err != nil {
				t.Errorf("Verify(%q, right) = %v, %v, %v; want true, %v, nil", v.encoded, ok, rehash, err, wantRehash)
			}
		})
	}
}

func TestHashVerify(t *testing.T) {
	t.Parallel()
	h := smallHasher(t)
	ctx := t.Context()
	passwords := []string{
		"x",
		"correct horse battery staple",
		"pässwörd €",
		"nul\x00inside and invalid utf-8 \xff",
		strings.Repeat("a", auth.MaxPasswordLen),
	}
	for _, pw := range passwords {
		enc, err := h.Hash(ctx, pw)
		if err != nil {
			t.Fatalf("Hash(%.20q): %v", pw, err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("Hash(%.20q) = %q, want prefix $argon2id$v=19$m=64,t=1,p=1$", pw, enc)
		}
		phc, err := auth.ParsePHC(enc)
		if err != nil || len(phc.Salt) != 16 || len(phc.Hash) != 32 || phc.String() != enc {
			t.Errorf("ParsePHC(%q) = %+v, %v; want 16-byte salt, 32-byte hash, same String", enc, phc, err)
		}
		if ok, rehash, err := h.Verify(ctx, enc, pw); !ok || rehash || err != nil {
			t.Errorf("Verify(Hash(%.20q), same) = %v, %v, %v; want true, false, nil", pw, ok, rehash, err)
		}
		for _, wrong := range []string{pw + "x", strings.ToUpper(pw), pw[:len(pw)-1], "", strings.Repeat("a", auth.MaxPasswordLen+1)} {
			if wrong == pw {
				continue
			}
			if ok, rehash, err := h.Verify(ctx, enc, wrong); ok || rehash || err != nil {
				t.Errorf("Verify(Hash(%.20q), %.20q) = %v, %v, %v; want false, false, nil", pw, wrong, ok, rehash, err)
			}
		}
	}

	a, _ := h.Hash(ctx, "same")
	b, _ := h.Hash(ctx, "same")
	if a == b {
		t.Errorf("two hashes of one password are equal (%q): the salt is not random", a)
	}
}

func TestHashRejects(t *testing.T) {
	t.Parallel()
	h := smallHasher(t)
	tests := []struct {
		name, password string
		want           error
	}{
		{"empty", "", auth.ErrEmptyPassword},
		{"too long", strings.Repeat("a", auth.MaxPasswordLen+1), auth.ErrPasswordTooLong},
	}
	for _, tt := range tests {
		enc, err := h.Hash(t.Context(), tt.password)
		if !errors.Is(err, tt.want) || enc != "" {
			t.Errorf("Hash(%s) = %q, %v; want \"\", %v", tt.name, enc, err, tt.want)
		}
	}
}

func TestVerifyRehash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	enc, err := smallHasher(t).Hash(ctx, "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params auth.Argon2Params
		want   bool
	}{
		{"same", small, false},
		{"memory raised", auth.Argon2Params{Memory: 128, Time: 1}, true},
		{"time raised", auth.Argon2Params{Memory: 64, Time: 2}, true},
		{"threads raised", auth.Argon2Params{Memory: 64, Time: 1, Threads: 2}, true},
		{"salt longer", auth.Argon2Params{Memory: 64, Time: 1, SaltLen: 32}, true},
		{"key longer", auth.Argon2Params{Memory: 64, Time: 1, KeyLen: 64}, true},
		{"memory lowered", auth.Argon2Params{Memory: 32, Time: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHasher(t, &auth.HasherConfig{Params: tt.params})
			if ok, rehash, err := h.Verify(ctx, enc, "hunter2"); !ok || rehash != tt.want || err != nil {
				t.Errorf("Verify(m=64,t=1,p=1 hash, right) with %+v = %v, %v, %v; want true, %v, nil", h.Params(), ok, rehash, err, tt.want)
			}
			if ok, rehash, err := h.Verify(ctx, enc, "hunter3"); ok || rehash || err != nil {
				t.Errorf("Verify(m=64,t=1,p=1 hash, wrong) with %+v = %v, %v, %v; want false, false, nil", h.Params(), ok, rehash, err)
			}
		})
	}
}

func TestVerifyBcrypt(t *testing.T) {
	t.Parallel()
	h := smallHasher(t)
	ctx := t.Context()

	made, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Known answers from Openwall's crypt_blowfish (wrapper.c), the
	// reference for the $2a$/$2b$/$2y$ variants.
	long := "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"x/crypto cost 4", string(made), "hunter2", true},
		{"x/crypto cost 4 wrong", string(made), "hunter3", false},
		{"2y", "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq", "\xa3", true},
		{"2y wrong", "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq", "\xa4", false},
		{"2a", "$2a$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq", "\xa3", true},
		{"2b", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e", "\xff\xff\xa3", true},
		{"2a U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", true},
		{"2a first 72 bytes only", "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", long, true},
		{"2a first 72 bytes, other tail", "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", long[:72] + "!", true},
		{"2a first 71 bytes", "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui", long[:71], false},
		// An imported hash of the empty password never lets anyone in.
		{"2a empty password", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := h.Verify(ctx, tt.hash, tt.password)
			if ok != tt.want || rehash != tt.want || err != nil {
				t.Errorf("Verify(%q, %.20q) = %v, %v, %v; want %v, %v, nil", tt.hash, tt.password, ok, rehash, err, tt.want, tt.want)
			}
		})
	}
}

// malformedHashes are stored strings Verify must refuse with
// ErrMalformedHash; argon2 ones are refused by ParsePHC too.
var malformedHashes = []struct {
	name, s string
}{
	{"empty", ""},
	{"plaintext", "hunter2"},
	{"argon2i", "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"argon2d", "$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"argon2", "$argon2$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"upper case", "$ARGON2ID$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"scrypt", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"},
	{"no leading $", "argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"missing version", "$argon2id$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"version 16", "$argon2id$v=16$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"version 019", "$argon2id$v=019$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"version name", "$argon2id$V=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"version twice", "$argon2id$v=19$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"trailing $", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4$"},
	{"no hash", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ"},
	{"empty hash", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$"},
	{"empty salt", "$argon2id$v=19$m=256,t=2,p=1$$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"duplicate m", "$argon2id$v=19$m=256,m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"missing p", "$argon2id$v=19$m=256,t=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"empty params", "$argon2id$v=19$$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"out of order", "$argon2id$v=19$t=2,m=256,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"keyid", "$argon2id$v=19$m=256,t=2,p=1,keyid=Hj5+dsK0$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"data", "$argon2id$v=19$m=256,t=2,p=1,data=sRlHhRmKUGzdOmXn01XmXygd5Kc$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"trailing comma", "$argon2id$v=19$m=256,t=2,p=1,$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"space", "$argon2id$v=19$m=256, t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"no value", "$argon2id$v=19$m=,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"no =", "$argon2id$v=19$m256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"leading zero", "$argon2id$v=19$m=0256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"plus sign", "$argon2id$v=19$m=+256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"hex", "$argon2id$v=19$m=0x100,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"m over 32 bits", "$argon2id$v=19$m=4294967296,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"m 4 GiB", "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"m just over 1 GiB", "$argon2id$v=19$m=1048577,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"m 0", "$argon2id$v=19$m=0,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"m below 8 per thread", "$argon2id$v=19$m=15,t=2,p=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"t 0", "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"t 11", "$argon2id$v=19$m=256,t=11,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"p 0", "$argon2id$v=19$m=256,t=2,p=0$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"p 17", "$argon2id$v=19$m=256,t=2,p=17$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"p 257", "$argon2id$v=19$m=4096,t=2,p=257$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"salt 7 bytes", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbA$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"salt 65 bytes", "$argon2id$v=19$m=256,t=2,p=1$" + b64(65) + "$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"hash 15 bytes", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$" + b64(15)},
	{"hash 65 bytes", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$" + b64(65)},
	{"salt padded", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ=$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"hash url alphabet", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR_uIPnA4rEsF5h7TKyQwu9U1bMCHGi_4"},
	{"salt trailing bits", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHR$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"salt line break", "$argon2id$v=19$m=256,t=2,p=1$c29tZX\nNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"},
	{"hash carriage return", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4\r"},
	{"hash 1 mod 4", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4AA"},
	{"too long", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$" + strings.Repeat("A", 300)},
	{"bcrypt 2x", "$2x$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
	{"bcrypt 2", "$2$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3eX"},
	{"bcrypt short", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3"},
	{"bcrypt long", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e."},
	{"bcrypt cost 3", "$2b$03$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
	{"bcrypt cost 17", "$2b$17$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
	{"bcrypt cost 31", "$2b$31$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
	{"bcrypt cost x5", "$2b$x5$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e"},
	{"bcrypt no $ after cost", "$2b$05/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e."},
	{"bcrypt bad character", "$2b$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3+"},
}

// b64 returns n bytes in PHC base64.
func b64(n int) string { return base64.RawStdEncoding.EncodeToString(make([]byte, n)) }

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	h := smallHasher(t)
	for _, tt := range malformedHashes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := h.Verify(t.Context(), tt.s, "password")
			if ok || rehash || !errors.Is(err, auth.ErrMalformedHash) {
				t.Errorf("Verify(%q) = %v, %v, %v; want false, false, ErrMalformedHash", tt.s, ok, rehash, err)
			}
			if strings.HasPrefix(tt.s, "$2") {
				return
			}
			if p, err := auth.ParsePHC(tt.s); !errors.Is(err, auth.ErrMalformedHash) {
				t.Errorf("ParsePHC(%q) = %+v, %v; want ErrMalformedHash", tt.s, p, err)
			}
		})
	}
}

func TestParsePHCBounds(t *testing.T) {
	t.Parallel()
	// The largest string within the bounds parses (nothing is computed).
	s := "$argon2id$v=19$m=1048576,t=10,p=16$" + b64(64) + "$" + b64(64)
	p, err := auth.ParsePHC(s)
	want := auth.Argon2Params{Memory: auth.MaxArgon2Memory, Time: 10, Threads: 16, SaltLen: 64, KeyLen: 64}
	if err != nil || p.Params != want || p.String() != s {
		t.Errorf("ParsePHC(largest) = %+v, %v; want params %+v", p, err, want)
	}
	// So does the smallest.
	s = "$argon2id$v=19$m=8,t=1,p=1$" + b64(8) + "$" + b64(16)
	if p, err := auth.ParsePHC(s); err != nil || p.String() != s {
		t.Errorf("ParsePHC(smallest) = %+v, %v", p, err)
	}
}

func TestMalformedErrorHidesHash(t *testing.T) {
	t.Parallel()
	const secret = "c2VjcmV0c2VjcmV0c2VjcmV0"
	_, err := auth.ParsePHC("$argon2id$v=19$m=256,t=2,p=1$" + secret + "$" + secret + "==")
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("ParsePHC error = %v; want an error that does not quote the salt or hash", err)
	}
}

func TestVerifyContextDone(t *testing.T) {
	t.Parallel()
	h := smallHasher(t)
	enc, err := h.Hash(t.Context(), "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got, err := h.Hash(ctx, "hunter2"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash(canceled ctx) = %q, %v; want context.Canceled", got, err)
	}
	if ok, _, err := h.Verify(ctx, enc, "hunter2"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Verify(canceled ctx) = %v, %v; want false, context.Canceled", ok, err)
	}
	// A malformed string is reported as such whatever ctx says.
	if _, _, err := h.Verify(ctx, "$argon2id$", "hunter2"); !errors.Is(err, auth.ErrMalformedHash) {
		t.Errorf("Verify(canceled ctx, malformed) error = %v, want ErrMalformedHash", err)
	}
}

// TestDummyVerifyTime checks, loosely, that DummyVerify costs what a
// Verify does: the fastest of a few runs of each within a factor of two.
//
// It runs alone (not in parallel) so that other tests disturb it less.
func TestDummyVerifyTime(t *testing.T) {
	h := newHasher(t, &auth.HasherConfig{Params: auth.Argon2Params{Memory: 2048, Time: 1}})
	ctx := t.Context()
	enc, err := h.Hash(ctx, "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	fastest := func(fn func()) time.Duration {
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			fn()
			best = min(best, time.Since(start))
		}
		return best
	}
	for _, pw := range []string{"wrong", "", strings.Repeat("a", auth.MaxPasswordLen+1)} {
		verify := fastest(func() { h.Verify(ctx, enc, pw) })
		dummy := fastest(func() { h.DummyVerify(ctx, pw) })
		t.Logf("fastest of 5 at m=2048,t=1, %d-byte password: Verify %v, DummyVerify %v", len(pw), verify, dummy)
		if pw == "wrong" && (dummy < verify/2 || dummy > verify*2) {
			t.Errorf("DummyVerify took %v, Verify %v; want within a factor of 2", dummy, verify)
		}
	}
}

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, nil)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, nil)
	ctx := b.Context()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, enc, "correct horse battery staple"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
