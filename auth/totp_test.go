package auth_test

import (
	"encoding/base32"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar/auth"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfcSecret is RFC 6238 appendix B's SHA-1 seed, the ASCII string
// "12345678901234567890", in base32.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// rfc6238SHA1 are RFC 6238 appendix B's SHA-1 test vectors: 8-digit codes.
var rfc6238SHA1 = []struct {
	unix int64
	code string
}{
	{59, "94287082"},
	{1111111109, "07081804"},
	{1111111111, "14050471"},
	{1234567890, "89005924"},
	{2000000000, "69279037"},
	{20000000000, "65353130"},
}

func newVerifier(t testing.TB, cfg *auth.TOTPConfig) *auth.TOTPVerifier {
	t.Helper()
	v, err := auth.NewTOTPVerifier(cfg)
	if err != nil {
		t.Fatalf("NewTOTPVerifier: %v", err)
	}
	return v
}

// codeAt is the 6-digit code for secret at now, as an authenticator app
// computes it.
func codeAt(t testing.TB, secret string, now time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatalf("GenerateCodeCustom: %v", err)
	}
	return code
}

// TestTOTPRFC6238 checks first that the library computes RFC 6238's
// 8-digit SHA-1 vectors, then that Verify accepts their 6-digit forms
// (the last six digits: truncation keeps the value modulo 10^digits) at
// the vector's time, and refuses them a minute later.
func TestTOTPRFC6238(t *testing.T) {
	t.Parallel()
	for _, tt := range rfc6238SHA1 {
		now := time.Unix(tt.unix, 0)
		got, err := totp.GenerateCodeCustom(rfcSecret, now, totp.ValidateOpts{Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
		if err != nil || got != tt.code {
			t.Errorf("totp.GenerateCodeCustom(T=%d, 8 digits) = %q, %v; want %q", tt.unix, got, err, tt.code)
		}
		six := tt.code[2:]
		if ok, err := newVerifier(t, nil).Verify("alice", rfcSecret, six, now); !ok || err != nil {
			t.Errorf("Verify(%q at T=%d) = %v, %v; want true", six, tt.unix, ok, err)
		}
		later := now.Add(2 * auth.TOTPPeriod)
		if ok, err := newVerifier(t, nil).Verify("alice", rfcSecret, six, later); ok || err != nil {
			t.Errorf("Verify(%q at T=%d+60) = %v, %v; want false", six, tt.unix, ok, err)
		}
	}
}

func TestNewTOTP(t *testing.T) {
	t.Parallel()
	k, err := auth.NewTOTP("Mortar Cloud", "alice@example.com")
	if err != nil {
		t.Fatalf("NewTOTP: %v", err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(k.Secret)
	if err != nil || len(secret) != auth.TOTPSecretLen {
		t.Errorf("NewTOTP secret %q decodes to %d bytes, %v; want %d", k.Secret, len(secret), err, auth.TOTPSecretLen)
	}
	u, err := url.Parse(k.URL)
	if err != nil {
		t.Fatalf("NewTOTP URL %q: %v", k.URL, err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Mortar Cloud:alice@example.com" {
		t.Errorf("NewTOTP URL %q: scheme, host, path = %q, %q, %q", k.URL, u.Scheme, u.Host, u.Path)
	}
	q := u.Query()
	want := map[string]string{"secret": k.Secret, "issuer": "Mortar Cloud", "algorithm": "SHA1", "digits": "6", "period": "30"}
	for name, w := range want {
		if got := q.Get(name); got != w {
			t.Errorf("NewTOTP URL %q: %s = %q, want %q", k.URL, name, got, w)
		}
	}
	key, err := otp.NewKeyFromURL(k.URL)
	if err != nil || key.Secret() != k.Secret || key.Issuer() != "Mortar Cloud" || key.AccountName() != "alice@example.com" {
		t.Errorf("otp.NewKeyFromURL(%q) = %v, %v", k.URL, key, err)
	}

	now := time.Now()
	if ok, err := newVerifier(t, nil).Verify("alice", k.Secret, codeAt(t, k.Secret, now), now); !ok || err != nil {
		t.Errorf("Verify(NewTOTP's key) = %v, %v; want true", ok, err)
	}
	if k2, _ := auth.NewTOTP("Mortar Cloud", "alice@example.com"); k2.Secret == k.Secret {
		t.Errorf("two NewTOTP keys share the secret %q", k.Secret)
	}
}

func TestNewTOTPErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ issuer, account string }{
		{"", "alice"}, {"Mortar", ""}, {"Mor:tar", "alice"}, {"Mortar", "al:ice"},
	} {
		if k, err := auth.NewTOTP(tt.issuer, tt.account); err == nil {
			t.Errorf("NewTOTP(%q, %q) = %+v, want an error", tt.issuer, tt.account, k)
		}
	}
}

func TestNewTOTPVerifierConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg    auth.TOTPConfig
		wantOK bool
	}{
		{auth.TOTPConfig{}, true},
		{auth.TOTPConfig{Skew: auth.MaxTOTPSkew, MaxAccounts: 1}, true},
		{auth.TOTPConfig{Skew: auth.MaxTOTPSkew + 1}, false},
		{auth.TOTPConfig{MaxAccounts: -1}, false},
	}
	for _, tt := range tests {
		cfg := tt.cfg
		if _, err := auth.NewTOTPVerifier(&cfg); (err == nil) != tt.wantOK {
			t.Errorf("NewTOTPVerifier(%+v) error = %v, want ok %v", tt.cfg, err, tt.wantOK)
		}
		if cfg != tt.cfg {
			t.Errorf("NewTOTPVerifier modified its config: %+v", cfg)
		}
	}
}

// TestTOTPSkew presents, to a fresh verifier each time, the code of a step
// near the current one, in the middle of the current step and at its
// edges.
func TestTOTPSkew(t *testing.T) {
	t.Parallel()
	step := time.Unix(1_700_000_010, 0).Truncate(auth.TOTPPeriod) // the start of a step
	for _, skew := range []uint{0, 1, 2} {
		want := max(int(skew), 1) // 0 means the default, 1
		for offset := -want - 1; offset <= want+1; offset++ {
			for _, within := range []time.Duration{0, auth.TOTPPeriod / 2, auth.TOTPPeriod - time.Second} {
				now := step.Add(within)
				code := codeAt(t, rfcSecret, step.Add(time.Duration(offset)*auth.TOTPPeriod))
				v := newVerifier(t, &auth.TOTPConfig{Skew: skew})
				got, err := v.Verify("alice", rfcSecret, code, now)
				if wantOK := offset >= -want && offset <= want; got != wantOK || err != nil {
					t.Errorf("skew %d: Verify(code of step %+d, %v into the step) = %v, %v; want %v",
						skew, offset, within, got, err, wantOK)
				}
			}
		}
	}
}

// TestTOTPReplay checks that a code is accepted once, that codes of the
// steps before an accepted one are spent, and that the next step's code
// and other accounts are unaffected.
func TestTOTPReplay(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_010, 0)
	prev, cur, next := codeAt(t, rfcSecret, now.Add(-auth.TOTPPeriod)), codeAt(t, rfcSecret, now), codeAt(t, rfcSecret, now.Add(auth.TOTPPeriod))
	v := newVerifier(t, nil)
	steps := []struct {
		name    string
		account string
		code    string
		now     time.Time
		want    bool
	}{
		{"current", "alice", cur, now, true},
		{"current again", "alice", cur, now, false},
		{"current again, 10s later", "alice", cur, now.Add(10 * time.Second), false},
		{"previous step, still in the window", "alice", prev, now, false},
		{"current, other account", "bob", cur, now, true},
		{"next step", "alice", next, now.Add(auth.TOTPPeriod), true},
		{"current, once the next was used", "alice", cur, now.Add(auth.TOTPPeriod), false},
		{"next again, a step later", "alice", next, now.Add(2 * auth.TOTPPeriod), false},
	}
	for _, s := range steps {
		if got, err := v.Verify(s.account, rfcSecret, s.code, s.now); got != s.want || err != nil {
			t.Errorf("%s: Verify(%q, %q) = %v, %v; want %v", s.name, s.account, s.code, got, err, s.want)
		}
	}
}

// TestTOTPReplayConcurrent presents one code many times at once: exactly
// one Verify accepts it.
func TestTOTPReplayConcurrent(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_010, 0)
	code := codeAt(t, rfcSecret, now)
	v := newVerifier(t, nil)
	var accepted atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ok, err := v.Verify("alice", rfcSecret, code, now)
			if err != nil {
				t.Errorf("Verify: %v", err)
			}
			if ok {
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n != 1 {
		t.Errorf("16 concurrent Verify calls accepted the same code %d times, want 1", n)
	}
}

func TestTOTPMalformedCode(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_010, 0)
	good := codeAt(t, rfcSecret, now)
	for _, code := range []string{
		"", "12345", "1234567", "12a456", " 123456", "123456 ", "12 456", "+12345", "-12345",
		"１２３４５６", // fullwidth digits
		good[:5], good + "0", " " + good, good + "\n", "0x" + good[:4],
	} {
		if ok, err := newVerifier(t, nil).Verify("alice", rfcSecret, code, now); ok || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want false, nil", code, ok, err)
		}
	}
	// Before 1970 no code is valid, whatever the library would compute.
	past := time.Unix(-1, 0)
	if ok, err := newVerifier(t, nil).Verify("alice", rfcSecret, "000000", past); ok || err != nil {
		t.Errorf("Verify at T=-1 = %v, %v; want false, nil", ok, err)
	}
}

func TestTOTPSecrets(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_010, 0)
	code := codeAt(t, rfcSecret, now)
	b32 := base32.StdEncoding
	tests := []struct {
		name   string
		secret string
		wantOK bool
	}{
		{"canonical", rfcSecret, true},
		{"lower case", strings.ToLower(rfcSecret), true},
		{"mixed case", "gezdGNBVgy3tqojqGEZDGNBVGY3TQOJQ", true},
		{"16 bytes unpadded", b32.WithPadding(base32.NoPadding).EncodeToString(make([]byte, 16)), true},
		{"16 bytes padded", b32.EncodeToString(make([]byte, 16)), true},
		{"64 bytes", b32.EncodeToString(make([]byte, 64)), true},
		{"empty", "", false},
		{"15 bytes", b32.EncodeToString(make([]byte, 15)), false},
		{"10 bytes (80 bits)", "JBSWY3DPEHPK3PXP", false},
		{"65 bytes", b32.EncodeToString(make([]byte, 65)), false},
		{"very long", strings.Repeat("A", 1<<20), false},
		{"space inside", rfcSecret[:16] + " " + rfcSecret[16:], false},
		{"leading space", " " + rfcSecret, false},
		{"newline", rfcSecret + "\n", false},
		{"digit 1", "1" + rfcSecret[1:], false},
		{"digit 8", rfcSecret[:31] + "8", false},
		{"dotless i", "ı" + rfcSecret[2:], false},
		{"base64", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=", false},
		{"padding inside", rfcSecret[:8] + "=" + rfcSecret[8:], false},
		{"short padding", b32.EncodeToString(make([]byte, 16))[:31], false},
		// Generators that pick random base32 characters make lengths
		// whose last bits are not a whole byte; apps drop them, as Go does.
		{"trailing bits", rfcSecret + "A", true},
	}
	for _, tt := range tests {
		ok, err := newVerifier(t, nil).Verify("alice", tt.secret, code, now)
		if tt.wantOK {
			if err != nil {
				t.Errorf("%s: Verify(secret %.40q) error = %v, want nil", tt.name, tt.secret, err)
			}
			continue
		}
		if ok || !errors.Is(err, auth.ErrMalformedTOTPSecret) {
			t.Errorf("%s: Verify(secret %.40q) = %v, %v; want false, ErrMalformedTOTPSecret", tt.name, tt.secret, ok, err)
		}
		if err != nil && len(tt.secret) >= 8 && strings.Contains(err.Error(), tt.secret[:8]) {
			t.Errorf("%s: Verify error %q quotes the secret", tt.name, err)
		}
	}
	// The variants are the same key: the code of the canonical form works.
	if ok, _ := newVerifier(t, nil).Verify("alice", strings.ToLower(rfcSecret), code, now); !ok {
		t.Errorf("Verify(lower-case secret) = false, want true")
	}
	// A malformed secret is an error whatever the code.
	if _, err := newVerifier(t, nil).Verify("alice", "", "12a", now); !errors.Is(err, auth.ErrMalformedTOTPSecret) {
		t.Errorf("Verify(empty secret, malformed code) error = %v, want ErrMalformedTOTPSecret", err)
	}
}

// TestTOTPMaxAccounts checks that past MaxAccounts the account accepted
// longest ago is forgotten, and with it the protection of its last code.
func TestTOTPMaxAccounts(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_010, 0)
	code := codeAt(t, rfcSecret, now)
	v := newVerifier(t, &auth.TOTPConfig{MaxAccounts: 2})
	verify := func(account string, want bool) {
		t.Helper()
		if ok, err := v.Verify(account, rfcSecret, code, now); ok != want || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want %v", account, ok, err, want)
		}
	}
	verify("a", true)
	verify("b", true)
	verify("a", false)
	verify("c", true)  // forgets a, accepted longest ago
	verify("b", false) // still remembered
	verify("c", false)
	verify("a", true) // forgotten, so its code is taken again; forgets b
	verify("c", false)
	verify("b", true)
}
