package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mortarhq/mortar"
)

// ErrPermissionDenied is wrapped by the errors of Subject.CheckPermission,
// Subject.CheckRole and Subject.RunAs when the subject lacks the
// permission or the role. Those errors are also a *mortar.Error with
// mortar.CodePermissionDenied, for callers that only pass errors on.
var ErrPermissionDenied = errors.New("auth: permission denied")

// runAsPrefix starts the permission that Subject.RunAs requires:
// auth:runas:<target principal>.
const runAsPrefix = "auth:runas:"

// Subject is an authenticated principal with its roles and compiled
// permissions: what Shiro calls a Subject, less the session and the login
// calls, which live elsewhere. An Authenticator returns one; NewSubject
// makes one from a SubjectInfo that the caller resolved itself.
//
// Permission checks go through a Grants compiled once, when the Subject
// is made, so a check costs about the same however many permissions the
// subject holds. Role checks are exact and case-sensitive, as in Shiro.
//
// A Subject is immutable and safe for concurrent use. A nil *Subject is
// anonymous: it has no principal and no roles and is permitted nothing, so
// that a handler may call s.CheckPermission on whatever SubjectFrom
// returned.
type Subject struct {
	principal string
	realm     string
	roles     []string            // in the order given, without duplicates
	roleSet   map[string]struct{} // the same roles, for HasRole
	grants    *Grants

	runAs    bool   // the subject runs as principal on behalf of original
	original string // the principal that authenticated, when runAs
}

// SubjectInfo is what a Realm knows about an authenticated principal, and
// what NewSubject makes a Subject of.
type SubjectInfo struct {
	// Principal is the authenticated identity, such as a user name.
	Principal string
	// Realm is the name of the realm that authenticated Principal.
	Realm string
	// Roles are the principal's role names.
	Roles []string
	// Permissions are everything the principal may do: the union of its
	// roles' permissions and its direct ones, already resolved. A subject
	// is permitted a request when one of them implies it; zero
	// Permissions grant nothing.
	Permissions []Permission
}

// NewSubject returns a Subject for info, compiling info.Permissions with
// CompileGrants once. Duplicate roles are dropped. NewSubject keeps none
// of info's slices, so the caller may reuse them.
func NewSubject(info SubjectInfo) *Subject {
	s := &Subject{
		principal: info.Principal,
		realm:     info.Realm,
		roleSet:   make(map[string]struct{}, len(info.Roles)),
		grants:    CompileGrants(info.Permissions),
	}
	for _, r := range info.Roles {
		if _, dup := s.roleSet[r]; !dup {
			s.roleSet[r] = struct{}{}
			s.roles = append(s.roles, r)
		}
	}
	return s
}

// Principal returns the subject's effective principal: the one it runs as,
// when it runs as another (see RunAs), otherwise the one that
// authenticated. It is "" for a nil Subject.
func (s *Subject) Principal() string {
	if s == nil {
		return ""
	}
	return s.principal
}

// Realm returns the name of the realm that authenticated the effective
// principal.
func (s *Subject) Realm() string {
	if s == nil {
		return ""
	}
	return s.realm
}

// Roles returns a copy of the subject's roles, in the order the realms
// gave them, without duplicates.
func (s *Subject) Roles() []string {
	if s == nil || len(s.roles) == 0 {
		return nil
	}
	return append([]string(nil), s.roles...)
}

// IsPermitted reports whether the subject is permitted perm, a wildcard
// permission string parsed with ParsePermission. A malformed perm is never
// permitted; use CheckPermission to tell it from a denial.
func (s *Subject) IsPermitted(perm string) bool {
	p, err := ParsePermission(perm)
	return err == nil && s.IsPermittedPerm(p)
}

// IsPermittedPerm reports whether one of the subject's permissions
// implies p. The zero Permission is never permitted.
func (s *Subject) IsPermittedPerm(p Permission) bool {
	if s == nil {
		return false
	}
	return s.grants.Implies(p)
}

// IsPermittedAll reports whether the subject is permitted every one of
// perms. Like Shiro's isPermittedAll, it is true for no perms at all, and
// false if any of perms is malformed.
func (s *Subject) IsPermittedAll(perms ...string) bool {
	for _, perm := range perms {
		if !s.IsPermitted(perm) {
			return false
		}
	}
	return true
}

// CheckPermission returns nil if the subject is permitted perm. Otherwise
// it returns an error that is a *mortar.Error (errors.As) with
// mortar.CodePermissionDenied and the public message "permission denied:
// <perm>", perm in canonical form (see Permission.String), and that wraps
// ErrPermissionDenied (errors.Is).
//
// A malformed perm is the caller's mistake, not a denial: the error is
// then a *mortar.Error with mortar.CodeInvalidArgument that wraps
// ErrBadPermission.
func (s *Subject) CheckPermission(perm string) error {
	p, err := ParsePermission(perm)
	if err != nil {
		return &codedError{
			public: &mortar.Error{Code: mortar.CodeInvalidArgument, Message: strings.TrimPrefix(err.Error(), "auth: ")},
			cause:  err,
		}
	}
	if s.IsPermittedPerm(p) {
		return nil
	}
	return denied("permission denied: %s", publicName(p.String()))
}

// HasRole reports whether the subject has role, compared exactly.
func (s *Subject) HasRole(role string) bool {
	if s == nil {
		return false
	}
	_, ok := s.roleSet[role]
	return ok
}

// HasAllRoles reports whether the subject has every one of roles. Like
// Shiro's hasAllRoles, it is true for no roles at all.
func (s *Subject) HasAllRoles(roles ...string) bool {
	for _, r := range roles {
		if !s.HasRole(r) {
			return false
		}
	}
	return true
}

// CheckRole returns nil if the subject has role. Otherwise it returns an
// error that is a *mortar.Error with mortar.CodePermissionDenied and the
// public message "role required: <role>", and that wraps
// ErrPermissionDenied.
func (s *Subject) CheckRole(role string) error {
	if s.HasRole(role) {
		return nil
	}
	return denied("role required: %s", publicName(role))
}

// RunAs returns a subject that acts as target on behalf of s, Shiro's
// runAs: it has target's principal, realm, roles and permissions, and
// remembers s's principal as OriginalPrincipal, for audit logs.
//
// s must be permitted auth:runas:<p>, where p is target's principal
// escaped with EscapePart: a grant of auth:runas:* lets a subject run as
// anyone, auth:runas:alice,bob as either of those. Otherwise RunAs returns
// CheckPermission's error, which wraps ErrPermissionDenied.
//
// Running as from a subject that already runs as another is checked
// against the permissions it runs with, and keeps the first original
// principal: if bob runs as alice and then as carol, alice's permissions
// must allow carol, and the result's OriginalPrincipal is bob. It is an
// error for target to be nil or to have no principal.
func (s *Subject) RunAs(target *Subject) (*Subject, error) {
	if target == nil || target.principal == "" {
		return nil, errors.New("auth: run as: target subject has no principal")
	}
	if err := s.CheckPermission(runAsPrefix + EscapePart(target.principal)); err != nil {
		return nil, err
	}
	r := *target // shares target's immutable roles and grants
	r.runAs, r.original = true, s.OriginalPrincipal()
	return &r, nil
}

// IsRunAs reports whether the subject runs as another principal than the
// one that authenticated.
func (s *Subject) IsRunAs() bool { return s != nil && s.runAs }

// OriginalPrincipal returns the principal that authenticated: the first
// one of a chain of RunAs calls, or Principal when the subject does not
// run as another.
func (s *Subject) OriginalPrincipal() string {
	if s.IsRunAs() {
		return s.original
	}
	return s.Principal()
}

// subjectKey is the context key of the Subject; see WithSubject.
type subjectKey struct{}

// WithSubject returns a copy of ctx that carries s, for SubjectFrom.
func WithSubject(ctx context.Context, s *Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, s)
}

// SubjectFrom returns the Subject that WithSubject put in ctx. ok is false
// when there is none, or when it is nil; s is then nil, which is permitted
// nothing.
func SubjectFrom(ctx context.Context) (s *Subject, ok bool) {
	s, _ = ctx.Value(subjectKey{}).(*Subject)
	return s, s != nil
}

// EscapePart makes an arbitrary string, such as a user name or a key,
// usable as one subpart of a permission: "config:write:" +
// EscapePart(key) always has exactly three parts, whatever the key.
//
// It percent-encodes, as %XX with upper-case hex digits, the bytes that
// mean something in a permission (':', ',' and '*'), '%' itself, ASCII
// whitespace and control characters (U+0000 to U+0020 and U+007F), and
// each byte of invalid UTF-8; everything else, other Unicode included, is
// left as is. So the result is valid UTF-8, holds no divider or *, does
// not start or end with a byte that parsing trims, and unescapes (with
// url.PathUnescape, say) back to s: different strings escape differently.
//
// EscapePart does not lower-case: a permission is compared
// case-insensitively unless parsed with ParsePermissionCase, so "Alice"
// and "alice" escape to subparts that ParsePermission makes equal, and the
// %XX escapes become %xx. A grant written by hand must spell the escapes
// the same way when parsed case-sensitively.
//
// The empty string escapes to "", which is not a subpart: parsing drops a
// trailing empty one, so "a:" + EscapePart("") is the permission "a".
// Callers must not pass "". A string of at most (MaxPermissionLen -
// len(prefix))/3 bytes always fits within MaxPermissionLen once escaped
// and appended to an ASCII prefix, even lower-cased: 200 bytes fit after
// any prefix of up to 424.
func EscapePart(s string) string {
	i := 0
	for i < len(s) {
		n, esc := nextEscape(s[i:])
		if esc {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		n, esc := nextEscape(s[i:])
		if esc {
			const hex = "0123456789ABCDEF"
			c := s[i]
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// nextEscape returns the length of the character at the start of s, and
// whether EscapePart escapes it; an escaped character is one byte long.
func nextEscape(s string) (n int, esc bool) {
	c := s[0]
	if c < utf8.RuneSelf {
		switch {
		case c <= ' ', c == 0x7f, c == '%', c == partDivider, c == subpartDivider, c == '*':
			return 1, true
		}
		return 1, false
	}
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && n == 1 {
		return 1, true
	}
	return n, false
}

// codedError is an error that is both a *mortar.Error, with the code and
// public message that leave the process, and this package's cause, such
// as ErrPermissionDenied, for errors.Is. Its text is the *mortar.Error's.
type codedError struct {
	public *mortar.Error
	cause  error
}

func (e *codedError) Error() string   { return e.public.Error() }
func (e *codedError) Unwrap() []error { return []error{e.public, e.cause} }

// denied returns a permission-denied codedError with a formatted public
// message.
func denied(format string, args ...any) error {
	return &codedError{public: mortar.Errorf(mortar.CodePermissionDenied, format, args...), cause: ErrPermissionDenied}
}

// maxPublicName bounds how much of a caller's string a public message
// quotes.
const maxPublicName = 128

// publicName returns s for a public error message: as is when it is at
// most maxPublicName bytes of valid, printable UTF-8 (see
// strconv.IsPrint), otherwise Go-quoted and cut to maxPublicName
// characters, so that a message never carries control characters into a
// log line or a header.
func publicName(s string) string {
	if len(s) <= maxPublicName && utf8.ValidString(s) && strings.IndexFunc(s, notPrintable) < 0 {
		return s
	}
	return fmt.Sprintf("%.*q", maxPublicName, s)
}

func notPrintable(r rune) bool { return !strconv.IsPrint(r) }
