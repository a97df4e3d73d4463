package auth_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/mortarhq/mortar/auth"
	"github.com/pquerna/otp/totp"
)

// Enrolment makes a key, stores its secret with the account and shows its
// URL as a QR code; each login then checks the code the user's app shows,
// which works once.
func ExampleTOTPVerifier_Verify() {
	key, err := auth.NewTOTP("Mortar", "alice@example.com")
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.HasPrefix(key.URL, "otpauth://totp/Mortar:alice@example.com?"))

	v, err := auth.NewTOTPVerifier(nil) // one step either side
	if err != nil {
		panic(err)
	}
	now := time.Now()
	code, _ := totp.GenerateCode(key.Secret, now) // what the app shows
	for range 2 {
		ok, err := v.Verify("alice@example.com", key.Secret, code, now)
		if err != nil {
			panic(err) // a malformed stored secret: log it, refuse the login
		}
		fmt.Println(ok)
	}
	// Output:
	// true
	// true
	// false
}
