package api

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
)

// Authenticator resolves the credential a request carries into a subject,
// and hears of the permission denials the operations answer, for the
// audit log. The node's security layer implements it.
type Authenticator interface {
	// Authenticate returns the subject credential stands for. addr is the
	// caller's network address when the transport knows it. A bad
	// credential is an error with code unauthenticated.
	Authenticate(ctx context.Context, credential, addr string) (*auth.Subject, error)
	// Denied reports that s was refused perm on op.
	Denied(ctx context.Context, s *auth.Subject, op, perm string)
	// RunAs returns s running as the user named principal (Subject.RunAs:
	// s must be permitted auth:runas:PRINCIPAL).
	RunAs(ctx context.Context, s *auth.Subject, principal string) (*auth.Subject, error)
}

// unguarded is the subject of every request on a Mux without an
// Authenticator: it may do anything.
var unguarded = auth.NewSubject(auth.SubjectInfo{
	Principal:   "unguarded",
	Permissions: []auth.Permission{auth.MustParsePermission("*")},
})

// SetAuthenticator makes m authenticate every request with a: a request
// to an operation that is not public must carry a credential, and runs as
// its subject. Without an Authenticator every request may do anything.
// Set it before serving.
func (m *Mux) SetAuthenticator(a Authenticator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.auth = a
}

// HandlePublic registers op as Handle does, as an operation that needs no
// credential (logging in, the token verification keys). A credential it
// does carry is still authenticated.
func (m *Mux) HandlePublic(op string, h Handler) {
	m.Handle(op, h)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.public[op] = true
}

// subject authenticates req, or returns the unguarded subject on a Mux
// without an Authenticator, or nil for a public operation called without
// a credential.
func (m *Mux) subject(ctx context.Context, req *Request, a Authenticator, public bool) (*auth.Subject, error) {
	if a == nil {
		return unguarded, nil
	}
	if req.Credential == "" {
		if public {
			return nil, nil
		}
		return nil, mortar.Errorf(mortar.CodeUnauthenticated, "credentials required: log in (mortar login) or pass a token")
	}
	s, err := a.Authenticate(ctx, req.Credential, req.Addr)
	if err != nil || req.RunAs == "" {
		return s, err
	}
	return a.RunAs(ctx, s, req.RunAs)
}

// Check returns nil when the subject ctx carries (auth.SubjectFrom) is
// permitted perm, and an error with code permission_denied otherwise, or
// when ctx carries no subject. An empty perm asks only for an
// authenticated subject.
func Check(ctx context.Context, perm string) error {
	s, ok := auth.SubjectFrom(ctx)
	if !ok {
		return mortar.Errorf(mortar.CodeUnauthenticated, "credentials required: log in (mortar login) or pass a token")
	}
	if perm == "" {
		return nil
	}
	return s.CheckPermission(perm)
}

// Perm is a permission template, compiled against a request type: the
// permission an operation asks of its caller. Its parts are literal, or
// "{Field}", the request's string field of that Go name (promoted fields
// of embedded structs count), or "{Field|default}" for a field that may be
// empty. A field's value is escaped into one subpart (auth.EscapePart). A
// field that is empty without a default ends the permission there, so
// "registry:read:{Service}" asks "registry:read" of a request for every
// service: a broader permission, never a narrower one.
type perm struct {
	parts []permPart
}

type permPart struct {
	lit   string
	field []int // index path of a string field; nil for a literal
	def   string
}

// compilePerm compiles tmpl against Req. It panics on a template that
// names no string field of Req: that is a programming error.
func compilePerm[Req any](tmpl string) perm {
	t := reflect.TypeFor[Req]()
	var p perm
	if tmpl == "" {
		return p
	}
	for _, s := range strings.Split(tmpl, ":") {
		name, ok := strings.CutPrefix(s, "{")
		if !ok {
			if strings.ContainsAny(s, "{}") {
				panic(fmt.Sprintf("api: permission %q: bad part %q", tmpl, s))
			}
			p.parts = append(p.parts, permPart{lit: s})
			continue
		}
		name, ok = strings.CutSuffix(name, "}")
		if !ok {
			panic(fmt.Sprintf("api: permission %q: bad part %q", tmpl, s))
		}
		name, def, _ := strings.Cut(name, "|")
		idx, ok := stringField(t, name)
		if !ok {
			panic(fmt.Sprintf("api: permission %q: %s has no string field %s", tmpl, t, name))
		}
		p.parts = append(p.parts, permPart{field: idx, def: def})
	}
	if _, err := auth.ParsePermission(p.eval(reflect.Value{})); err != nil {
		panic(fmt.Sprintf("api: permission %q: %v", tmpl, err))
	}
	return p
}

// stringField returns the index path of the string field at path (Go
// field names joined by dots, through struct fields, not pointers).
func stringField(t reflect.Type, path string) ([]int, bool) {
	var idx []int
	for name := range strings.SplitSeq(path, ".") {
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		f, ok := t.FieldByName(name)
		if !ok || !f.IsExported() {
			return nil, false
		}
		for _, i := range f.Index {
			if t.Field(i).Type.Kind() == reflect.Pointer {
				return nil, false
			}
			t = t.Field(i).Type
		}
		idx = append(idx, f.Index...)
	}
	return idx, t.Kind() == reflect.String
}

// eval returns the permission for the request v (a struct value; the
// zero Value gives every field its default).
func (p perm) eval(v reflect.Value) string {
	var b strings.Builder
	for i, part := range p.parts {
		s := part.lit
		if part.field != nil {
			if v.IsValid() {
				s = v.FieldByIndex(part.field).String()
			}
			if s == "" {
				s = part.def
			} else {
				s = auth.EscapePart(s)
			}
			if s == "" {
				break
			}
		}
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s)
	}
	return b.String()
}

// checkRequest checks the permission p asks of req.
func checkRequest[Req any](ctx context.Context, p perm, req *Req) error {
	if len(p.parts) == 0 {
		return Check(ctx, "")
	}
	return Check(ctx, p.eval(reflect.ValueOf(req).Elem()))
}

// denied reports whether err is a permission denial.
func denied(err error) bool { return errors.Is(err, auth.ErrPermissionDenied) }

// Allowed reports whether the subject ctx carries is permitted perm.
func Allowed(ctx context.Context, perm string) bool { return Check(ctx, perm) == nil }
