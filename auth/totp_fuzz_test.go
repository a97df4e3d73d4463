package auth_test

import (
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/auth"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// FuzzTOTPVerify feeds Verify arbitrary secrets, codes and times. It must
// never panic; it must fail with ErrMalformedTOTPSecret exactly when the
// secret is not base32 of a valid length; and it may accept only a code of
// six ASCII digits that the library computes for a step in the window.
func FuzzTOTPVerify(f *testing.F) {
	for _, v := range rfc6238SHA1 {
		f.Add(rfcSecret, v.code[2:], v.unix)
	}
	f.Add(strings.ToLower(rfcSecret), "287082", int64(59))
	f.Add(base32.StdEncoding.EncodeToString(make([]byte, 16)), "000000", int64(0))
	f.Add("JBSWY3DPEHPK3PXP", "123456", int64(1_700_000_000))
	f.Add(rfcSecret+"=", " 12345", int64(-30))
	f.Add("", "", int64(0))
	f.Fuzz(func(t *testing.T, secret, code string, unix int64) {
		now := time.Unix(unix, 0)
		v, err := auth.NewTOTPVerifier(nil)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := v.Verify("alice", secret, code, now)
		key, valid := decodeSecret(secret)
		if wantErr := !valid; (err != nil) != wantErr || err != nil && !errors.Is(err, auth.ErrMalformedTOTPSecret) {
			t.Fatalf("Verify(secret %q) error = %v, want malformed %v", secret, err, wantErr)
		}
		if !ok {
			return
		}
		if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
			t.Fatalf("Verify accepted the code %q", code)
		}
		// The library pads a secret before decoding it, which fails when
		// its last bits are not a whole byte: give it the bytes.
		canon := base32.StdEncoding.EncodeToString(key)
		for d := -1; d <= 1; d++ {
			want, _ := totp.GenerateCodeCustom(canon, now.Add(time.Duration(d)*auth.TOTPPeriod), totp.ValidateOpts{Digits: otp.DigitsSix})
			if want == code {
				return
			}
		}
		t.Fatalf("Verify(secret %q, code %q, T=%d) = true, but the library computes none of the window's codes as %q", secret, code, unix, code)
	})
}

// decodeSecret is the definition of a well-formed secret, written apart
// from the code under test: RFC 4648 base32 in either case (ASCII case:
// strings.ToUpper would turn the dotless ı into I), padded exactly or not
// at all, decoding to 16 to 64 bytes.
func decodeSecret(s string) ([]byte, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz234567="
	if len(s) > 200 || strings.Trim(s, alphabet) != "" {
		return nil, false
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	if strings.HasSuffix(s, "=") {
		enc = base32.StdEncoding
	}
	b, err := enc.DecodeString(strings.ToUpper(s)) // ASCII only by now
	return b, err == nil && len(b) >= 16 && len(b) <= 64
}
