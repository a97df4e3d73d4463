package authserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
)

// Authenticate returns the subject a credential stands for: the node's
// internal credential, an API key, or a session token (a JWT the node
// issued, whose session is alive). Any bad credential is the one error
// "invalid credentials" (code unauthenticated); the audit log has the
// reason. It implements api.Authenticator.
func (s *Server) Authenticate(ctx context.Context, cred, addr string) (*auth.Subject, error) {
	if sub, ok := s.internalSubject(cred); ok {
		return sub, nil
	}
	principal, err := s.principal(ctx, cred)
	if err == nil {
		var sub *auth.Subject
		if sub, err = s.subject(ctx, principal); err == nil {
			return sub, nil
		}
	}
	if errors.Is(err, errBadCredential) {
		s.audit.record(authwire.AuditEntry{Kind: "auth.fail", Principal: principal, Addr: addr, Detail: err.Error()})
		return nil, errInvalid
	}
	return nil, err
}

// errBadCredential wraps every reason a credential is refused: the caller
// is told only errInvalid.
var errBadCredential = errors.New("bad credential")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadCredential}, args...)...)
}

// principal returns whom cred names, once it is verified.
func (s *Server) principal(ctx context.Context, cred string) (string, error) {
	switch {
	case len(cred) > authwire.MaxCredentialLen:
		return "", bad("credential of %d bytes", len(cred))
	case strings.HasPrefix(cred, authwire.APIKeyPrefix):
		return s.apiKeyPrincipal(ctx, cred)
	case strings.Count(cred, ".") == 2:
		return s.tokenPrincipal(ctx, cred)
	case cred == "":
		return "", bad("no credential")
	default:
		return "", bad("unknown credential form")
	}
}

func (s *Server) apiKeyPrincipal(ctx context.Context, cred string) (string, error) {
	id, hash, err := authwire.ParseAPIKey(cred)
	if err != nil {
		return "", bad("%v", err)
	}
	s.mu.RLock()
	k := s.keys[id]
	s.mu.RUnlock()
	if k == nil {
		// Perhaps created on another node a moment ago; a flood of made-up
		// keys must not become a flood of reads, though.
		if !s.misses.Allow() {
			return "", bad("no API key %s in the cache, and store reads for unknown keys are rate limited", id)
		}
		var r keyRecord
		rev, err := s.read(ctx, apiKeyPrefix+id, &r)
		if err != nil {
			return "", err
		}
		if rev == 0 {
			return "", bad("no API key %s", id)
		}
		k = &r
	}
	if !authwire.SameHash(k.Hash, hash) {
		return k.User, bad("API key %s: wrong secret", id)
	}
	if !k.Expires.IsZero() && !s.cfg.Now().Before(k.Expires) {
		return k.User, bad("API key %s expired", id)
	}
	return k.User, nil
}

func (s *Server) tokenPrincipal(ctx context.Context, cred string) (string, error) {
	cl, err := s.keyring.VerifyCached(s.tokens, cred)
	if err != nil {
		return "", bad("%v", err)
	}
	if cl.SessionID == "" {
		return cl.Subject, nil
	}
	if _, err := s.liveSession(ctx, cl.Subject, cl.SessionID); err != nil {
		return cl.Subject, err
	}
	return cl.Subject, nil
}

// subject returns the compiled subject of principal: its roles'
// permissions and its own. A role the watch has not delivered yet is read
// from the store. The compiled subject is cached unless the users or
// roles changed while it was built.
func (s *Server) subject(ctx context.Context, principal string) (*auth.Subject, error) {
	s.mu.RLock()
	sub, gen := s.subjects[principal], s.gen
	s.mu.RUnlock()
	if sub != nil {
		return sub, nil
	}
	u, err := s.getUser(ctx, principal)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, bad("no user %q", principal)
	}
	if u.Disabled {
		return nil, bad("user %q is disabled", principal)
	}
	info := auth.SubjectInfo{Principal: u.Name, Realm: cmp.Or(u.Realm, storeRealmName), Roles: u.Roles}
	for _, p := range s.grants(u) {
		if pp, err := auth.ParsePermission(p); err == nil {
			info.Permissions = append(info.Permissions, pp)
		}
	}
	sub = auth.NewSubject(info)
	s.mu.Lock()
	if s.gen == gen {
		s.subjects[principal] = sub
	}
	s.mu.Unlock()
	return sub, nil
}

// grants returns u's permissions and its roles', as stored; a role the
// cache lacks is read from the store (a role missing there grants
// nothing).
func (s *Server) grants(u *userRecord) []string {
	perms := slices.Clone(u.Permissions)
	for _, name := range u.Roles {
		s.mu.RLock()
		role := s.roles[name]
		s.mu.RUnlock()
		if role == nil {
			var r roleRecord
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			rev, err := s.read(ctx, roleKey(name), &r)
			cancel()
			if err != nil || rev == 0 {
				continue
			}
			role = &r
		}
		perms = append(perms, role.Permissions...)
	}
	return perms
}

// Denied records a permission denial in the audit log. It implements
// api.Authenticator.
func (s *Server) Denied(ctx context.Context, sub *auth.Subject, op, detail string) {
	e := authwire.AuditEntry{Kind: "denied", Op: op, Permission: strings.TrimPrefix(detail, "permission denied: "), Detail: detail}
	if sub != nil {
		e.Principal = sub.Principal()
	}
	s.audit.record(e)
}

// RunAs returns sub running as the user principal: sub must be permitted
// auth:runas:PRINCIPAL. Refusals and successes are audited. It implements
// api.Authenticator.
func (s *Server) RunAs(ctx context.Context, sub *auth.Subject, principal string) (*auth.Subject, error) {
	target, err := s.subject(ctx, principal)
	if errors.Is(err, errBadCredential) {
		// Say no more than for a user that exists: permission denied,
		// unless the caller may run as anyone.
		if !sub.IsPermitted("auth:runas:" + auth.EscapePart(principal)) {
			s.Denied(ctx, sub, "run-as", "permission denied: auth:runas:"+auth.EscapePart(principal))
			return nil, mortar.Errorf(mortar.CodePermissionDenied, "permission denied: auth:runas:%s", auth.EscapePart(principal))
		}
		return nil, mortar.Errorf(mortar.CodeNotFound, "run as %q: no such user", principal)
	}
	if err != nil {
		return nil, err
	}
	r, err := sub.RunAs(target)
	if err != nil {
		s.Denied(ctx, sub, "run-as", mortar.ErrorMessage(err))
		return nil, err
	}
	return r, nil
}

// storeRealmName names the store's realm.
const storeRealmName = "mortar"

// storeRealm logs users in with the passwords (and second factors) in
// the store.
type storeRealm struct{ s *Server }

func (r *storeRealm) Name() string { return storeRealmName }

func (r *storeRealm) Supports(tok auth.AuthenticationToken) bool {
	_, ok := tok.(auth.UsernamePassword)
	return ok
}

// Authenticate checks a password, then a second factor. An unknown user,
// or one without a password, costs a dummy verification, so timing does
// not tell.
func (r *storeRealm) Authenticate(ctx context.Context, tok auth.AuthenticationToken) (auth.SubjectInfo, error) {
	up := tok.(auth.UsernamePassword)
	s := r.s
	// Read from the leader, not the cache: a password changed or a second
	// factor added a moment ago must count at once.
	var u *userRecord
	var rec userRecord
	rev, err := s.read(ctx, userKey(up.Username), &rec)
	if err != nil {
		return auth.SubjectInfo{}, err
	}
	if rev != 0 {
		u = &rec
	}
	if u == nil || u.Hash == "" {
		s.hasher.DummyVerify(ctx, up.Password)
		return auth.SubjectInfo{}, fmt.Errorf("%w: no user or no password", auth.ErrInvalidCredentials)
	}
	ok, rehash, err := s.hasher.Verify(ctx, u.Hash, up.Password)
	if err != nil && ctx.Err() != nil {
		return auth.SubjectInfo{}, mortar.Errorf(mortar.CodeDeadlineExceeded, "login: %v", ctx.Err())
	}
	if err != nil || !ok {
		return auth.SubjectInfo{}, fmt.Errorf("%w: wrong password", auth.ErrInvalidCredentials)
	}
	if u.TOTP != "" {
		ok, err := s.totp.Verify(u.Name, u.TOTP, up.TOTP, s.cfg.Now())
		if err != nil || !ok {
			return auth.SubjectInfo{}, fmt.Errorf("%w: wrong or missing second factor", auth.ErrInvalidCredentials)
		}
	}
	if u.Disabled {
		return auth.SubjectInfo{}, fmt.Errorf("%w: disabled", auth.ErrInvalidCredentials)
	}
	if rehash {
		s.rehash(ctx, u.Name, up.Password)
	}
	return auth.SubjectInfo{Principal: u.Name, Roles: u.Roles}, nil
}

// rehash stores password hashed with the current parameters, after a
// login verified it against older ones. A failure only delays it.
func (s *Server) rehash(ctx context.Context, user, password string) {
	h, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	_, err = update(ctx, s, userKey(user), "user", func(u *userRecord) error {
		u.Hash, u.Updated = h, s.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		s.log.Info("password rehash postponed", "user", user, "err", err)
	}
}
