package auth_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mortarhq/mortar/auth"
	"golang.org/x/crypto/bcrypt"
)

// A login checks the password against the stored hash, spends the same
// time on unknown users, and replaces the stored hash when Verify asks for
// a rehash: here, a bcrypt hash imported from an older system becomes
// argon2id on its owner's first login.
func ExampleHasher_Verify() {
	ctx := context.Background()
	h, err := auth.NewHasher(nil) // OWASP's parameters, one hash per CPU at a time
	if err != nil {
		panic(err)
	}
	alice, _ := h.Hash(ctx, "correct horse battery staple")
	bob, _ := bcrypt.GenerateFromPassword([]byte("Tr0ub4dor&3"), bcrypt.MinCost)
	users := map[string]string{"alice": alice, "bob": string(bob)}

	login := func(name, password string) bool {
		stored, known := users[name]
		if !known {
			h.DummyVerify(ctx, password)
			return false // the same answer, after the same time, as a wrong password
		}
		ok, rehash, err := h.Verify(ctx, stored, password)
		if err != nil {
			return false // a malformed stored hash, or ctx ended: log it
		}
		if rehash {
			if fresh, err := h.Hash(ctx, password); err == nil {
				users[name] = fresh
			}
		}
		return ok
	}

	fmt.Println(login("alice", "correct horse battery staple"))
	fmt.Println(login("alice", "Tr0ub4dor&3"))
	fmt.Println(login("mallory", "correct horse battery staple"))
	fmt.Println(login("bob", "Tr0ub4dor&3"), strings.HasPrefix(users["bob"], "$argon2id$v=19$m=19456,t=2,p=1$"))
	// Output:
	// true
	// false
	// false
	// true true
}
