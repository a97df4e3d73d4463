package auth

import (
	"slices"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TestTOTPForgetsStale checks that a verifier forgets an account once its
// last step is behind the window by more than one step, and not before:
// its memory follows the accounts that verified in the last two minutes,
// not all that ever did.
func TestTOTPForgetsStale(t *testing.T) {
	t.Parallel()
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	v, err := NewTOTPVerifier(nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_010, 0).Truncate(TOTPPeriod)
	for i, account := range []string{"a", "b", "c"} {
		now := start.Add(time.Duration(i) * TOTPPeriod)
		code, err := totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{Digits: otp.DigitsSix})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := v.Verify(account, secret, code, now); !ok || err != nil {
			t.Fatalf("Verify(%q) = %v, %v", account, ok, err)
		}
	}
	// Now at step start+2, window start+1..start+3: a at start is stale
	// but kept, one step of slack.
	if got := len(v.accounts); got != 3 {
		t.Errorf("after 3 accounts in 3 steps, %d remembered, want 3", got)
	}
	tests := []struct {
		steps int // after start
		want  []string
	}{
		{2, []string{"a", "b", "c"}},
		{3, []string{"b", "c"}},
		{4, []string{"c"}},
		{5, nil},
	}
	for _, tt := range tests {
		now := start.Add(time.Duration(tt.steps) * TOTPPeriod)
		// A wrong code does not reach the memory; a fresh code for
		// another account does, and prunes first.
		code, _ := totp.GenerateCodeCustom(secret, now, totp.ValidateOpts{Digits: otp.DigitsSix})
		account := "probe" + string(rune('0'+tt.steps))
		if ok, _ := v.Verify(account, secret, code, now); !ok {
			t.Fatalf("Verify(%q) = false", account)
		}
		for _, a := range tt.want {
			if _, ok := v.accounts[a]; !ok {
				t.Errorf("at step start+%d, %q forgotten, want remembered", tt.steps, a)
			}
		}
		for a := range v.accounts {
			if len(a) == 1 && !slices.Contains(tt.want, a) {
				t.Errorf("at step start+%d, %q remembered, want forgotten", tt.steps, a)
			}
		}
		if len(v.accounts) != v.order.Len() {
			t.Errorf("map has %d accounts, list %d", len(v.accounts), v.order.Len())
		}
	}
}
