package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/mortarhq/mortar/auth"
)

// A node makes a signing key and stores it; every node loads the stored
// keys into its Keyring. A login issues a token, and each request verifies
// it through a cache. To rotate, a new key joins the set and the old one
// is set to retire: tokens it signed verify until then, and stop at once
// if it leaves the set.
func ExampleKeyring() {
	key, err := auth.GenerateSigningKey(time.Now())
	if err != nil {
		panic(err)
	}
	stored, err := auth.MarshalSigningKey(key) // put it in the keys bucket
	if err != nil {
		panic(err)
	}
	loaded, err := auth.UnmarshalSigningKey(stored) // from a watch of the bucket
	if err != nil {
		panic(err)
	}
	kr := auth.NewKeyring(nil)
	kr.SetKeys([]auth.SigningKey{loaded})

	token, err := kr.Issue(auth.Claims{
		Subject:   "alice",
		SessionID: "s-42",
		Kind:      "session",
		ExpiresAt: time.Now().Add(15 * time.Minute),
	})
	if err != nil {
		panic(err)
	}

	cache := auth.NewTokenCache(0)
	c, err := kr.VerifyCached(cache, token) // the first time checks the signature
	if err != nil {
		panic(err) // a request with a bad token: answer 401
	}
	fmt.Println(c.Subject, c.SessionID, c.Kind, c.Issuer)

	next, err := auth.GenerateSigningKey(time.Now())
	if err != nil {
		panic(err)
	}
	loaded.Retires = time.Now().Add(time.Hour)
	kr.SetKeys([]auth.SigningKey{loaded, next})
	_, err = kr.VerifyCached(cache, token)
	fmt.Println(err)

	kr.SetKeys([]auth.SigningKey{next})
	_, err = kr.VerifyCached(cache, token)
	fmt.Println(errors.Is(err, auth.ErrBadToken))
	// Output:
	// alice s-42 session mortar
	// <nil>
	// true
}
