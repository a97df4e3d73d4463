package auth_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
)

// A server keeps a few accounts in a SimpleRealm and logs users in with an
// Authenticator. A wrong password and an unknown user get the same answer.
// Each request then carries its Subject in its context, and a handler
// checks the permission the request needs, with the key it names escaped
// so that it stays one part of the permission.
func ExampleAuthenticator() {
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	realm := auth.NewSimpleRealm("local", nil) // argon2id with OWASP's parameters
	must(realm.AddRole("admin", "config:*"))
	must(realm.AddRole("viewer", "config:read"))
	must(realm.AddUser(ctx, "alice", "correct horse battery staple", "admin"))
	must(realm.AddUser(ctx, "bob", "Tr0ub4dor&3", "viewer"))
	a := &auth.Authenticator{Realms: []auth.Realm{realm}}

	for _, tok := range []auth.UsernamePassword{
		{Username: "bob", Password: "wrong", Addr: "192.0.2.7"},
		{Username: "mallory", Password: "Tr0ub4dor&3", Addr: "192.0.2.7"},
	} {
		_, err := a.Authenticate(ctx, tok)
		fmt.Println(tok.Username+":", mortar.ErrorCode(err), mortar.ErrorMessage(err), errors.Is(err, auth.ErrInvalidCredentials))
	}

	bob, err := a.Authenticate(ctx, auth.UsernamePassword{Username: "bob", Password: "Tr0ub4dor&3"})
	must(err)
	fmt.Println("logged in:", bob.Principal(), bob.Realm(), bob.Roles())

	setConfig := func(ctx context.Context, key string) error {
		s, _ := auth.SubjectFrom(ctx) // nil, which may do nothing, if there is none
		return s.CheckPermission("config:write:" + auth.EscapePart(key))
	}
	err = setConfig(auth.WithSubject(ctx, bob), "db:url")
	fmt.Println(err)
	fmt.Println(errors.Is(err, auth.ErrPermissionDenied), mortar.ErrorCode(err).HTTPStatus())
	// Output:
	// bob: unauthenticated invalid credentials true
	// mallory: unauthenticated invalid credentials true
	// logged in: bob local [viewer]
	// mortar: permission_denied: permission denied: config:write:db%3aurl
	// true 403
}

// A support engineer runs as a customer to see what the customer sees. The
// permission auth:runas:<principal> allows it; audit logs name both.
func ExampleSubject_RunAs() {
	perms := func(ss ...string) []auth.Permission {
		var ps []auth.Permission
		for _, s := range ss {
			ps = append(ps, auth.MustParsePermission(s))
		}
		return ps
	}
	support := auth.NewSubject(auth.SubjectInfo{Principal: "sam", Realm: "ldap", Roles: []string{"support"},
		Permissions: perms("auth:runas:*", "tickets:*")})
	customer := auth.NewSubject(auth.SubjectInfo{Principal: "carol@example.com", Realm: "local",
		Permissions: perms("orders:read:carol@example.com")})

	s, err := support.RunAs(customer)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Principal(), "run by", s.OriginalPrincipal(), s.IsRunAs())
	fmt.Println(s.IsPermitted("orders:read:carol@example.com"), s.IsPermitted("tickets:close"))

	_, err = customer.RunAs(support)
	fmt.Println(err)
	// Output:
	// carol@example.com run by sam true
	// true false
	// mortar: permission_denied: permission denied: auth:runas:sam
}

func ExampleEscapePart() {
	for _, name := range []string{"alice", "team:ops", "*", "a,b", "50%", "naïve user"} {
		fmt.Println("auth:runas:" + auth.EscapePart(name))
	}
	// Output:
	// auth:runas:alice
	// auth:runas:team%3Aops
	// auth:runas:%2A
	// auth:runas:a%2Cb
	// auth:runas:50%25
	// auth:runas:naïve%20user
}
