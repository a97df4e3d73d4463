package auth_test

import (
	"fmt"
	"time"

	"github.com/mortarhq/mortar/auth"
)

// A login asks the Throttle first, verifies the credentials only if it
// may, and reports the outcome, a failure for an unknown user included.
// Here, five wrong passwords for alice lock her out for 15 minutes, even
// with the right one; a locked login and a wrong password look the same
// to the client but for the retry hint.
func ExampleThrottle() {
	th, err := auth.NewThrottle(nil) // 5 failures per user, 50 per address, in 15 minutes
	if err != nil {
		panic(err)
	}
	passwords := map[string]string{"alice": "correct horse battery staple"}
	login := func(user, password, addr string, now time.Time) string {
		if wait, ok := th.Check(user, addr, now); !ok {
			return fmt.Sprintf("refused, retry in %v", wait)
		}
		// A real login uses Hasher.Verify, and Hasher.DummyVerify for an
		// unknown user.
		if want, known := passwords[user]; !known || password != want {
			th.Failed(user, addr, now)
			return "wrong user or password"
		}
		th.Succeeded(user, addr, now)
		return "ok"
	}

	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		login("alice", fmt.Sprint("guess", i), "203.0.113.7", now.Add(time.Duration(i)*time.Minute))
	}
	fmt.Println(login("alice", "correct horse battery staple", "198.51.100.2", now.Add(5*time.Minute)))
	fmt.Println(login("mallory", "guess", "203.0.113.7", now.Add(5*time.Minute)))
	fmt.Println(login("alice", "correct horse battery staple", "198.51.100.2", now.Add(15*time.Minute)))
	// Output:
	// refused, retry in 10m0s
	// wrong user or password
	// ok
}
