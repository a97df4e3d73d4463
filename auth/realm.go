package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/mortarhq/mortar"
)

// AuthenticationToken is a credential offered for authentication, Shiro's
// AuthenticationToken: who claims to be someone, and the proof. Each Realm
// says which kinds it supports.
type AuthenticationToken interface {
	// Principal returns the identity the token claims, such as a user
	// name. It is a claim, not yet an authenticated identity.
	Principal() string
}

// UsernamePassword is a user name and password, with an optional second
// factor, as a login form sends them: Shiro's UsernamePasswordToken.
// Realms accept it as a value or as a non-nil pointer.
//
// Its String, GoString, Format and LogValue methods never show Password
// or TOTP, so a token that ends up in a log line or an error message
// leaks neither.
type UsernamePassword struct {
	Username string
	Password string
	// TOTP is the one-time code of the user's authenticator app, if the
	// login form asked for one; "" otherwise.
	TOTP string
	// Addr is the client's network address, as a Throttle takes it, so
	// that the caller can throttle failures per address; realms ignore it.
	Addr string
}

// Principal returns the user name.
func (t UsernamePassword) Principal() string { return t.Username }

// String returns the user name and address, quoted, and nothing of the
// password or the second factor.
func (t UsernamePassword) String() string {
	return fmt.Sprintf("auth.UsernamePassword{Username: %q, Addr: %q}", t.Username, t.Addr)
}

// GoString is String, so that %#v does not show the password either.
func (t UsernamePassword) GoString() string { return t.String() }

// Format writes String for every verb, so that no verb (%d, %x, …) can
// print the fields one by one.
func (t UsernamePassword) Format(f fmt.State, _ rune) { fmt.Fprint(f, t.String()) }

// LogValue logs the user name and address only.
func (t UsernamePassword) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", t.Username), slog.String("addr", t.Addr))
}

// asUsernamePassword returns tok as a UsernamePassword, whether given as a
// value or a non-nil pointer.
func asUsernamePassword(tok AuthenticationToken) (UsernamePassword, bool) {
	switch t := tok.(type) {
	case UsernamePassword:
		return t, true
	case *UsernamePassword:
		if t != nil {
			return *t, true
		}
	}
	return UsernamePassword{}, false
}

var (
	// ErrInvalidCredentials is the one answer to a credential that does
	// not authenticate: an unknown user, a wrong password, a wrong second
	// factor or a disabled account alike, so that the answer never tells
	// which. A Realm returns it, possibly wrapped, for any of them.
	ErrInvalidCredentials = errors.New("auth: invalid credentials")
	// ErrUnsupportedToken is returned for a token of a kind that no realm
	// supports.
	ErrUnsupportedToken = errors.New("auth: unsupported credential")
)

// Realm is a source of accounts, Shiro's Realm: it authenticates the kinds
// of tokens it supports and knows the principal's roles and permissions.
// A Realm must be safe for concurrent use.
type Realm interface {
	// Name returns the realm's name, unique among an Authenticator's
	// realms. Subject.Realm reports it.
	Name() string
	// Supports reports whether the realm can authenticate tokens of tok's
	// kind. An Authenticator asks the realm only about tokens it supports.
	Supports(tok AuthenticationToken) bool
	// Authenticate checks tok and returns the principal with its roles
	// and resolved permissions. A credential that does not authenticate,
	// for whatever reason, is ErrInvalidCredentials (possibly wrapped);
	// any other error is a failure of the realm, such as its store being
	// unavailable, and an Authenticator does not disguise it.
	Authenticate(ctx context.Context, tok AuthenticationToken) (SubjectInfo, error)
}

// Strategy is how an Authenticator combines its realms' answers: Shiro's
// AuthenticationStrategy.
type Strategy int

const (
	// AtLeastOneSuccessful tries every realm that supports the token and
	// succeeds if any of them does. The subject's principal and realm are
	// those of the first realm that succeeds, and its roles and
	// permissions are those of every realm that succeeds, merged. It is
	// the zero Strategy, and Shiro's default.
	AtLeastOneSuccessful Strategy = iota
	// FirstSuccessful tries the realms that support the token in order
	// and stops at the first that succeeds: the subject is that realm's
	// alone.
	FirstSuccessful
	// AllSuccessful requires every realm that supports the token to
	// succeed, and stops at the first that does not. The subject is
	// merged as for AtLeastOneSuccessful.
	AllSuccessful
)

// String returns the strategy's name, such as "AtLeastOneSuccessful".
func (s Strategy) String() string {
	switch s {
	case AtLeastOneSuccessful:
		return "AtLeastOneSuccessful"
	case FirstSuccessful:
		return "FirstSuccessful"
	case AllSuccessful:
		return "AllSuccessful"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// Authenticator authenticates tokens against its realms, Shiro's
// ModularRealmAuthenticator. Its zero value has no realms and supports no
// token. It is safe for concurrent use as long as its fields are not
// changed.
type Authenticator struct {
	// Realms are asked in order; only those that support a token are
	// asked about it.
	Realms []Realm
	// Strategy combines the realms' answers. Defaults to
	// AtLeastOneSuccessful, its zero value.
	Strategy Strategy
}

// Authenticate runs the strategy over the realms that support tok and
// returns the authenticated Subject. Its realm is the name of the realm
// that authenticated the principal (Realm.Name, whatever SubjectInfo.Realm
// the realm gave).
//
// Errors:
//
//   - No realm supports tok (or tok is nil): an error that wraps
//     ErrUnsupportedToken and is a *mortar.Error with
//     mortar.CodeUnauthenticated.
//   - The credential does not authenticate: an error that wraps
//     ErrInvalidCredentials and is a *mortar.Error with
//     mortar.CodeUnauthenticated and the message "invalid credentials",
//     the same whichever realm said what, so that it never tells an
//     unknown user from a wrong password.
//   - A realm fails otherwise (its store is down, say): its error,
//     wrapped with the realm's name, and not disguised as invalid
//     credentials, so that an outage does not look like an attack. Under
//     AtLeastOneSuccessful and FirstSuccessful that happens only when no
//     realm succeeds, and the first such error is returned; under
//     AllSuccessful it happens whenever a realm fails so. When some realm
//     succeeds, the failures of others are dropped.
//   - ctx ends: its error, checked before each realm is asked.
//
// A realm that succeeds with an empty principal counts as failing.
func (a *Authenticator) Authenticate(ctx context.Context, tok AuthenticationToken) (*Subject, error) {
	if a.Strategy < AtLeastOneSuccessful || a.Strategy > AllSuccessful {
		return nil, fmt.Errorf("auth: authenticate: unknown strategy %v", a.Strategy)
	}
	var realms []Realm
	if tok != nil {
		for _, r := range a.Realms {
			if r.Supports(tok) {
				realms = append(realms, r)
			}
		}
	}
	if len(realms) == 0 {
		return nil, &codedError{public: mortar.Errorf(mortar.CodeUnauthenticated, "unsupported credential"), cause: ErrUnsupportedToken}
	}
	var (
		merged   infoMerger
		realmErr error   // the first failure other than invalid credentials
		reasons  []error // why realms refused the credential
	)
	for _, r := range realms {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("auth: authenticate: %w", err)
		}
		info, err := r.Authenticate(ctx, tok)
		if err == nil && info.Principal == "" {
			err = errors.New("succeeded with an empty principal")
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidCredentials) && realmErr == nil {
				realmErr = fmt.Errorf("auth: authenticate: realm %q: %w", r.Name(), err)
			}
			if errors.Is(err, ErrInvalidCredentials) {
				reasons = append(reasons, fmt.Errorf("realm %q: %w", r.Name(), err))
			}
			if a.Strategy == AllSuccessful {
				return nil, failure(realmErr, reasons)
			}
			continue
		}
		info.Realm = r.Name()
		merged.add(info)
		if a.Strategy == FirstSuccessful {
			break
		}
	}
	if merged.empty() {
		return nil, failure(realmErr, reasons)
	}
	return NewSubject(merged.info), nil
}

// failure returns realmErr if it is set, otherwise a fresh
// invalid-credentials error holding the realms' reasons.
func failure(realmErr error, reasons []error) error {
	if realmErr != nil {
		return realmErr
	}
	return invalidCredentials(reasons)
}

// invalidCredentials returns a fresh invalid-credentials error, so that
// no caller can change another's through errors.As. Its text and public
// message say only "invalid credentials"; FailureReason tells the
// realms' reasons, for the audit log.
func invalidCredentials(reasons []error) error {
	cause := ErrInvalidCredentials
	if len(reasons) > 0 {
		cause = errors.Join(reasons...)
	}
	return &codedError{
		public: &mortar.Error{Code: mortar.CodeUnauthenticated, Message: "invalid credentials"},
		cause:  cause,
	}
}

// FailureReason returns why an authentication failed, as the realms said
// it (for example "realm \"mortar\": auth: invalid credentials: wrong
// password"): detail for an audit log or an operator, never for the
// caller.
func FailureReason(err error) string {
	if ce, ok := errors.AsType[*codedError](err); ok {
		return strings.ReplaceAll(ce.cause.Error(), "\n", "; ")
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// infoMerger merges the SubjectInfo of the realms that succeed: the
// principal and realm of the first, the roles and permissions of all,
// without duplicates, in order.
type infoMerger struct {
	info  SubjectInfo
	roles map[string]struct{}
	perms map[string]struct{} // by canonical form
}

// empty reports whether no realm has succeeded.
func (m *infoMerger) empty() bool { return m.roles == nil }

func (m *infoMerger) add(info SubjectInfo) {
	if m.roles == nil {
		m.info.Principal, m.info.Realm = info.Principal, info.Realm
		m.roles, m.perms = make(map[string]struct{}), make(map[string]struct{})
	}
	for _, r := range info.Roles {
		if _, dup := m.roles[r]; !dup {
			m.roles[r] = struct{}{}
			m.info.Roles = append(m.info.Roles, r)
		}
	}
	for _, p := range info.Permissions {
		if _, dup := m.perms[p.String()]; !dup {
			m.perms[p.String()] = struct{}{}
			m.info.Permissions = append(m.info.Permissions, p)
		}
	}
}

// SimpleRealm is an in-memory realm of users with argon2id-hashed
// passwords and roles, and of roles with permissions: Shiro's
// SimpleAccountRealm, for programs with a handful of fixed accounts and
// for tests. It supports UsernamePassword tokens, has no second factor
// (it ignores UsernamePassword.TOTP), and is safe for concurrent use.
//
// User and role names are compared exactly. A user's permissions are
// those of its roles when it authenticates, so AddRole affects users
// already added; a role never added has no permissions.
type SimpleRealm struct {
	name string
	h    *Hasher

	mu    sync.RWMutex
	users map[string]simpleAccount // by user name
	roles map[string][]Permission  // by role name
}

// simpleAccount is a SimpleRealm user. Its fields are never changed in
// place, so a copy taken under the lock stays valid after it.
type simpleAccount struct {
	hash  string // PHC string, see Hasher.Hash
	roles []string
}

// NewSimpleRealm returns an empty SimpleRealm called name that hashes and
// verifies passwords with h. A nil h means a Hasher with the default
// parameters, NewHasher(nil).
func NewSimpleRealm(name string, h *Hasher) *SimpleRealm {
	if h == nil {
		h, _ = NewHasher(nil) // cannot fail: the defaults are within bounds
	}
	return &SimpleRealm{name: name, h: h,
		users: make(map[string]simpleAccount), roles: make(map[string][]Permission)}
}

// Name returns the realm's name.
func (r *SimpleRealm) Name() string { return r.name }

// AddUser adds user with password, hashed with the realm's Hasher, and
// roles, replacing the user if it exists. It returns Hash's error for a
// password that is empty or too long, or when ctx ends while waiting to
// hash, and an error for an empty user or role name.
func (r *SimpleRealm) AddUser(ctx context.Context, user, password string, roles ...string) error {
	if user == "" {
		return fmt.Errorf("auth: realm %q: add user: empty user name", r.name)
	}
	if slices.Contains(roles, "") {
		return fmt.Errorf("auth: realm %q: add user %q: empty role name", r.name, user)
	}
	hash, err := r.h.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("auth: realm %q: add user %q: %w", r.name, user, err)
	}
	acct := simpleAccount{hash: hash, roles: slices.Compact(slices.Sorted(slices.Values(roles)))}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[user] = acct
	return nil
}

// AddRole sets role's permissions to perms, replacing any it had. It
// returns an error wrapping ErrBadPermission if one of perms is malformed,
// and then changes nothing.
func (r *SimpleRealm) AddRole(role string, perms ...string) error {
	if role == "" {
		return fmt.Errorf("auth: realm %q: add role: empty role name", r.name)
	}
	ps := make([]Permission, 0, len(perms))
	for _, s := range perms {
		p, err := ParsePermission(s)
		if err != nil {
			return fmt.Errorf("auth: realm %q: add role %q: %w", r.name, role, err)
		}
		ps = append(ps, p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roles[role] = ps
	return nil
}

// Supports reports whether tok is a UsernamePassword, as a value or a
// non-nil pointer.
func (r *SimpleRealm) Supports(tok AuthenticationToken) bool {
	_, ok := asUsernamePassword(tok)
	return ok
}

// Authenticate verifies a UsernamePassword token's password and returns
// the user with its roles, sorted, and the union of their permissions.
// A wrong password and an unknown user both give ErrInvalidCredentials,
// after the same work: an unknown user costs a verification against a
// dummy hash (see Hasher.DummyVerify). Other tokens give
// ErrUnsupportedToken; ctx ending while waiting for a hashing slot gives
// its error, for known and unknown users alike.
func (r *SimpleRealm) Authenticate(ctx context.Context, tok AuthenticationToken) (SubjectInfo, error) {
	up, ok := asUsernamePassword(tok)
	if !ok {
		return SubjectInfo{}, ErrUnsupportedToken
	}
	r.mu.RLock()
	acct, known := r.users[up.Username]
	r.mu.RUnlock()
	if !known {
		// DummyVerify's work, with Verify's error when ctx ends, so that
		// this path answers exactly like a wrong password.
		if _, _, err := r.h.Verify(ctx, r.h.dummy, up.Password); err != nil {
			return SubjectInfo{}, fmt.Errorf("auth: realm %q: %w", r.name, err)
		}
		return SubjectInfo{}, ErrInvalidCredentials
	}
	// Every hash here is the realm Hasher's, so Verify never asks for a
	// rehash.
	ok, _, err := r.h.Verify(ctx, acct.hash, up.Password)
	if err != nil {
		return SubjectInfo{}, fmt.Errorf("auth: realm %q: %w", r.name, err)
	}
	if !ok {
		return SubjectInfo{}, ErrInvalidCredentials
	}
	return r.info(up.Username, acct), nil
}

// info resolves the account's roles to permissions.
func (r *SimpleRealm) info(user string, acct simpleAccount) SubjectInfo {
	info := SubjectInfo{Principal: user, Realm: r.name, Roles: slices.Clone(acct.roles)}
	seen := make(map[string]struct{})
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, role := range acct.roles {
		for _, p := range r.roles[role] {
			if _, dup := seen[p.String()]; !dup {
				seen[p.String()] = struct{}{}
				info.Permissions = append(info.Permissions, p)
			}
		}
	}
	return info
}
