package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// Register adds the security layer's operations to mux, and makes mux
// authenticate with s.
func (s *Server) Register(mux *api.Mux) {
	mux.SetAuthenticator(s)
	mux.HandlePublic("auth.login", func(ctx context.Context, r *api.Request) (any, error) {
		req, err := api.Decode[authwire.LoginRequest](r.Body)
		if err != nil {
			return nil, err
		}
		return s.login(ctx, &req, r.Addr)
	})
	mux.HandlePublic("auth.jwks", func(context.Context, *api.Request) (any, error) {
		return json.RawMessage(s.keyring.JWKS()), nil
	})
	mux.Handle("auth.whoami", s.whoami)
	mux.Handle("auth.verify", api.Typed("", func(ctx context.Context, _ string, req *authwire.VerifyRequest) (any, error) {
		return s.verify(ctx, req.Credential)
	}))
	mux.Handle("auth.logout", s.logout)

	mux.Handle("auth.user.add", api.Typed("auth:user:write", s.addUser))
	mux.Handle("auth.user.get", api.Typed("auth:user:read", s.getUserOp))
	mux.Handle("auth.user.list", api.Typed("auth:user:read", s.listUsers))
	mux.Handle("auth.user.remove", api.Typed("auth:user:write", s.removeUser))
	mux.Handle("auth.user.passwd", api.Typed("", s.passwd))
	mux.Handle("auth.user.grant", api.Typed("auth:user:write", s.grantUser(true)))
	mux.Handle("auth.user.revoke", api.Typed("auth:user:write", s.grantUser(false)))

	mux.Handle("auth.totp.enroll", api.Typed("", s.totpEnroll))
	mux.Handle("auth.totp.confirm", api.Typed("", s.totpConfirm))
	mux.Handle("auth.totp.disable", api.Typed("", s.totpDisable))

	mux.Handle("auth.role.add", api.Typed("auth:role:write", s.addRole))
	mux.Handle("auth.role.list", api.Typed("auth:role:read", s.listRoles))
	mux.Handle("auth.role.remove", api.Typed("auth:role:write", s.removeRole))
	mux.Handle("auth.role.grant", api.Typed("auth:role:write", s.grantRole(true)))
	mux.Handle("auth.role.revoke", api.Typed("auth:role:write", s.grantRole(false)))

	mux.Handle("auth.apikey.create", api.Typed("auth:apikey:write:{User}", func(ctx context.Context, _ string, req *authwire.APIKeyRequest) (any, error) {
		return s.createAPIKey(ctx, req, principalOf(ctx))
	}))
	mux.Handle("auth.apikey.list", api.Typed("auth:apikey:read:{User}", s.listAPIKeys))
	mux.Handle("auth.apikey.revoke", api.Typed("", s.revokeAPIKey))

	mux.Handle("auth.session.list", api.Typed("", s.listSessions))
	mux.Handle("auth.session.revoke", api.Typed("", s.revokeSessionsOp))
	mux.Handle("auth.audit", api.Typed("auth:audit:read", func(ctx context.Context, _ string, req *authwire.AuditRequest) (any, error) {
		return s.auditQuery(ctx, req)
	}))
	mux.Handle("auth.key.rotate", api.Typed("auth:key:write", func(ctx context.Context, _ string, _ *struct{}) (any, error) {
		id, err := s.rotateSigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		s.audit.record(authwire.AuditEntry{Kind: "key.rotate", Principal: principalOf(ctx), Target: id})
		return map[string]string{"kid": id}, nil
	}))
}

// JWKSHandler serves the public keys that verify the node's tokens
// (GET /auth/jwks.json).
func (s *Server) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(s.keyring.JWKS())
	})
}

// principalOf returns the principal of the subject in ctx.
func principalOf(ctx context.Context) string {
	if sub, ok := auth.SubjectFrom(ctx); ok {
		return sub.Principal()
	}
	return ""
}

// selfOr permits a subject acting on itself, or one permitted perm.
func selfOr(ctx context.Context, name, perm string) error {
	if sub, ok := auth.SubjectFrom(ctx); ok && sub.Principal() == name && !sub.IsRunAs() {
		return nil
	}
	return api.Check(ctx, perm)
}

func (s *Server) whoami(ctx context.Context, r *api.Request) (any, error) {
	if _, err := api.Decode[struct{}](r.Body); err != nil {
		return nil, err
	}
	sub, ok := auth.SubjectFrom(ctx)
	if !ok {
		return nil, api.Check(ctx, "")
	}
	w := &authwire.WhoAmI{User: sub.Principal(), Realm: sub.Realm(), Roles: nonNil(sub.Roles()), Permissions: []string{}}
	if sub.IsRunAs() {
		w.RunAsOf = sub.OriginalPrincipal()
	}
	if cl, err := s.keyring.VerifyCached(s.tokens, r.Credential); err == nil {
		w.Session = cl.SessionID
	}
	if u, err := s.getUser(ctx, sub.Principal()); err == nil && u != nil {
		w.Permissions = union(w.Permissions, s.grants(u))
	}
	return w, nil
}

// verify resolves a credential a service received into its subject, for
// the service to check permissions itself (auth.Verifier). Any
// authenticated caller may ask: holding the credential is the right to
// use it.
func (s *Server) verify(ctx context.Context, cred string) (*authwire.VerifyResponse, error) {
	if _, ok := s.internalSubject(cred); ok {
		return nil, errInvalid // the internal credential never leaves the node
	}
	sub, err := s.Authenticate(ctx, cred, "")
	if err != nil {
		return nil, err
	}
	resp := &authwire.VerifyResponse{Principal: sub.Principal(), Realm: sub.Realm(), Roles: nonNil(sub.Roles()),
		Permissions: nonNil(s.permissionStrings(ctx, sub.Principal()))}
	if cl, err := s.keyring.VerifyCached(s.tokens, cred); err == nil {
		resp.Expires = cl.ExpiresAt
	} else if id, _, err := authwire.ParseAPIKey(cred); err == nil {
		s.mu.RLock()
		if k := s.keys[id]; k != nil {
			resp.Expires = k.Expires
		}
		s.mu.RUnlock()
	}
	return resp, nil
}

// logout ends the caller's session (a no-op for an API key).
func (s *Server) logout(ctx context.Context, r *api.Request) (any, error) {
	if _, err := api.Decode[struct{}](r.Body); err != nil {
		return nil, err
	}
	if err := api.Check(ctx, ""); err != nil {
		return nil, err
	}
	cl, err := s.keyring.VerifyCached(s.tokens, r.Credential)
	if err != nil || cl.SessionID == "" {
		return map[string]int{"ended": 0}, nil
	}
	n, err := s.revokeSessions(ctx, cl.Subject, cl.SessionID)
	if err != nil {
		return nil, err
	}
	s.tokens.Forget(r.Credential)
	s.audit.record(authwire.AuditEntry{Kind: "logout", Principal: cl.Subject, Target: cl.SessionID})
	return map[string]int{"ended": n}, nil
}

func (s *Server) addUser(ctx context.Context, _ string, req *authwire.UserRequest) (any, error) {
	if err := checkNames("user", []string{req.Name}); err != nil {
		return nil, err
	}
	if err := checkNames("role", req.Roles); err != nil {
		return nil, err
	}
	if err := checkPermissions(req.Permissions); err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	u := &userRecord{Name: req.Name, Roles: req.Roles, Permissions: req.Permissions, Created: now, Updated: now}
	if req.Password != "" {
		h, err := s.hashPassword(ctx, req.Password)
		if err != nil {
			return nil, err
		}
		u.Hash = h
	}
	if err := s.create(ctx, userKey(req.Name), "user "+req.Name, u); err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "user.add", Principal: principalOf(ctx), Target: req.Name})
	return u.view(), nil
}

// hashPassword hashes a new password, refusing what cannot be one.
func (s *Server) hashPassword(ctx context.Context, password string) (string, error) {
	if len(password) < 8 {
		return "", mortar.Errorf(mortar.CodeInvalidArgument, "password: at least 8 characters")
	}
	if len(password) > auth.MaxPasswordLen {
		return "", mortar.Errorf(mortar.CodeInvalidArgument, "password: at most %d bytes", auth.MaxPasswordLen)
	}
	h, err := s.hasher.Hash(ctx, password)
	if err != nil {
		if ctx.Err() != nil {
			return "", mortar.Errorf(mortar.CodeDeadlineExceeded, "hash password: %v", ctx.Err())
		}
		return "", mortar.Errorf(mortar.CodeInvalidArgument, "password: %v", err)
	}
	return h, nil
}

func (s *Server) getUserOp(ctx context.Context, _ string, req *authwire.NameRequest) (any, error) {
	var u userRecord
	if err := s.readExisting(ctx, userKey(req.Name), "user", req.Name, &u); err != nil {
		return nil, err
	}
	return u.view(), nil
}

// readExisting reads key into v: not_found, naming the what called name,
// when it does not exist.
func (s *Server) readExisting(ctx context.Context, key, what, name string, v any) error {
	rev, err := s.read(ctx, key, v)
	if err != nil {
		return err
	}
	if rev == 0 {
		return mortar.Errorf(mortar.CodeNotFound, "no %s %q", what, name)
	}
	return nil
}

func (s *Server) listUsers(ctx context.Context, _ string, _ *struct{}) (any, error) {
	out, err := listRecords(ctx, s, userPrefix, nil, (*userRecord).view)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return map[string]any{"users": out}, err
}

// listRecords decodes every record under prefix into a T, and returns the
// views of those keep accepts (nil keeps all), never nil.
func listRecords[T, V any](ctx context.Context, s *Server, prefix string, keep func(*T) bool, view func(*T) V) ([]V, error) {
	out := []V{}
	err := s.each(ctx, prefix, func(b []byte) {
		var r T
		if json.Unmarshal(b, &r) == nil && (keep == nil || keep(&r)) {
			out = append(out, view(&r))
		}
	})
	return out, err
}

// each calls fn with the value of every key of the auth bucket under
// prefix, read from the store (not the cache, which may lag a write just
// made elsewhere).
func (s *Server) each(ctx context.Context, prefix string, fn func([]byte)) error {
	lister, err := s.st.Auth.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return store.APIError(err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		b, _, err := s.st.KVGet(ctx, store.AuthBucket, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return store.APIError(err)
		}
		fn(b)
	}
	return nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) removeUser(ctx context.Context, _ string, req *authwire.NameRequest) (any, error) {
	var u userRecord
	if err := s.readExisting(ctx, userKey(req.Name), "user", req.Name, &u); err != nil {
		return nil, err
	}
	if err := s.st.Auth.Delete(ctx, userKey(req.Name)); err != nil {
		return nil, store.APIError(err)
	}
	// Its sessions and keys die with it.
	sessions, err := s.revokeSessions(ctx, req.Name, "")
	if err != nil {
		return nil, err
	}
	keys, err := s.revokeKeysOf(ctx, req.Name)
	if err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "user.remove", Principal: principalOf(ctx), Target: req.Name})
	return map[string]int{"sessions": sessions, "apikeys": keys}, nil
}

func (s *Server) passwd(ctx context.Context, _ string, req *authwire.PasswordRequest) (any, error) {
	if err := selfOr(ctx, req.Name, "auth:user:write"); err != nil {
		return nil, err
	}
	self := principalOf(ctx) == req.Name
	if self {
		var u userRecord
		if _, err := s.read(ctx, userKey(req.Name), &u); err != nil {
			return nil, err
		}
		ok := false
		if u.Hash != "" {
			ok, _, _ = s.hasher.Verify(ctx, u.Hash, req.Old)
		}
		if !ok && !api.Allowed(ctx, "auth:user:write") {
			s.audit.record(authwire.AuditEntry{Kind: "passwd.fail", Principal: req.Name, Detail: "wrong old password"})
			return nil, errInvalid
		}
	}
	h, err := s.hashPassword(ctx, req.Password)
	if err != nil {
		return nil, err
	}
	_, err = s.changeUser(ctx, req.Name, "user.passwd", "", func(u *userRecord) error {
		u.Hash = h
		return nil
	})
	return nil, err
}

// changeUser applies fn to the record of user name (stamping Updated),
// written back with compare-and-set, and audits the change as kind.
func (s *Server) changeUser(ctx context.Context, name, kind, detail string, fn func(*userRecord) error) (*userRecord, error) {
	u, err := update(ctx, s, userKey(name), "user "+name, func(u *userRecord) error {
		if err := fn(u); err != nil {
			return err
		}
		u.Updated = s.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: kind, Principal: principalOf(ctx), Target: name, Detail: detail})
	return u, nil
}

// totpEnroll gives a user a new second factor to confirm: the user
// itself, or a caller permitted auth:user:write.
func (s *Server) totpEnroll(ctx context.Context, _ string, req *authwire.TOTPRequest) (any, error) {
	if err := selfOr(ctx, req.Name, "auth:user:write"); err != nil {
		return nil, err
	}
	key, err := auth.NewTOTP("mortar", req.Name)
	if err != nil {
		return nil, err
	}
	if _, err := s.changeUser(ctx, req.Name, "totp.enroll", "", func(u *userRecord) error {
		u.TOTPPending = key.Secret
		return nil
	}); err != nil {
		return nil, err
	}
	return authwire.TOTPEnrollment{Secret: key.Secret, URL: key.URL}, nil
}

// totpConfirm turns an enrolled second factor on, given a current code
// from it.
func (s *Server) totpConfirm(ctx context.Context, _ string, req *authwire.TOTPRequest) (any, error) {
	if err := selfOr(ctx, req.Name, "auth:user:write"); err != nil {
		return nil, err
	}
	var u userRecord
	if err := s.readExisting(ctx, userKey(req.Name), "user", req.Name, &u); err != nil {
		return nil, err
	}
	if u.TOTPPending == "" {
		return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "no second factor enrolled for %s: auth.totp.enroll first", req.Name)
	}
	if ok, _ := s.totp.Verify(u.Name, u.TOTPPending, req.Code, s.cfg.Now()); !ok {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "the code does not match the enrolled second factor")
	}
	return nil, s.setTOTP(ctx, req.Name, "totp.confirm", u.TOTPPending, u.TOTPPending)
}

// totpDisable removes a user's second factor: a caller permitted
// auth:user:write, or the user with a current code (a stolen session
// alone cannot remove it).
func (s *Server) totpDisable(ctx context.Context, _ string, req *authwire.TOTPRequest) (any, error) {
	if err := selfOr(ctx, req.Name, "auth:user:write"); err != nil {
		return nil, err
	}
	if !api.Allowed(ctx, "auth:user:write") {
		var u userRecord
		if err := s.readExisting(ctx, userKey(req.Name), "user", req.Name, &u); err != nil {
			return nil, err
		}
		if ok, _ := s.totp.Verify(u.Name, u.TOTP, req.Code, s.cfg.Now()); u.TOTP != "" && !ok {
			return nil, mortar.Errorf(mortar.CodeInvalidArgument, "a current code of the second factor is required to remove it")
		}
	}
	return nil, s.setTOTP(ctx, req.Name, "totp.disable", "", "")
}

// setTOTP sets a user's second factor to secret and clears its pending
// one (with pending set, only if the pending one is still that), audited
// as kind.
func (s *Server) setTOTP(ctx context.Context, name, kind, secret, pending string) error {
	_, err := s.changeUser(ctx, name, kind, "", func(u *userRecord) error {
		if pending != "" && u.TOTPPending != pending {
			return mortar.Errorf(mortar.CodeConflict, "the enrollment changed meanwhile; enroll again")
		}
		u.TOTP, u.TOTPPending = secret, ""
		return nil
	})
	return err
}

func (s *Server) grantUser(grant bool) func(context.Context, string, *authwire.GrantRequest) (any, error) {
	return func(ctx context.Context, _ string, req *authwire.GrantRequest) (any, error) {
		if err := checkNames("role", req.Roles); err != nil {
			return nil, err
		}
		if err := checkPermissions(req.Permissions); err != nil {
			return nil, err
		}
		u, err := s.changeUser(ctx, req.Name, grantKind("user", grant), grantDetail(req), func(u *userRecord) error {
			if grant {
				u.Roles, u.Permissions = union(u.Roles, req.Roles), union(u.Permissions, req.Permissions)
			} else {
				u.Roles, u.Permissions = without(u.Roles, req.Roles), without(u.Permissions, req.Permissions)
			}
			if len(u.Roles) > authwire.MaxRoles || len(u.Permissions) > authwire.MaxPermissions {
				return mortar.Errorf(mortar.CodeResourceExhausted, "user %s: at most %d roles and %d permissions", req.Name, authwire.MaxRoles, authwire.MaxPermissions)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return u.view(), nil
	}
}

func grantKind(what string, grant bool) string {
	if grant {
		return what + ".grant"
	}
	return what + ".revoke"
}

func grantDetail(req *authwire.GrantRequest) string {
	b, _ := json.Marshal(map[string][]string{"roles": req.Roles, "permissions": req.Permissions})
	return string(b)
}

func (s *Server) addRole(ctx context.Context, _ string, req *authwire.RoleRequest) (any, error) {
	if err := checkNames("role", []string{req.Name}); err != nil {
		return nil, err
	}
	if err := checkPermissions(req.Permissions); err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	r := &roleRecord{Name: req.Name, Permissions: nonNil(req.Permissions), Created: now, Updated: now}
	if err := s.create(ctx, roleKey(req.Name), "role "+req.Name, r); err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "role.add", Principal: principalOf(ctx), Target: req.Name, Detail: grantDetail(&authwire.GrantRequest{Permissions: req.Permissions})})
	return r.view(), nil
}

func (s *Server) listRoles(ctx context.Context, _ string, _ *struct{}) (any, error) {
	out, err := listRecords(ctx, s, rolePrefix, nil, (*roleRecord).view)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return map[string]any{"roles": out}, err
}

func (s *Server) removeRole(ctx context.Context, _ string, req *authwire.NameRequest) (any, error) {
	if req.Name == AdminRole {
		return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "the %s role is built in and cannot be removed", AdminRole)
	}
	var r roleRecord
	if err := s.readExisting(ctx, roleKey(req.Name), "role", req.Name, &r); err != nil {
		return nil, err
	}
	if err := s.st.Auth.Delete(ctx, roleKey(req.Name)); err != nil {
		return nil, store.APIError(err)
	}
	s.audit.record(authwire.AuditEntry{Kind: "role.remove", Principal: principalOf(ctx), Target: req.Name})
	return nil, nil
}

func (s *Server) grantRole(grant bool) func(context.Context, string, *authwire.GrantRequest) (any, error) {
	return func(ctx context.Context, _ string, req *authwire.GrantRequest) (any, error) {
		if len(req.Roles) > 0 {
			return nil, mortar.Errorf(mortar.CodeInvalidArgument, "a role holds permissions, not roles")
		}
		if err := checkPermissions(req.Permissions); err != nil {
			return nil, err
		}
		if req.Name == AdminRole && !grant {
			return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "the %s role is built in: it keeps *", AdminRole)
		}
		r, err := update(ctx, s, roleKey(req.Name), "role "+req.Name, func(r *roleRecord) error {
			if grant {
				r.Permissions = union(r.Permissions, req.Permissions)
			} else {
				r.Permissions = without(r.Permissions, req.Permissions)
			}
			if len(r.Permissions) > authwire.MaxPermissions {
				return mortar.Errorf(mortar.CodeResourceExhausted, "role %s: at most %d permissions", req.Name, authwire.MaxPermissions)
			}
			r.Updated = s.cfg.Now().UTC()
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.audit.record(authwire.AuditEntry{Kind: grantKind("role", grant), Principal: principalOf(ctx), Target: req.Name, Detail: grantDetail(req)})
		return r.view(), nil
	}
}

// createAPIKey stores a new API key acting as req.User; the answer holds
// the key, the one time it is shown.
func (s *Server) createAPIKey(ctx context.Context, req *authwire.APIKeyRequest, by string) (*authwire.APIKey, error) {
	if err := checkNames("user", []string{req.User}); err != nil {
		return nil, err
	}
	if req.TTL < 0 {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "ttl %s: want zero (no expiry) or more", req.TTL)
	}
	if len(req.Name) > 256 {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "name: at most 256 bytes")
	}
	if u, err := s.getUser(ctx, req.User); err != nil {
		return nil, err
	} else if u == nil {
		return nil, mortar.Errorf(mortar.CodeNotFound, "no user %q", req.User)
	}
	key, id := authwire.NewAPIKey()
	now := s.cfg.Now().UTC()
	r := &keyRecord{ID: id, Hash: authwire.HashSecret(key), User: req.User, Name: req.Name, Created: now}
	if req.TTL > 0 {
		r.Expires = now.Add(req.TTL)
	}
	if err := s.create(ctx, apiKeyPrefix+id, "API key", r); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.keys[id] = r
	s.mu.Unlock()
	s.audit.record(authwire.AuditEntry{Kind: "apikey.create", Principal: by, Target: req.User, Detail: id})
	v := r.view()
	v.Key = key
	return &v, nil
}

func (s *Server) listAPIKeys(ctx context.Context, _ string, req *authwire.APIKeyRef) (any, error) {
	out, err := listRecords(ctx, s, apiKeyPrefix, func(k *keyRecord) bool {
		return (req.User == "" || k.User == req.User) && (req.ID == "" || k.ID == req.ID)
	}, (*keyRecord).view)
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return map[string]any{"apikeys": out}, err
}

func (s *Server) revokeAPIKey(ctx context.Context, _ string, req *authwire.APIKeyRef) (any, error) {
	if req.ID == "" {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "name the key's id")
	}
	var k keyRecord
	rev, err := s.read(ctx, apiKeyPrefix+req.ID, &k)
	if err != nil {
		return nil, err
	}
	if rev == 0 {
		// Say the same whether the key never existed or is not the
		// caller's to see.
		if err := api.Check(ctx, "auth:apikey:write"); err != nil {
			return nil, err
		}
		return nil, mortar.Errorf(mortar.CodeNotFound, "no API key %q", req.ID)
	}
	if err := selfOr(ctx, k.User, "auth:apikey:write:"+auth.EscapePart(k.User)); err != nil {
		return nil, err
	}
	if err := s.deleteKey(ctx, req.ID); err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "apikey.revoke", Principal: principalOf(ctx), Target: k.User, Detail: req.ID})
	return nil, nil
}

func (s *Server) deleteKey(ctx context.Context, id string) error {
	if err := s.st.Auth.Delete(ctx, apiKeyPrefix+id); err != nil {
		return store.APIError(err)
	}
	s.mu.Lock()
	old := s.keys[id]
	delete(s.keys, id) // at once here; the watch tells the other nodes
	s.mu.Unlock()
	if old != nil {
		s.kickNATS([]kickTarget{{old.User, apiKeyTag(id)}})
	}
	return nil
}

// revokeKeysOf deletes every API key of user.
func (s *Server) revokeKeysOf(ctx context.Context, user string) (int, error) {
	ids, err := listRecords(ctx, s, apiKeyPrefix, func(k *keyRecord) bool { return k.User == user }, func(k *keyRecord) string { return k.ID })
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.deleteKey(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (s *Server) listSessions(ctx context.Context, _ string, req *authwire.SessionRef) (any, error) {
	if err := selfOr(ctx, req.User, "auth:session:read:"+auth.EscapePart(req.User)); err != nil {
		return nil, err
	}
	prefix := authwire.EncodeName(req.User) + "."
	now := s.cfg.Now()
	var out []authwire.Session
	s.mu.RLock()
	for k, r := range s.sessions {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix && now.Before(r.Expires) {
			out = append(out, r.view())
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b authwire.Session) int { return a.Created.Compare(b.Created) })
	return map[string]any{"sessions": nonNilSlice(out)}, nil
}

func (s *Server) revokeSessionsOp(ctx context.Context, _ string, req *authwire.SessionRef) (any, error) {
	if err := selfOr(ctx, req.User, "auth:session:write:"+auth.EscapePart(req.User)); err != nil {
		return nil, err
	}
	n, err := s.revokeSessions(ctx, req.User, req.ID)
	if err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "session.revoke", Principal: principalOf(ctx), Target: req.User, Detail: req.ID})
	return map[string]int{"ended": n}, nil
}
