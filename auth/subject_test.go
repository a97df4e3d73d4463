package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
)

// newSubject returns a subject for principal with roles and the parsed
// perms, from the realm "test".
func newSubject(t testing.TB, principal string, roles []string, perms ...string) *auth.Subject {
	t.Helper()
	info := auth.SubjectInfo{Principal: principal, Realm: "test", Roles: roles}
	for _, s := range perms {
		p, err := auth.ParsePermission(s)
		if err != nil {
			t.Fatalf("ParsePermission(%q): %v", s, err)
		}
		info.Permissions = append(info.Permissions, p)
	}
	return auth.NewSubject(info)
}

// wantDenied checks that err is CheckPermission's or CheckRole's denial
// with the public message msg.
func wantDenied(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want permission denied %q", msg)
	}
	if !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("error %v does not wrap ErrPermissionDenied", err)
	}
	if !errors.Is(err, &mortar.Error{Code: mortar.CodePermissionDenied}) {
		t.Errorf("error %v does not match mortar.CodePermissionDenied with errors.Is", err)
	}
	if got := mortar.ErrorCode(err); got != mortar.CodePermissionDenied {
		t.Errorf("ErrorCode(%v) = %q, want %q", err, got, mortar.CodePermissionDenied)
	}
	if got := mortar.ErrorMessage(err); got != msg {
		t.Errorf("ErrorMessage(%v) = %q, want %q", err, got, msg)
	}
	if me, ok := errors.AsType[*mortar.Error](err); !ok || me.Code != mortar.CodePermissionDenied || me.Message != msg {
		t.Errorf("errors.AsType[*mortar.Error](%v) = %+v, %v", err, me, ok)
	}
	if want := "mortar: permission_denied: " + msg; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestSubjectIsPermitted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		grants []string
		req    string
		want   bool
	}{
		// Shiro's documentation (Permissions page) and WildcardPermissionTest.
		{[]string{"printer:print,query"}, "printer:print", true},
		{[]string{"printer:print,query"}, "printer:query", true},
		{[]string{"printer:print,query"}, "printer:print,query", true},
		{[]string{"printer:print,query"}, "printer:query,print", true},
		{[]string{"printer:print,query"}, "printer:manage", false},
		{[]string{"printer:print,query"}, "printer:print,manage", false},
		{[]string{"printer"}, "printer:print:lp7200", true},
		{[]string{"printer:*"}, "printer:query:lp7200", true},
		{[]string{"printer:*"}, "printer", true},
		{[]string{"printer:print:lp7200"}, "printer:print", false},
		{[]string{"printer:print:lp7200"}, "printer:print:lp7200", true},
		{[]string{"printer:print:lp7200"}, "printer:print:epsoncolor", false},
		{[]string{"printer:print:*"}, "printer:print", true},
		{[]string{"*:query"}, "printer:query", true},
		{[]string{"*:query"}, "printer:print", false},
		{[]string{"*"}, "anything:at:all", true},
		{[]string{"newsletter:*:12"}, "newsletter:edit:12", true},
		{[]string{"newsletter:*:12"}, "newsletter:view:12", true},
		{[]string{"newsletter:*:12"}, "newsletter:edit:13", false},
		{[]string{"user:*:zhang"}, "user:delete:zhang", true},
		// Case-insensitive, as Shiro by default.
		{[]string{"Printer:Print"}, "printer:print", true},
		{[]string{"printer:print"}, "PRINTER:PRINT", true},
		// Grants never combine.
		{[]string{"printer:print", "printer:query"}, "printer:print,query", false},
		{[]string{"printer:print", "printer:query"}, "printer:query", true},
		// A requested * is literal: a request cannot widen itself.
		{[]string{"printer:print"}, "printer:*", false},
		{[]string{"printer:print"}, "*", false},
		{[]string{"printer:*"}, "printer:*", true},
		// Nothing granted.
		{nil, "printer:print", false},
		// Malformed requests are never permitted, even under *.
		{[]string{"*"}, "", false},
		{[]string{"*"}, "   ", false},
		{[]string{"*"}, ":::", false},
		{[]string{"*"}, "a:,", false},
		{[]string{"*"}, "a:\xff", false},
		{[]string{"*"}, strings.Repeat("a", auth.MaxPermissionLen+1), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%.40q", tt.grants, tt.req), func(t *testing.T) {
			t.Parallel()
			s := newSubject(t, "alice", nil, tt.grants...)
			if got := s.IsPermitted(tt.req); got != tt.want {
				t.Errorf("IsPermitted(%q) = %v, want %v", tt.req, got, tt.want)
			}
			if got := s.IsPermittedAll(tt.req); got != tt.want {
				t.Errorf("IsPermittedAll(%q) = %v, want %v", tt.req, got, tt.want)
			}
			p, perr := auth.ParsePermission(tt.req)
			if perr == nil {
				if got := s.IsPermittedPerm(p); got != tt.want {
					t.Errorf("IsPermittedPerm(%q) = %v, want %v", tt.req, got, tt.want)
				}
			}
			err := s.CheckPermission(tt.req)
			switch {
			case tt.want:
				if err != nil {
					t.Errorf("CheckPermission(%q) = %v, want nil", tt.req, err)
				}
			case perr != nil:
				if !errors.Is(err, auth.ErrBadPermission) || errors.Is(err, auth.ErrPermissionDenied) {
					t.Errorf("CheckPermission(%q) = %v, want ErrBadPermission only", tt.req, err)
				}
				if got := mortar.ErrorCode(err); got != mortar.CodeInvalidArgument {
					t.Errorf("ErrorCode(CheckPermission(%q)) = %q, want %q", tt.req, got, mortar.CodeInvalidArgument)
				}
			default:
				wantDenied(t, err, "permission denied: "+p.String())
			}
		})
	}
}

func TestCheckPermissionMessage(t *testing.T) {
	t.Parallel()
	s := newSubject(t, "alice", nil, "config:read:*")
	tests := []struct{ req, msg string }{
		{"config:write:prod", "permission denied: config:write:prod"},
		// The canonical form: lower-cased, trimmed, subparts sorted.
		{" Config:Write:Prod ", "permission denied: config:write:prod"},
		{"config:write,delete:prod", "permission denied: config:delete,write:prod"},
		// Never a control character in a public message.
		{"config:write:a\nb", `permission denied: "config:write:a\nb"`},
		{"config:write:" + strings.Repeat("x", 200), fmt.Sprintf("permission denied: %q", "config:write:"+strings.Repeat("x", 115))},
	}
	for _, tt := range tests {
		wantDenied(t, s.CheckPermission(tt.req), tt.msg)
	}

	err := s.CheckPermission("config::,")
	if me, ok := errors.AsType[*mortar.Error](err); !ok || me.Code != mortar.CodeInvalidArgument ||
		!strings.HasPrefix(me.Message, `malformed permission "config::,"`) {
		t.Errorf(`CheckPermission("config::,") = %v, want invalid_argument "malformed permission …"`, err)
	}
}

func TestIsPermittedAll(t *testing.T) {
	t.Parallel()
	s := newSubject(t, "alice", nil, "printer:print,query", "config:read")
	tests := []struct {
		perms []string
		want  bool
	}{
		{nil, true},
		{[]string{"printer:print"}, true},
		{[]string{"printer:print", "printer:query", "config:read:prod"}, true},
		{[]string{"printer:print", "config:write"}, false},
		{[]string{"printer:print", ""}, false},
	}
	for _, tt := range tests {
		if got := s.IsPermittedAll(tt.perms...); got != tt.want {
			t.Errorf("IsPermittedAll(%q) = %v, want %v", tt.perms, got, tt.want)
		}
	}
}

func TestSubjectRoles(t *testing.T) {
	t.Parallel()
	s := newSubject(t, "alice", []string{"admin", "ops", "admin", "Dev"})
	if got, want := s.Roles(), []string{"admin", "ops", "Dev"}; !slices.Equal(got, want) {
		t.Errorf("Roles() = %q, want %q", got, want)
	}
	s.Roles()[0] = "root"
	if s.HasRole("root") || !s.HasRole("admin") || s.Roles()[0] != "admin" {
		t.Errorf("changing Roles()'s result changed the subject: %q", s.Roles())
	}

	tests := []struct {
		role string
		want bool
	}{
		{"admin", true},
		{"ops", true},
		{"Dev", true},
		{"dev", false}, // roles are case-sensitive, as in Shiro
		{"Admin", false},
		{"", false},
		{"root", false},
	}
	for _, tt := range tests {
		if got := s.HasRole(tt.role); got != tt.want {
			t.Errorf("HasRole(%q) = %v, want %v", tt.role, got, tt.want)
		}
		err := s.CheckRole(tt.role)
		if tt.want {
			if err != nil {
				t.Errorf("CheckRole(%q) = %v, want nil", tt.role, err)
			}
			continue
		}
		wantDenied(t, err, "role required: "+tt.role)
	}
	wantDenied(t, s.CheckRole("a\x00b"), `role required: "a\x00b"`)

	allTests := []struct {
		roles []string
		want  bool
	}{
		{nil, true},
		{[]string{"admin"}, true},
		{[]string{"admin", "ops", "Dev"}, true},
		{[]string{"admin", "root"}, false},
	}
	for _, tt := range allTests {
		if got := s.HasAllRoles(tt.roles...); got != tt.want {
			t.Errorf("HasAllRoles(%q) = %v, want %v", tt.roles, got, tt.want)
		}
	}
}

func TestNewSubjectCopies(t *testing.T) {
	t.Parallel()
	info := auth.SubjectInfo{
		Principal:   "alice",
		Realm:       "ldap",
		Roles:       []string{"admin"},
		Permissions: []auth.Permission{auth.MustParsePermission("config:read"), {}},
	}
	s := auth.NewSubject(info)
	info.Roles[0] = "root"
	info.Permissions[0] = auth.MustParsePermission("config:write")
	if s.Principal() != "alice" || s.Realm() != "ldap" || s.IsRunAs() || s.OriginalPrincipal() != "alice" {
		t.Errorf("subject = %q from %q, run as %v, original %q", s.Principal(), s.Realm(), s.IsRunAs(), s.OriginalPrincipal())
	}
	if !s.HasRole("admin") || s.HasRole("root") {
		t.Errorf("roles = %q after the caller changed its slice, want [admin]", s.Roles())
	}
	if !s.IsPermitted("config:read") || s.IsPermitted("config:write") {
		t.Errorf("permissions changed with the caller's slice")
	}
	if s.IsPermittedPerm(auth.Permission{}) {
		t.Errorf("IsPermittedPerm(zero Permission) = true")
	}
	if r := auth.NewSubject(auth.SubjectInfo{Principal: "bob"}).Roles(); r != nil {
		t.Errorf("Roles() without roles = %q, want nil", r)
	}
}

func TestNilSubject(t *testing.T) {
	t.Parallel()
	var s *auth.Subject
	if s.Principal() != "" || s.Realm() != "" || s.Roles() != nil || s.IsRunAs() || s.OriginalPrincipal() != "" {
		t.Errorf("nil subject has an identity")
	}
	if s.IsPermitted("a") || s.IsPermittedPerm(auth.MustParsePermission("a")) || s.HasRole("admin") || s.IsPermittedAll("a") || s.HasAllRoles("admin") {
		t.Errorf("nil subject is permitted something")
	}
	wantDenied(t, s.CheckPermission("config:read"), "permission denied: config:read")
	wantDenied(t, s.CheckRole("admin"), "role required: admin")
	if _, err := s.RunAs(newSubject(t, "alice", nil)); !errors.Is(err, auth.ErrPermissionDenied) {
		t.Errorf("nil subject RunAs error = %v, want ErrPermissionDenied", err)
	}
}

func TestRunAs(t *testing.T) {
	t.Parallel()
	admin := newSubject(t, "root", []string{"admin"}, "auth:runas:*", "config:*")
	support := newSubject(t, "bob", []string{"support"}, "auth:runas:alice,carol")
	alice := newSubject(t, "alice", []string{"user"}, "config:read", "auth:runas:dave")
	carol := newSubject(t, "carol", []string{"user"})
	dave := newSubject(t, "dave", []string{"intern"}, "docs:read")
	odd := newSubject(t, "alice:x", nil, "secrets:*")
	star := newSubject(t, "*", nil, "secrets:*")

	tests := []struct {
		name    string
		s, tgt  *auth.Subject
		wantErr string // the public message of the denial, or "" for success
	}{
		{"admin as anyone", admin, alice, ""},
		{"admin as odd name", admin, odd, ""},
		{"support as listed", support, carol, ""},
		{"support as unlisted", support, dave, "permission denied: auth:runas:dave"},
		{"user as admin", alice, admin, "permission denied: auth:runas:root"},
		{"self without permission", carol, carol, "permission denied: auth:runas:carol"},
		// Without escaping, auth:runas:alice would imply auth:runas:alice:x.
		{"escaped colon", support, odd, "permission denied: auth:runas:alice%3ax"},
		// Without escaping, a user named * would be a wildcard in grants.
		{"escaped star", support, star, "permission denied: auth:runas:%2a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := tt.s.RunAs(tt.tgt)
			if tt.wantErr != "" {
				wantDenied(t, err, tt.wantErr)
				if r != nil {
					t.Errorf("RunAs denied but returned %v", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("RunAs = %v", err)
			}
			if r.Principal() != tt.tgt.Principal() || r.OriginalPrincipal() != tt.s.Principal() || !r.IsRunAs() {
				t.Errorf("RunAs: principal %q, original %q, run as %v", r.Principal(), r.OriginalPrincipal(), r.IsRunAs())
			}
			if r.Realm() != tt.tgt.Realm() || !slices.Equal(r.Roles(), tt.tgt.Roles()) {
				t.Errorf("RunAs: realm %q roles %q, want the target's", r.Realm(), r.Roles())
			}
			if tt.tgt.IsRunAs() || tt.s.IsRunAs() {
				t.Errorf("RunAs changed its subjects")
			}
		})
	}

	t.Run("takes the target's permissions only", func(t *testing.T) {
		t.Parallel()
		r, err := admin.RunAs(alice)
		if err != nil {
			t.Fatal(err)
		}
		if !r.IsPermitted("config:read") || r.IsPermitted("config:write") || r.HasRole("admin") || !r.HasRole("user") {
			t.Errorf("root as alice has the wrong permissions or roles: %q", r.Roles())
		}
	})

	t.Run("chain keeps the first original", func(t *testing.T) {
		t.Parallel()
		bobAsAlice, err := support.RunAs(alice)
		if err != nil {
			t.Fatal(err)
		}
		// alice's permissions decide, not bob's: alice may run as dave.
		bobAsDave, err := bobAsAlice.RunAs(dave)
		if err != nil {
			t.Fatalf("bob as alice RunAs(dave) = %v", err)
		}
		if bobAsDave.Principal() != "dave" || bobAsDave.OriginalPrincipal() != "bob" || !bobAsDave.IsRunAs() {
			t.Errorf("chain: principal %q, original %q", bobAsDave.Principal(), bobAsDave.OriginalPrincipal())
		}
		if !bobAsDave.IsPermitted("docs:read") || bobAsDave.IsPermitted("config:read") {
			t.Errorf("chain: bob as dave has the wrong permissions")
		}
		// Though bob may run as carol, alice may not.
		_, err = bobAsAlice.RunAs(carol)
		wantDenied(t, err, "permission denied: auth:runas:carol")
		// Running as another run-as subject takes its effective identity.
		rootAsBobAsAlice, err := admin.RunAs(bobAsAlice)
		if err != nil {
			t.Fatal(err)
		}
		if rootAsBobAsAlice.Principal() != "alice" || rootAsBobAsAlice.OriginalPrincipal() != "root" {
			t.Errorf("root as (bob as alice): principal %q, original %q", rootAsBobAsAlice.Principal(), rootAsBobAsAlice.OriginalPrincipal())
		}
	})

	t.Run("no target", func(t *testing.T) {
		t.Parallel()
		for _, tgt := range []*auth.Subject{nil, auth.NewSubject(auth.SubjectInfo{})} {
			if r, err := admin.RunAs(tgt); err == nil || errors.Is(err, auth.ErrPermissionDenied) {
				t.Errorf("RunAs(%v) = %v, %v; want an error", tgt, r, err)
			}
		}
	})
}

func TestSubjectContext(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if s, ok := auth.SubjectFrom(ctx); ok || s != nil {
		t.Errorf("SubjectFrom(empty ctx) = %v, %v", s, ok)
	}
	alice := newSubject(t, "alice", nil)
	actx := auth.WithSubject(ctx, alice)
	if s, ok := auth.SubjectFrom(actx); !ok || s != alice {
		t.Errorf("SubjectFrom(WithSubject(alice)) = %v, %v", s, ok)
	}
	if s, ok := auth.SubjectFrom(auth.WithSubject(actx, nil)); ok || s != nil {
		t.Errorf("SubjectFrom(WithSubject(nil)) = %v, %v; want nil, false", s, ok)
	}
	type otherKey struct{}
	if s, ok := auth.SubjectFrom(context.WithValue(actx, otherKey{}, 1)); !ok || s != alice {
		t.Errorf("SubjectFrom through another value = %v, %v", s, ok)
	}
}

// TestSubjectConcurrent uses one Subject from many goroutines; run it with
// -race.
func TestSubjectConcurrent(t *testing.T) {
	t.Parallel()
	admin := newSubject(t, "root", []string{"admin", "ops"}, "auth:runas:*", "config:*", "printer:print,query")
	target := newSubject(t, "alice", []string{"user"}, "config:read")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if !admin.IsPermitted("config:write:prod") || admin.IsPermitted("secrets:read") {
					t.Error("IsPermitted changed its answer")
					return
				}
				if !admin.IsPermittedAll("printer:print", "printer:query") || admin.CheckPermission(fmt.Sprintf("x:%d", j)) == nil {
					t.Error("IsPermittedAll or CheckPermission changed its answer")
					return
				}
				roles := admin.Roles()
				roles[0] = fmt.Sprint(i) // must not reach the subject
				if !admin.HasAllRoles("admin", "ops") || admin.CheckRole("user") == nil {
					t.Error("roles changed")
					return
				}
				r, err := admin.RunAs(target)
				if err != nil || r.Principal() != "alice" || r.OriginalPrincipal() != "root" || !r.IsPermitted("config:read") {
					t.Errorf("RunAs = %v, %v", r, err)
					return
				}
				if s, ok := auth.SubjectFrom(auth.WithSubject(t.Context(), r)); !ok || s != r {
					t.Error("SubjectFrom lost the subject")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestEscapePart(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"alice", "alice"},
		{"Alice.Smith@example.com", "Alice.Smith@example.com"},
		{"a:b", "a%3Ab"},
		{"a,b", "a%2Cb"},
		{"*", "%2A"},
		{"100%", "100%25"},
		{"%3A", "%253A"},
		{" x ", "%20x%20"},
		{"a\tb\nc\rd", "a%09b%0Ac%0Dd"},
		{"\x00\x1f\x7f", "%00%1F%7F"},
		{"+/?#&=~!$'()[];@", "+/?#&=~!$'()[];@"},
		{"é日本\U0001F600", "é日本\U0001F600"},
		{"\u00a0\u2028", "\u00a0\u2028"}, // only ASCII whitespace is escaped
		{"\ufffd", "\ufffd"},             // a real U+FFFD is valid UTF-8
		{"\xff", "%FF"},
		{"a\xe2\x82", "a%E2%82"}, // a truncated sequence
		{"\xc0\xaf", "%C0%AF"},   // an overlong '/'
		{"\xed\xa0\x80", "%ED%A0%80"},
		{"é\xffé", "é%FFé"},
	}
	for _, tt := range tests {
		got := auth.EscapePart(tt.in)
		if got != tt.want {
			t.Errorf("EscapePart(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := url.PathUnescape(got); err != nil || back != tt.in {
			t.Errorf("PathUnescape(EscapePart(%q)) = %q, %v", tt.in, back, err)
		}
	}
}

// FuzzEscapePart checks that an escaped string is always exactly one
// subpart: "a:" + EscapePart(x) parses, for any x of up to 200 bytes, to
// the permission a:<escaped x, lower-cased>, with two parts and one
// subpart in the second, which is no wildcard; and that escaping loses
// nothing.
func FuzzEscapePart(f *testing.F) {
	for _, s := range []string{
		"alice", "a:b", "a,b,c", "*", "%", " x ", "\t\n", "\x00", "\x7f", "é", "\xff", "a\xe2\x82",
		"İ", "Ⱥ", "ß", "\u2028", "::,,**", strings.Repeat("İ:", 66), strings.Repeat("\xff", 200),
	} {
		f.Add(s)
	}
	domain, other := auth.MustParsePermission("a"), auth.MustParsePermission("a:%00other")
	f.Fuzz(func(t *testing.T, x string) {
		esc := auth.EscapePart(x)
		if back, err := url.PathUnescape(esc); err != nil || back != x {
			t.Fatalf("PathUnescape(EscapePart(%q) = %q) = %q, %v", x, esc, back, err)
		}
		if !utf8.ValidString(esc) || strings.ContainsAny(esc, ":,*") {
			t.Fatalf("EscapePart(%q) = %q: invalid UTF-8, a divider or *", x, esc)
		}
		if x == "" || len(x) > 200 {
			return
		}
		perm := "a:" + esc
		p, err := auth.ParsePermission(perm)
		if err != nil {
			t.Fatalf("ParsePermission(%q) = %v", perm, err)
		}
		if want := "a:" + strings.ToLower(esc); p.String() != want {
			t.Fatalf("ParsePermission(%q) = %q, want %q: not exactly one subpart", perm, p.String(), want)
		}
		// A subpart holding * would make p imply the bare domain.
		if p.Implies(domain) {
			t.Fatalf("%v implies %v: its second part is a wildcard", p, domain)
		}
		if same := strings.ToLower(esc) == "%00other"; p.Implies(other) != same || other.Implies(p) != same {
			t.Fatalf("%v and %v: implies %v and %v, want %v", p, other, p.Implies(other), other.Implies(p), same)
		}
		if !p.Implies(auth.MustParsePermission(perm)) {
			t.Fatalf("%v does not imply itself", p)
		}
	})
}
