package auth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
)

// errStore is a realm failure that is not a wrong credential.
var errStore = mortar.Errorf(mortar.CodeUnavailable, "store unavailable")

// otherToken is a kind of token no SimpleRealm supports.
type otherToken struct{ key string }

func (t otherToken) Principal() string { return t.key }

// fakeRealm answers every token it supports with info or err, and counts
// the calls.
type fakeRealm struct {
	name        string
	unsupported bool
	info        auth.SubjectInfo
	err         error
	calls       atomic.Int32
}

func (r *fakeRealm) Name() string                               { return r.name }
func (r *fakeRealm) Supports(tok auth.AuthenticationToken) bool { return !r.unsupported }

func (r *fakeRealm) Authenticate(ctx context.Context, tok auth.AuthenticationToken) (auth.SubjectInfo, error) {
	r.calls.Add(1)
	if r.unsupported {
		return auth.SubjectInfo{}, errors.New("asked about an unsupported token")
	}
	return r.info, r.err
}

// Fake realm kinds, by the letter that names them in a strategy test.
func succeeds(name, principal string, roles []string, perms ...string) *fakeRealm {
	info := auth.SubjectInfo{Principal: principal, Realm: "ignored", Roles: roles}
	for _, p := range perms {
		info.Permissions = append(info.Permissions, auth.MustParsePermission(p))
	}
	return &fakeRealm{name: name, info: info}
}

func invalid(name string) *fakeRealm {
	return &fakeRealm{name: name, err: auth.ErrInvalidCredentials}
}

func failing(name string) *fakeRealm {
	return &fakeRealm{name: name, err: fmt.Errorf("ldap dial: %w", errStore)}
}

func unsupported(name string) *fakeRealm { return &fakeRealm{name: name, unsupported: true} }

// Outcomes of Authenticator.Authenticate.
const (
	wantSubject     = "subject"
	wantInvalid     = "invalid"
	wantStoreErr    = "store"
	wantUnsupported = "unsupported"
)

// checkAuthError checks that err is the outcome want, one of the wantX
// constants other than wantSubject.
func checkAuthError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Authenticate error = nil, want %s", want)
	}
	is := map[error]bool{
		auth.ErrInvalidCredentials: want == wantInvalid,
		auth.ErrUnsupportedToken:   want == wantUnsupported,
		errStore:                   want == wantStoreErr,
	}
	for target, wantIs := range is {
		if errors.Is(err, target) != wantIs {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", err, target, !wantIs, wantIs)
		}
	}
	code, msg := mortar.ErrorCode(err), mortar.ErrorMessage(err)
	switch want {
	case wantInvalid:
		if code != mortar.CodeUnauthenticated || msg != "invalid credentials" || err.Error() != "mortar: unauthenticated: invalid credentials" {
			t.Errorf("invalid credentials error = %q (code %q, message %q)", err, code, msg)
		}
	case wantUnsupported:
		if code != mortar.CodeUnauthenticated || msg != "unsupported credential" {
			t.Errorf("unsupported error = %q (code %q, message %q)", err, code, msg)
		}
	case wantStoreErr:
		if code != mortar.CodeUnavailable || !strings.HasPrefix(err.Error(), "auth: authenticate: realm ") {
			t.Errorf("store error = %q (code %q), want it wrapped with the realm's name", err, code)
		}
	}
}

func TestAuthenticatorStrategies(t *testing.T) {
	t.Parallel()
	A := func() *fakeRealm {
		return succeeds("A", "alice", []string{"user", "ops"}, "config:read", "printer:print")
	}
	B := func() *fakeRealm { return succeeds("B", "alice@corp", []string{"ops", "dba"}, "db:*", "config:read") }
	tests := []struct {
		name      string
		strategy  auth.Strategy
		realms    []*fakeRealm
		want      string // wantSubject or the error outcome
		principal string
		realm     string
		roles     []string
		perms     []string // permitted
		denied    []string // not permitted
		calls     []int32  // per realm
	}{
		// AtLeastOneSuccessful asks every supporting realm and merges
		// the successes.
		{"one/single", auth.AtLeastOneSuccessful, []*fakeRealm{A()}, wantSubject, "alice", "A",
			[]string{"user", "ops"}, []string{"config:read", "printer:print"}, []string{"db:x"}, []int32{1}},
		{"one/merge", auth.AtLeastOneSuccessful, []*fakeRealm{A(), B()}, wantSubject, "alice", "A",
			[]string{"user", "ops", "dba"}, []string{"config:read", "printer:print", "db:drop"}, []string{"config:write"}, []int32{1, 1}},
		{"one/invalid then ok", auth.AtLeastOneSuccessful, []*fakeRealm{invalid("X"), B()}, wantSubject, "alice@corp", "B",
			[]string{"ops", "dba"}, []string{"db:drop"}, []string{"printer:print"}, []int32{1, 1}},
		{"one/ok then store error", auth.AtLeastOneSuccessful, []*fakeRealm{A(), failing("F")}, wantSubject, "alice", "A",
			[]string{"user", "ops"}, nil, nil, []int32{1, 1}},
		{"one/store error then ok", auth.AtLeastOneSuccessful, []*fakeRealm{failing("F"), A()}, wantSubject, "alice", "A",
			nil, nil, nil, []int32{1, 1}},
		{"one/store error then invalid", auth.AtLeastOneSuccessful, []*fakeRealm{failing("F"), invalid("X")}, wantStoreErr, "", "",
			nil, nil, nil, []int32{1, 1}},
		{"one/invalid then store error", auth.AtLeastOneSuccessful, []*fakeRealm{invalid("X"), failing("F")}, wantStoreErr, "", "",
			nil, nil, nil, []int32{1, 1}},
		{"one/all invalid", auth.AtLeastOneSuccessful, []*fakeRealm{invalid("X"), invalid("Y")}, wantInvalid, "", "",
			nil, nil, nil, []int32{1, 1}},
		{"one/unsupported skipped", auth.AtLeastOneSuccessful, []*fakeRealm{unsupported("U"), A()}, wantSubject, "alice", "A",
			nil, nil, nil, []int32{0, 1}},
		{"one/none supports", auth.AtLeastOneSuccessful, []*fakeRealm{unsupported("U"), unsupported("V")}, wantUnsupported, "", "",
			nil, nil, nil, []int32{0, 0}},
		{"one/no realms", auth.AtLeastOneSuccessful, nil, wantUnsupported, "", "", nil, nil, nil, nil},

		// FirstSuccessful stops at the first success.
		{"first/stops", auth.FirstSuccessful, []*fakeRealm{A(), B()}, wantSubject, "alice", "A",
			[]string{"user", "ops"}, []string{"printer:print"}, []string{"db:drop"}, []int32{1, 0}},
		{"first/invalid then ok", auth.FirstSuccessful, []*fakeRealm{invalid("X"), B(), A()}, wantSubject, "alice@corp", "B",
			[]string{"ops", "dba"}, []string{"db:drop"}, []string{"printer:print"}, []int32{1, 1, 0}},
		{"first/store error then ok", auth.FirstSuccessful, []*fakeRealm{failing("F"), A()}, wantSubject, "alice", "A",
			nil, nil, nil, []int32{1, 1}},
		{"first/store error then invalid", auth.FirstSuccessful, []*fakeRealm{failing("F"), invalid("X")}, wantStoreErr, "", "",
			nil, nil, nil, []int32{1, 1}},
		{"first/all invalid", auth.FirstSuccessful, []*fakeRealm{invalid("X"), invalid("Y")}, wantInvalid, "", "",
			nil, nil, nil, []int32{1, 1}},
		{"first/none supports", auth.FirstSuccessful, []*fakeRealm{unsupported("U")}, wantUnsupported, "", "",
			nil, nil, nil, []int32{0}},

		// AllSuccessful needs every supporting realm, and stops at the
		// first failure.
		{"all/merge", auth.AllSuccessful, []*fakeRealm{A(), B()}, wantSubject, "alice", "A",
			[]string{"user", "ops", "dba"}, []string{"printer:print", "db:drop"}, nil, []int32{1, 1}},
		{"all/unsupported skipped", auth.AllSuccessful, []*fakeRealm{A(), unsupported("U"), B()}, wantSubject, "alice", "A",
			[]string{"user", "ops", "dba"}, nil, nil, []int32{1, 0, 1}},
		{"all/one invalid", auth.AllSuccessful, []*fakeRealm{A(), invalid("X"), B()}, wantInvalid, "", "",
			nil, nil, nil, []int32{1, 1, 0}},
		{"all/invalid before store error", auth.AllSuccessful, []*fakeRealm{invalid("X"), failing("F")}, wantInvalid, "", "",
			nil, nil, nil, []int32{1, 0}},
		{"all/store error after success", auth.AllSuccessful, []*fakeRealm{A(), failing("F"), B()}, wantStoreErr, "", "",
			nil, nil, nil, []int32{1, 1, 0}},
		{"all/none supports", auth.AllSuccessful, []*fakeRealm{unsupported("U")}, wantUnsupported, "", "",
			nil, nil, nil, []int32{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &auth.Authenticator{Strategy: tt.strategy}
			for _, r := range tt.realms {
				a.Realms = append(a.Realms, r)
			}
			s, err := a.Authenticate(t.Context(), auth.UsernamePassword{Username: "alice", Password: "pw"})
			for i, r := range tt.realms {
				if got := r.calls.Load(); got != tt.calls[i] {
					t.Errorf("realm %s asked %d times, want %d", r.name, got, tt.calls[i])
				}
			}
			if tt.want != wantSubject {
				checkAuthError(t, err, tt.want)
				if s != nil {
					t.Errorf("Authenticate failed but returned %v", s)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate = %v", err)
			}
			if s.Principal() != tt.principal || s.Realm() != tt.realm || s.IsRunAs() {
				t.Errorf("subject %q from %q (run as %v), want %q from %q", s.Principal(), s.Realm(), s.IsRunAs(), tt.principal, tt.realm)
			}
			if tt.roles != nil && !slices.Equal(s.Roles(), tt.roles) {
				t.Errorf("Roles() = %q, want %q", s.Roles(), tt.roles)
			}
			for _, p := range tt.perms {
				if !s.IsPermitted(p) {
					t.Errorf("IsPermitted(%q) = false, want true", p)
				}
			}
			for _, p := range tt.denied {
				if s.IsPermitted(p) {
					t.Errorf("IsPermitted(%q) = true, want false", p)
				}
			}
		})
	}
}

// TestAuthenticatorHidesReason checks that every wrong credential gives
// the same error, whatever the realms said and however they wrapped it.
func TestAuthenticatorHidesReason(t *testing.T) {
	t.Parallel()
	reasons := []error{
		auth.ErrInvalidCredentials,
		fmt.Errorf("unknown user %q: %w", "mallory", auth.ErrInvalidCredentials),
		fmt.Errorf("wrong TOTP code: %w", auth.ErrInvalidCredentials),
		fmt.Errorf("account disabled: %w", auth.ErrInvalidCredentials),
		errors.Join(errors.New("bad password"), auth.ErrInvalidCredentials),
	}
	var first error
	for _, strategy := range []auth.Strategy{auth.AtLeastOneSuccessful, auth.FirstSuccessful, auth.AllSuccessful} {
		for _, reason := range reasons {
			a := &auth.Authenticator{Strategy: strategy, Realms: []auth.Realm{&fakeRealm{name: "R", err: reason}}}
			_, err := a.Authenticate(t.Context(), auth.UsernamePassword{Username: "mallory"})
			checkAuthError(t, err, wantInvalid)
			if first == nil {
				first = err
			} else if err.Error() != first.Error() || mortar.ErrorMessage(err) != mortar.ErrorMessage(first) {
				t.Errorf("%v, realm said %q: error %q differs from %q", strategy, reason, err, first)
			}
			// The reason stays on the server's side of the error.
			if got := auth.FailureReason(err); !strings.Contains(got, strings.ReplaceAll(reason.Error(), "\n", "; ")) {
				t.Errorf("%v: FailureReason = %q, want it to hold %q", strategy, got, reason)
			}
		}
	}
}

func TestAuthenticatorEdgeCases(t *testing.T) {
	t.Parallel()
	tok := auth.UsernamePassword{Username: "alice"}

	t.Run("nil token", func(t *testing.T) {
		t.Parallel()
		r := succeeds("A", "alice", nil)
		_, err := (&auth.Authenticator{Realms: []auth.Realm{r}}).Authenticate(t.Context(), nil)
		checkAuthError(t, err, wantUnsupported)
	})

	t.Run("zero Authenticator", func(t *testing.T) {
		t.Parallel()
		_, err := (&auth.Authenticator{}).Authenticate(t.Context(), tok)
		checkAuthError(t, err, wantUnsupported)
	})

	t.Run("unknown strategy", func(t *testing.T) {
		t.Parallel()
		r := succeeds("A", "alice", nil)
		_, err := (&auth.Authenticator{Strategy: 3, Realms: []auth.Realm{r}}).Authenticate(t.Context(), tok)
		if err == nil || !strings.Contains(err.Error(), "Strategy(3)") || r.calls.Load() != 0 {
			t.Errorf("Authenticate with Strategy(3) = %v after %d calls, want an error and none", err, r.calls.Load())
		}
	})

	t.Run("ctx done", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := succeeds("A", "alice", nil)
		_, err := (&auth.Authenticator{Realms: []auth.Realm{r}}).Authenticate(ctx, tok)
		if !errors.Is(err, context.Canceled) || errors.Is(err, auth.ErrInvalidCredentials) || r.calls.Load() != 0 {
			t.Errorf("Authenticate(cancelled ctx) = %v after %d calls, want context.Canceled and none", err, r.calls.Load())
		}
	})

	t.Run("empty principal is a realm failure", func(t *testing.T) {
		t.Parallel()
		r := &fakeRealm{name: "A"}
		_, err := (&auth.Authenticator{Realms: []auth.Realm{r}}).Authenticate(t.Context(), tok)
		if err == nil || errors.Is(err, auth.ErrInvalidCredentials) || !strings.Contains(err.Error(), `realm "A"`) {
			t.Errorf("Authenticate with an empty principal = %v, want a realm failure", err)
		}
	})

	t.Run("realm failure keeps its code", func(t *testing.T) {
		t.Parallel()
		r := &fakeRealm{name: "A", err: errors.New("boom")}
		_, err := (&auth.Authenticator{Realms: []auth.Realm{r}}).Authenticate(t.Context(), tok)
		if mortar.ErrorCode(err) != mortar.CodeInternal || mortar.ErrorMessage(err) != "internal error" {
			t.Errorf("Authenticate with a failing realm = %v (%q), want an internal error", err, mortar.ErrorCode(err))
		}
	})
}

func TestStrategyString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    auth.Strategy
		want string
	}{
		{auth.AtLeastOneSuccessful, "AtLeastOneSuccessful"},
		{auth.FirstSuccessful, "FirstSuccessful"},
		{auth.AllSuccessful, "AllSuccessful"},
		{-1, "Strategy(-1)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Strategy(%d).String() = %q, want %q", int(tt.s), got, tt.want)
		}
	}
}

func TestUsernamePasswordHidesSecrets(t *testing.T) {
	t.Parallel()
	tok := auth.UsernamePassword{Username: "alice", Password: "hunter2-secret", TOTP: "987654", Addr: "192.0.2.7:4711"}
	if tok.Principal() != "alice" {
		t.Errorf("Principal() = %q, want alice", tok.Principal())
	}
	const want = `auth.UsernamePassword{Username: "alice", Addr: "192.0.2.7:4711"}`
	if got := tok.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3v", "%T: %[1]v"} {
		outs = append(outs, fmt.Sprintf(verb, tok), fmt.Sprintf(verb, &tok), fmt.Sprintf(verb, []any{tok}))
	}
	outs = append(outs, fmt.Sprint(tok), fmt.Sprintln(struct{ T auth.UsernamePassword }{tok}),
		fmt.Errorf("login %v: %w", tok, auth.ErrInvalidCredentials).Error(), tok.GoString())
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		slog.New(h(&b)).Info("login", "tok", tok, "ptr", &tok)
		outs = append(outs, b.String())
	}
	for _, out := range outs {
		for _, secret := range []string{tok.Password, tok.TOTP, "68756e74657232"} { // the last is hunter2 in hex
			if strings.Contains(out, secret) {
				t.Errorf("output %q shows the secret %q", out, secret)
			}
		}
		if !strings.Contains(out, "alice") {
			t.Errorf("output %q lacks the user name", out)
		}
	}
}

// simpleSetup returns a SimpleRealm with a cheap Hasher, the roles admin
// and viewer, and the users alice (admin, viewer), bob (viewer and the
// never-added ghost), with passwords "<name> password".
func simpleSetup(t *testing.T) *auth.SimpleRealm {
	t.Helper()
	r := auth.NewSimpleRealm("local", smallHasher(t))
	mustNil := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	mustNil(r.AddRole("admin", "config:*", "printer:print,query", "auth:runas:*"))
	mustNil(r.AddRole("viewer", "config:read", "printer:query"))
	mustNil(r.AddUser(t.Context(), "alice", "alice password", "viewer", "admin", "viewer"))
	mustNil(r.AddUser(t.Context(), "bob", "bob password", "viewer", "ghost"))
	return r
}

func TestSimpleRealm(t *testing.T) {
	t.Parallel()
	r := simpleSetup(t)
	a := &auth.Authenticator{Realms: []auth.Realm{r}}
	if r.Name() != "local" {
		t.Errorf("Name() = %q", r.Name())
	}

	tests := []struct {
		user, password string
		roles          []string
		perms, denied  []string
	}{
		{"alice", "alice password", []string{"admin", "viewer"},
			[]string{"config:write:prod", "printer:print", "printer:query:lp7", "auth:runas:bob"}, []string{"secrets:read"}},
		{"bob", "bob password", []string{"ghost", "viewer"},
			[]string{"config:read:prod", "printer:query"}, []string{"config:write", "printer:print", "auth:runas:alice"}},
	}
	for _, tt := range tests {
		// TOTP is ignored, Addr too.
		for _, tok := range []auth.AuthenticationToken{
			auth.UsernamePassword{Username: tt.user, Password: tt.password},
			&auth.UsernamePassword{Username: tt.user, Password: tt.password, TOTP: "123456", Addr: "192.0.2.1"},
		} {
			s, err := a.Authenticate(t.Context(), tok)
			if err != nil {
				t.Fatalf("Authenticate(%v) = %v", tok, err)
			}
			if s.Principal() != tt.user || s.Realm() != "local" || !slices.Equal(s.Roles(), tt.roles) {
				t.Errorf("Authenticate(%v) = %q from %q with %q, want roles %q", tok, s.Principal(), s.Realm(), s.Roles(), tt.roles)
			}
			for _, p := range tt.perms {
				if err := s.CheckPermission(p); err != nil {
					t.Errorf("%s: CheckPermission(%q) = %v", tt.user, p, err)
				}
			}
			for _, p := range tt.denied {
				if s.IsPermitted(p) {
					t.Errorf("%s: IsPermitted(%q) = true", tt.user, p)
				}
			}
		}
	}

	// The info a realm returns holds each permission once.
	info, err := r.Authenticate(t.Context(), auth.UsernamePassword{Username: "alice", Password: "alice password"})
	if err != nil {
		t.Fatal(err)
	}
	var perms []string
	for _, p := range info.Permissions {
		perms = append(perms, p.String())
	}
	if want := []string{"config:*", "printer:print,query", "auth:runas:*", "config:read", "printer:query"}; !slices.Equal(perms, want) {
		t.Errorf("alice's permissions = %q, want %q", perms, want)
	}
}

func TestSimpleRealmWrongCredentials(t *testing.T) {
	t.Parallel()
	r := simpleSetup(t)
	a := &auth.Authenticator{Realms: []auth.Realm{r}}
	toks := []auth.UsernamePassword{
		{Username: "alice", Password: "bob password"}, // wrong password
		{Username: "alice", Password: "Alice password"},
		{Username: "alice", Password: ""},
		{Username: "alice", Password: strings.Repeat("x", auth.MaxPasswordLen+1)},
		{Username: "Alice", Password: "alice password"}, // names are exact
		{Username: "mallory", Password: "alice password"},
		{Username: "", Password: "alice password"},
		{Username: "ghost", Password: "ghost password"},
	}
	var first error
	for _, tok := range toks {
		info, err := r.Authenticate(t.Context(), tok)
		if err != auth.ErrInvalidCredentials || !reflect.DeepEqual(info, auth.SubjectInfo{}) {
			t.Errorf("realm Authenticate(%v) = %+v, %v; want ErrInvalidCredentials itself", tok, info, err)
		}
		_, err = a.Authenticate(t.Context(), tok)
		checkAuthError(t, err, wantInvalid)
		if first == nil {
			first = err
		} else if !reflect.DeepEqual(err, first) {
			t.Errorf("Authenticate(%v) = %#v, differs from %#v", tok, err, first)
		}
	}
}

// TestSimpleRealmUnknownUserVerifies checks that an unknown user goes
// through a verification as a known one does, with a cancelled ctx, where
// Verify answers with its ctx error: both must give the same error.
func TestSimpleRealmUnknownUserVerifies(t *testing.T) {
	t.Parallel()
	r := simpleSetup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, known := r.Authenticate(ctx, auth.UsernamePassword{Username: "alice", Password: "wrong"})
	_, unknown := r.Authenticate(ctx, auth.UsernamePassword{Username: "mallory", Password: "wrong"})
	if !errors.Is(known, context.Canceled) || !errors.Is(unknown, context.Canceled) || known.Error() != unknown.Error() {
		t.Errorf("with a cancelled ctx: known user %v, unknown user %v; want the same context error", known, unknown)
	}
}

func TestSimpleRealmSupports(t *testing.T) {
	t.Parallel()
	r := auth.NewSimpleRealm("local", smallHasher(t))
	tests := []struct {
		tok  auth.AuthenticationToken
		want bool
	}{
		{auth.UsernamePassword{}, true},
		{&auth.UsernamePassword{}, true},
		{(*auth.UsernamePassword)(nil), false},
		{otherToken{"key"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := r.Supports(tt.tok); got != tt.want {
			t.Errorf("Supports(%T) = %v, want %v", tt.tok, got, tt.want)
		}
		if !tt.want {
			if _, err := r.Authenticate(t.Context(), tt.tok); !errors.Is(err, auth.ErrUnsupportedToken) {
				t.Errorf("Authenticate(%T) = %v, want ErrUnsupportedToken", tt.tok, err)
			}
		}
	}
	_, err := (&auth.Authenticator{Realms: []auth.Realm{r}}).Authenticate(t.Context(), otherToken{"key"})
	checkAuthError(t, err, wantUnsupported)
}

func TestSimpleRealmChanges(t *testing.T) {
	t.Parallel()
	r := simpleSetup(t)
	ctx := t.Context()
	login := func(user, password string) (*auth.Subject, error) {
		return (&auth.Authenticator{Realms: []auth.Realm{r}}).Authenticate(ctx, auth.UsernamePassword{Username: user, Password: password})
	}

	// A malformed permission changes nothing.
	err := r.AddRole("viewer", "config:read", "a:,")
	if !errors.Is(err, auth.ErrBadPermission) || !strings.HasPrefix(err.Error(), `auth: realm "local": add role "viewer": `) {
		t.Errorf("AddRole with a malformed permission = %v, want ErrBadPermission", err)
	}
	if s, err := login("bob", "bob password"); err != nil || !s.IsPermitted("printer:query") {
		t.Errorf("after a failed AddRole, bob = %v, %v; want the old viewer role", s, err)
	}

	// AddRole replaces a role's permissions, for users added before too.
	if err := r.AddRole("viewer", "docs:read"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddRole("ghost", "haunt:*"); err != nil {
		t.Fatal(err)
	}
	s, err := login("bob", "bob password")
	if err != nil || s.IsPermitted("printer:query") || !s.IsPermitted("docs:read") || !s.IsPermitted("haunt:house") {
		t.Errorf("after AddRole, bob = %v, %v; want viewer's and ghost's new permissions", s, err)
	}

	// AddUser replaces a user.
	if err := r.AddUser(ctx, "bob", "new password", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := login("bob", "bob password"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("old password after AddUser: %v, want invalid credentials", err)
	}
	if s, err := login("bob", "new password"); err != nil || !slices.Equal(s.Roles(), []string{"admin"}) {
		t.Errorf("new password after AddUser: %v, %v", s, err)
	}

	addUserErrors := []struct {
		user, password string
		roles          []string
		is             error
	}{
		{"", "pw", nil, nil},
		{"carol", "", nil, auth.ErrEmptyPassword},
		{"carol", strings.Repeat("x", auth.MaxPasswordLen+1), nil, auth.ErrPasswordTooLong},
		{"carol", "pw", []string{"admin", ""}, nil},
	}
	for _, tt := range addUserErrors {
		err := r.AddUser(ctx, tt.user, tt.password, tt.roles...)
		if err == nil || (tt.is != nil && !errors.Is(err, tt.is)) || !strings.HasPrefix(err.Error(), `auth: realm "local": add user`) {
			t.Errorf("AddUser(%q, %.8q, %q) = %v, want an error wrapping %v", tt.user, tt.password, tt.roles, err, tt.is)
		}
	}
	if _, err := login("carol", "pw"); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("a failed AddUser added carol: %v", err)
	}
	if err := r.AddRole(""); err == nil {
		t.Errorf(`AddRole("") = nil, want an error`)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := r.AddUser(cctx, "carol", "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("AddUser(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestNewSimpleRealmDefaultHasher(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("hashes with the default argon2id parameters")
	}
	r := auth.NewSimpleRealm("local", nil)
	if err := r.AddUser(t.Context(), "alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(t.Context(), auth.UsernamePassword{Username: "alice", Password: "pw"}); err != nil {
		t.Errorf("Authenticate = %v", err)
	}
}

// TestSimpleRealmConcurrent changes roles and users while others log in;
// run it with -race.
func TestSimpleRealmConcurrent(t *testing.T) {
	t.Parallel()
	r := simpleSetup(t)
	a := &auth.Authenticator{Realms: []auth.Realm{r}}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				if err := r.AddRole("viewer", "config:read", fmt.Sprintf("docs:%d:%d", i, j)); err != nil {
					t.Error(err)
					return
				}
				if err := r.AddUser(t.Context(), fmt.Sprintf("user%d", i), "pw", "viewer"); err != nil {
					t.Error(err)
					return
				}
				s, err := a.Authenticate(t.Context(), auth.UsernamePassword{Username: "bob", Password: "bob password"})
				if err != nil || !s.IsPermitted("config:read") {
					t.Errorf("Authenticate(bob) = %v, %v", s, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
