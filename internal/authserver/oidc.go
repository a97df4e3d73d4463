package authserver

import (
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"golang.org/x/oauth2"
)

// Defaults and fixed paths of the OIDC login.
const (
	// OIDCUserClaimDefault is the ID token claim that names the mortar
	// user.
	OIDCUserClaimDefault = "email"
	// OIDCLoginPath starts a browser login; OIDCCallbackPath is where the
	// identity provider sends the browser back.
	OIDCLoginPath    = "/auth/oidc/login"
	OIDCCallbackPath = "/auth/oidc/callback"
)

// OIDCConfig configures logins through an OpenID Connect identity
// provider (docs/security.md, "OIDC login"): the Authorization Code flow
// with PKCE for browsers, and ID tokens the caller got from the provider
// itself on auth.login.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, where discovery starts
	// (ISSUER/.well-known/openid-configuration). Required.
	Issuer string
	// ClientID is mortar's client at the provider, and the audience every
	// ID token must name. Required.
	ClientID string
	// ClientSecret is the client's secret; empty for a public client
	// (PKCE alone).
	ClientSecret string
	// RedirectURL is the callback registered at the provider, such as
	// http://127.0.0.1:7070/auth/oidc/callback. Defaults to
	// http://HOST/auth/oidc/callback, HOST being the Host the browser sent
	// to OIDCLoginPath (the provider refuses one it does not know).
	RedirectURL string
	// Scopes are asked of the provider. Defaults to openid, email and
	// profile; openid is added if missing.
	Scopes []string
	// UserClaim is the ID token claim whose value is the mortar user name:
	// "email", "preferred_username", "sub" or any other string claim. Its
	// value must be a valid user name. Defaults to OIDCUserClaimDefault.
	// An email is lowercased, and refused when email_verified is false.
	UserClaim string
	// RolesClaim, when set, is a claim holding group or role names (a list
	// of strings, or one string; a dotted path reaches into objects, such
	// as realm_access.roles): each that names a mortar role grants it, at
	// every login. Defaults to none.
	RolesClaim string
	// DefaultRoles are the roles a user gets when its first login creates
	// it.
	DefaultRoles []string
}

// oidcScopesDefault are the scopes asked for when OIDCConfig.Scopes is
// empty.
var oidcScopesDefault = []string{oidc.ScopeOpenID, "email", "profile"}

// Validate reports what is wrong with c, if anything.
func (c OIDCConfig) Validate() error {
	if err := checkURL("issuer", c.Issuer); err != nil {
		return err
	}
	if c.ClientID == "" {
		return errors.New("authserver: oidc: no client ID")
	}
	if c.RedirectURL != "" {
		if err := checkURL("redirect URL", c.RedirectURL); err != nil {
			return err
		}
	}
	for _, r := range c.DefaultRoles {
		if !authwire.ValidName(r) {
			return fmt.Errorf("authserver: oidc: default role %q: not a valid role name", r)
		}
	}
	return nil
}

// checkURL refuses a URL that is not absolute http or https.
func checkURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("authserver: oidc: %s %q: want an http or https URL", what, s)
	}
	return nil
}

// withDefaults returns a copy of c with the defaults applied.
func (c OIDCConfig) withDefaults() OIDCConfig {
	if len(c.Scopes) == 0 {
		c.Scopes = oidcScopesDefault
	}
	c.Scopes = slices.Clone(c.Scopes)
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	c.UserClaim = cmp.Or(c.UserClaim, OIDCUserClaimDefault)
	c.DefaultRoles = slices.Clone(c.DefaultRoles)
	return c
}

// Limits of the OIDC login.
const (
	// oidcHTTPTimeout bounds every request to the provider.
	oidcHTTPTimeout = 10 * time.Second
	// oidcRediscover is the least time between two discovery attempts
	// made by logins while the provider is unreachable.
	oidcRediscover = 2 * time.Second
	// maxIDTokenLen bounds an ID token (groups make some large).
	maxIDTokenLen = 32 << 10
)

const oidcRealmName = "oidc"

// oidcLogin is the OIDC login: discovery, the browser flow's pending
// logins (oidc_http.go), and the realm that verifies ID tokens and
// provisions their users.
type oidcLogin struct {
	s      *Server
	cfg    OIDCConfig
	log    *slog.Logger
	now    func() time.Time
	client *http.Client // every request to the provider

	prov        atomic.Pointer[oidcProvider] // nil until discovered
	discoverMu  sync.Mutex                   // one discovery at a time; guards the two below
	lastAttempt time.Time
	lastErr     error

	pendingMu sync.Mutex
	pending   map[string]*oidcPending // browser logins in progress, by state
}

// oidcProvider is what discovery found.
type oidcProvider struct {
	oauth    *oauth2.Config // RedirectURL empty: each login sets it
	verifier *oidc.IDTokenVerifier
}

func newOIDCLogin(s *Server, cfg OIDCConfig) *oidcLogin {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &oidcLogin{
		s:       s,
		cfg:     cfg.withDefaults(),
		log:     s.log.With("realm", oidcRealmName),
		now:     s.cfg.Now,
		client:  &http.Client{Transport: tr, Timeout: oidcHTTPTimeout},
		pending: map[string]*oidcPending{},
	}
}

// run discovers the provider, retrying with backoff until it succeeds or
// ctx ends: a node whose provider is down starts anyway, and logins
// through the provider fail (and try discovery themselves) until then.
func (o *oidcLogin) run(ctx context.Context) {
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		if _, err := o.provider(ctx); err == nil || ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// provider returns the discovered provider, discovering it now if need
// be; unavailable while the provider cannot be reached.
func (o *oidcLogin) provider(ctx context.Context) (*oidcProvider, error) {
	if p := o.prov.Load(); p != nil {
		return p, nil
	}
	o.discoverMu.Lock()
	defer o.discoverMu.Unlock()
	if p := o.prov.Load(); p != nil {
		return p, nil
	}
	if now := o.now(); o.lastErr != nil && now.Sub(o.lastAttempt) < oidcRediscover {
		return nil, o.lastErr
	}
	o.lastAttempt = o.now()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.client), o.cfg.Issuer)
	if err != nil {
		if ctx.Err() != nil {
			return nil, mortar.Errorf(mortar.CodeDeadlineExceeded, "oidc discovery: %v", ctx.Err())
		}
		o.log.Warn("oidc discovery failed; logins through the provider fail until it succeeds", "issuer", o.cfg.Issuer, "err", err)
		o.lastErr = mortar.Errorf(mortar.CodeUnavailable, "the identity provider cannot be reached; retry later")
		return nil, o.lastErr
	}
	prov := &oidcProvider{
		oauth:    &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(), Scopes: o.cfg.Scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now}),
	}
	o.prov.Store(prov)
	o.lastErr = nil
	o.log.Info("oidc provider discovered", "issuer", o.cfg.Issuer)
	return prov, nil
}

// idToken is an ID token offered to the realm: from the browser flow's
// code exchange (with the nonce the login sent), or from auth.login.
type idToken struct {
	raw   string
	nonce string // when set, the token must carry it
}

// Principal is unknown until the token is verified.
func (idToken) Principal() string { return "" }

// String never shows the token.
func (idToken) String() string { return "oidc ID token" }

// oidcRealm authenticates ID tokens of the provider and provisions their
// users in the store.
type oidcRealm struct{ o *oidcLogin }

func (r *oidcRealm) Name() string { return oidcRealmName }

func (r *oidcRealm) Supports(tok auth.AuthenticationToken) bool {
	_, ok := tok.(idToken)
	return ok
}

// Authenticate verifies the token (signature, issuer, audience, expiry,
// nonce), takes the user from it and provisions the user: created on its
// first login, its roles brought up to date from the roles claim on
// later ones.
func (r *oidcRealm) Authenticate(ctx context.Context, tok auth.AuthenticationToken) (auth.SubjectInfo, error) {
	t := tok.(idToken)
	id, err := r.o.identify(ctx, t.raw, t.nonce)
	if err != nil {
		return auth.SubjectInfo{}, err
	}
	u, err := r.o.provision(ctx, id)
	if err != nil {
		return auth.SubjectInfo{}, err
	}
	return auth.SubjectInfo{Principal: u.Name, Roles: u.Roles}, nil
}

// invalidf is a refused ID token, with the reason for the audit log.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{auth.ErrInvalidCredentials}, args...)...)
}

// oidcIdentity is what a verified ID token says.
type oidcIdentity struct {
	user   string
	groups []string // the roles claim's names
}

// identify verifies raw and returns the identity it carries.
func (o *oidcLogin) identify(ctx context.Context, raw, nonce string) (oidcIdentity, error) {
	if len(raw) > maxIDTokenLen {
		return oidcIdentity{}, invalidf("ID token of %d bytes", len(raw))
	}
	p, err := o.provider(ctx)
	if err != nil {
		return oidcIdentity{}, err
	}
	t, err := p.verifier.Verify(oidc.ClientContext(ctx, o.client), raw)
	if err != nil {
		return oidcIdentity{}, invalidf("%v", err)
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(nonce)) != 1 {
		return oidcIdentity{}, invalidf("ID token nonce does not match the login's")
	}
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return oidcIdentity{}, invalidf("ID token claims: %v", err)
	}
	user, _ := claim(claims, o.cfg.UserClaim).(string)
	if user == "" {
		return oidcIdentity{}, invalidf("ID token of %q has no %s claim", t.Subject, o.cfg.UserClaim)
	}
	if o.cfg.UserClaim == "email" {
		if v := claims["email_verified"]; v == false || v == "false" {
			return oidcIdentity{}, invalidf("email %q is not verified", user)
		}
		user = strings.ToLower(user)
	}
	if !authwire.ValidName(user) {
		return oidcIdentity{}, invalidf("%s %q is not a valid user name", o.cfg.UserClaim, user)
	}
	id := oidcIdentity{user: user}
	if o.cfg.RolesClaim != "" {
		switch v := claim(claims, o.cfg.RolesClaim).(type) {
		case string:
			id.groups = []string{v}
		case []any:
			for _, g := range v {
				if g, ok := g.(string); ok {
					id.groups = append(id.groups, g)
				}
			}
		}
	}
	return id, nil
}

// claim returns the claim name, or what a dotted path names inside
// objects ("realm_access.roles"); nil if there is none.
func claim(claims map[string]any, name string) any {
	if v, ok := claims[name]; ok {
		return v
	}
	var v any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// provision creates the user an ID token names on its first login, with
// DefaultRoles and the roles mapped from the roles claim; on later logins
// it brings the mapped roles up to date (when RolesClaim is set). A user
// that exists but was not created by an OIDC login (a local user, the
// admin) is refused: an identity provider's account never takes over a
// local one of the same name.
func (o *oidcLogin) provision(ctx context.Context, id oidcIdentity) (*userRecord, error) {
	s := o.s
	mapped, err := o.mapRoles(ctx, id.groups)
	if err != nil {
		return nil, err
	}
	for range maxAttempts {
		var u userRecord
		rev, err := s.read(ctx, userKey(id.user), &u)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			now := s.cfg.Now().UTC()
			u = userRecord{Name: id.user, Realm: oidcRealmName, Created: now, Updated: now}
			u.setOIDCRoles(slices.Clone(o.cfg.DefaultRoles), mapped)
			err := s.create(ctx, userKey(id.user), "user "+id.user, &u)
			if mortar.ErrorCode(err) == mortar.CodeAlreadyExists {
				continue // another node provisioned it first
			}
			if err != nil {
				return nil, err
			}
			s.audit.record(authwire.AuditEntry{Kind: "user.add", Principal: oidcRealmName, Target: id.user,
				Detail: grantDetail(&authwire.GrantRequest{Roles: u.Roles})})
			return &u, nil
		}
		if err := checkOIDCUser(&u); err != nil {
			return nil, err
		}
		if o.cfg.RolesClaim == "" {
			return &u, nil
		}
		before, beforeOIDC := slices.Clone(u.Roles), slices.Clone(u.OIDCRoles)
		u.setOIDCRoles(without(slices.Clone(u.Roles), u.OIDCRoles), mapped)
		if slices.Equal(before, u.Roles) && slices.Equal(beforeOIDC, u.OIDCRoles) {
			return &u, nil
		}
		nu, err := update(ctx, s, userKey(id.user), "user "+id.user, func(r *userRecord) error {
			if err := checkOIDCUser(r); err != nil {
				return err
			}
			r.setOIDCRoles(without(r.Roles, r.OIDCRoles), mapped)
			r.Updated = s.cfg.Now().UTC()
			return nil
		})
		if err != nil {
			return nil, err
		}
		if added := without(slices.Clone(nu.Roles), before); len(added) > 0 {
			s.audit.record(authwire.AuditEntry{Kind: "user.grant", Principal: oidcRealmName, Target: id.user, Detail: grantDetail(&authwire.GrantRequest{Roles: added})})
		}
		if removed := without(before, nu.Roles); len(removed) > 0 {
			s.audit.record(authwire.AuditEntry{Kind: "user.revoke", Principal: oidcRealmName, Target: id.user, Detail: grantDetail(&authwire.GrantRequest{Roles: removed})})
		}
		return nu, nil
	}
	return nil, mortar.Errorf(mortar.CodeConflict, "user %s changed concurrently; retry", id.user)
}

// checkOIDCUser refuses an OIDC login as u.
func checkOIDCUser(u *userRecord) error {
	if u.Realm != oidcRealmName {
		return invalidf("user %q exists and is not an OIDC user: an OIDC login does not take it over", u.Name)
	}
	if u.Disabled {
		return invalidf("user %q is disabled", u.Name)
	}
	return nil
}

// setOIDCRoles sets u's roles to base (the roles it holds for other
// reasons: DefaultRoles, grants) and the mapped ones, and remembers which
// of them it holds only because the roles claim says so, for the next
// login to take away.
func (u *userRecord) setOIDCRoles(base, mapped []string) {
	u.OIDCRoles = without(slices.Clone(mapped), base)
	u.Roles = union(base, u.OIDCRoles)
	if len(u.Roles) > authwire.MaxRoles {
		u.Roles = u.Roles[:authwire.MaxRoles]
	}
}

// mapRoles returns the names among groups that name mortar roles: the
// first MaxRoles valid names are looked at, in the cache and, when the
// cache does not have them (a role added a moment ago), in the store.
func (o *oidcLogin) mapRoles(ctx context.Context, groups []string) ([]string, error) {
	s := o.s
	var out []string
	seen := 0
	for _, g := range groups {
		if seen == authwire.MaxRoles {
			break
		}
		if !authwire.ValidName(g) || slices.Contains(out, g) {
			continue
		}
		seen++
		s.mu.RLock()
		_, ok := s.roles[g]
		s.mu.RUnlock()
		if !ok {
			var r roleRecord
			rev, err := s.read(ctx, roleKey(g), &r)
			if err != nil {
				return nil, err
			}
			ok = rev != 0
		}
		if ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// loginIDToken is auth.login with an ID token the caller got from the
// provider itself (a CLI, a service): verified and provisioned like the
// browser flow's, then a session starts. Failures count against the
// caller's address in the throttle.
func (s *Server) loginIDToken(ctx context.Context, req *authwire.LoginRequest, addr string) (*authwire.LoginResponse, error) {
	now := s.cfg.Now()
	if wait, ok := s.throttle.Check("", addr, now); !ok {
		s.audit.record(authwire.AuditEntry{Kind: "login.throttled", Addr: addr, Op: "auth.login", Detail: oidcRealmName})
		return nil, mortar.Errorf(mortar.CodeResourceExhausted, "too many failed logins; retry in %s", wait.Round(time.Second))
	}
	sub, err := s.authn.Authenticate(ctx, idToken{raw: req.IDToken})
	if err != nil {
		s.audit.record(authwire.AuditEntry{Kind: "login.fail", Addr: addr, Op: "auth.login", Detail: oidcRealmName + ": " + auth.FailureReason(err)})
		if errors.Is(err, auth.ErrInvalidCredentials) {
			s.throttle.Failed("", addr, now)
			return nil, errInvalid
		}
		s.throttle.Succeeded("", addr, now)
		return nil, err
	}
	s.throttle.Succeeded("", addr, now)
	return s.startOIDCSession(ctx, sub.Principal(), addr, "auth.login")
}

// startOIDCSession starts a session of user after an OIDC login, and
// audits the login.
func (s *Server) startOIDCSession(ctx context.Context, user, addr, op string) (*authwire.LoginResponse, error) {
	resp, err := s.startSession(ctx, user, addr)
	if err != nil {
		s.audit.record(authwire.AuditEntry{Kind: "login.fail", Principal: user, Addr: addr, Op: op, Detail: oidcRealmName + ": start session: " + err.Error()})
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "login.ok", Principal: user, Addr: addr, Op: op, Target: resp.Session, Detail: oidcRealmName})
	return resp, nil
}
