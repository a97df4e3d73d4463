package node_test

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mortarhq/mortar/internal/authserver"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/oauth2-proxy/mockoidc"
)

// oidcSetup starts an identity provider (mockoidc: its authorize endpoint
// logs in the next queued user without a page) and a node that logs in
// through it, mapping the "groups" claim to roles and giving new users
// the role viewer.
func oidcSetup(t *testing.T) (*mockoidc.MockOIDC, *mortartest.Node) {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	cfg := m.Config()
	n := mortartest.Start(t, &mortartest.Options{OIDC: &authserver.OIDCConfig{
		Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		Scopes:     []string{"openid", "email", "groups"},
		RolesClaim: "groups", DefaultRoles: []string{"viewer"},
	}})
	return m, n
}

// browser returns an HTTP client with a cookie jar that follows
// redirects, but for one to a URL that stop (if not nil) accepts: that
// one it answers with, keeping the URL in *stopped.
func browser(t *testing.T, stop func(*url.URL) bool) (c *http.Client, stopped *url.URL) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	stopped = new(url.URL)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if stop != nil && stop(req.URL) {
				*stopped = *req.URL
				return http.ErrUseLastResponse
			}
			return nil
		}}, stopped
}

// atCallback stops a browser before it returns to the node.
func atCallback(u *url.URL) bool { return u.Path == authserver.OIDCCallbackPath }

// anyBrowser is a browser that follows every redirect.
func anyBrowser(t *testing.T) *http.Client {
	c, _ := browser(t, nil)
	return c
}

var tokenRE = regexp.MustCompile(`<pre id="token">([^<]+)</pre>`)

// browserLogin logs the next queued user in through the browser flow and
// returns the session token of the page the node answers with.
func browserLogin(t *testing.T, n *mortartest.Node) string {
	t.Helper()
	status, body := httpGet(t, anyBrowser(t), n.AdminURL()+authserver.OIDCLoginPath)
	m := tokenRE.FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("browser login = %d %s, want 200 with a token", status, body)
	}
	return m[1]
}

// whoami asks who token is, over HTTP.
func whoami(t *testing.T, n *mortartest.Node, token string) authwire.WhoAmI {
	t.Helper()
	status, body := post(t, n, "auth.whoami", token, nil)
	var w authwire.WhoAmI
	if status != 200 || json.Unmarshal([]byte(body), &w) != nil {
		t.Fatalf("auth.whoami = %d %s", status, body)
	}
	return w
}

// TestOIDCLogin: a browser logs in through the provider; its first login
// creates the user with the default role and the roles its groups name,
// a later one brings the roles up to date; ?redirect= hands the token to
// a local page; an ID token from the provider logs in on auth.login.
func TestOIDCLogin(t *testing.T) {
	m, n := oidcSetup(t)
	admin := n.Dial(t)
	ctx := t.Context()
	for _, r := range []authwire.RoleRequest{{Name: "viewer", Permissions: []string{"config:read"}}, {Name: "engineering", Permissions: []string{"registry:read"}}} {
		if err := admin.Do(ctx, "auth.role.add", r, nil); err != nil {
			t.Fatal(err)
		}
	}

	m.QueueUser(&mockoidc.MockUser{Subject: "s-alice", Email: "Alice@Example.com", EmailVerified: true, Groups: []string{"engineering", "no-such-role", "not a name"}})
	tok := browserLogin(t, n)
	w := whoami(t, n, tok)
	if w.User != "alice@example.com" || w.Realm != "oidc" || !slices.Equal(w.Roles, []string{"viewer", "engineering"}) || w.Session == "" {
		t.Errorf("whoami after the first login = %+v, want alice@example.com of realm oidc with roles viewer, engineering", w)
	}
	var u authwire.User
	if err := admin.Do(ctx, "auth.user.get", authwire.NameRequest{Name: "alice@example.com"}, &u); err != nil {
		t.Fatal(err)
	}
	if u.Password || u.Realm != "oidc" {
		t.Errorf("provisioned user = %+v, want realm oidc without a password", u)
	}

	// The provider moves alice from engineering to design; a role granted
	// by hand stays.
	if err := admin.Do(ctx, "auth.role.add", authwire.RoleRequest{Name: "design"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "auth.user.grant", authwire.GrantRequest{Name: "alice@example.com", Roles: []string{"ops"}}, nil); err != nil {
		t.Fatal(err)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "s-alice", Email: "alice@example.com", Groups: []string{"design"}})
	if w := whoami(t, n, browserLogin(t, n)); !slices.Equal(w.Roles, []string{"viewer", "ops", "design"}) {
		t.Errorf("roles after the second login = %v, want viewer, ops, design", w.Roles)
	}
	// The first session lives on.
	whoami(t, n, tok)

	// ?redirect= sends the token to a local page, in the fragment.
	m.QueueUser(&mockoidc.MockUser{Subject: "s-alice", Email: "alice@example.com", Groups: []string{"design"}})
	c, stopped := browser(t, func(u *url.URL) bool { return u.Path == "/app/" })
	status, body := httpGet(t, c, n.AdminURL()+authserver.OIDCLoginPath+"?redirect=/app/")
	token, ok := strings.CutPrefix(stopped.Fragment, "token=")
	if status != http.StatusSeeOther || stopped.Path != "/app/" || !ok {
		t.Fatalf("login with redirect = %d to %q %s, want 303 to /app/#token=…", status, stopped, body)
	}
	if w := whoami(t, n, token); w.User != "alice@example.com" {
		t.Errorf("whoami with the redirected token = %+v", w)
	}

	// An ID token the caller got from the provider itself.
	var login authwire.LoginResponse
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{IDToken: idToken(t, m, jwt.MapClaims{"email": "carol@example.com"})}, &login); err != nil {
		t.Fatalf("auth.login with an ID token: %v", err)
	}
	if w := whoami(t, n, login.Token); w.User != "carol@example.com" || !slices.Equal(w.Roles, []string{"viewer"}) {
		t.Errorf("whoami after an ID token login = %+v, want carol@example.com with role viewer", w)
	}
	waitFor(t, "the audit log", func() bool {
		return oidcAudit(t, n, "login.ok") == 4 && oidcAudit(t, n, "user.add") == 2
	})
}

// idToken signs an ID token of the provider for the node's client, with
// claims over the defaults.
func idToken(t *testing.T, m *mockoidc.MockOIDC, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": m.Issuer(), "aud": m.ClientID, "sub": "s-" + authwire.Random(6),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := m.Keypair.SignJWT(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// oidcAudit counts the audit log's entries of kind about OIDC logins.
func oidcAudit(t *testing.T, n *mortartest.Node, kind string) int {
	t.Helper()
	var audit authwire.AuditResponse
	if err := n.Dial(t).Do(t.Context(), "auth.audit", authwire.AuditRequest{Kind: kind, Limit: 1000}, &audit); err != nil {
		t.Fatal(err)
	}
	c := 0
	for _, e := range audit.Entries {
		if strings.HasPrefix(e.Detail, "oidc") || e.Principal == "oidc" {
			c++
		}
	}
	return c
}

// TestOIDCRefusals: a bad, spent or foreign state, a missing code, an
// error from the provider, a claim that is no user name, a local user's
// name, ID tokens for another audience or issuer, an open redirect: each
// is refused with a page (or invalid credentials), never a panic, and
// audited.
func TestOIDCRefusals(t *testing.T) {
	m, n := oidcSetup(t)
	admin := n.Dial(t)
	login := n.AdminURL() + authserver.OIDCLoginPath
	c, stopped := browser(t, atCallback)
	// callbackURL starts a login in c and returns where the provider sends
	// the browser back to.
	callbackURL := func() *url.URL {
		t.Helper()
		if status, body := httpGet(t, c, login); status != http.StatusFound || stopped.Path != authserver.OIDCCallbackPath {
			t.Fatalf("login = %d to %q %s, want a redirect to the callback", status, stopped, body)
		}
		u := *stopped
		return &u
	}
	refused := func(what string, c *http.Client, u string, wantStatus int, wantText string) {
		t.Helper()
		status, body := httpGet(t, c, u)
		if status != wantStatus || !strings.Contains(body, wantText) {
			t.Errorf("%s = %d %s, want %d %q", what, status, body, wantStatus, wantText)
		}
	}

	refused("an unknown state", c, n.AdminURL()+authserver.OIDCCallbackPath+"?state=bogus&code=x", 400, "unknown")

	cb := callbackURL()
	if status, body := httpGet(t, c, cb.String()); status != 200 || !tokenRE.MatchString(body) {
		t.Fatalf("callback = %d %s", status, body)
	}
	refused("a spent state", c, cb.String(), 400, "unknown")

	cb = callbackURL()
	q := cb.Query()
	q.Del("code")
	cb.RawQuery = q.Encode()
	refused("no code", c, cb.String(), 400, "no authorization code")

	refused("another browser", anyBrowser(t), callbackURL().String(), 400, "another browser")

	cb = callbackURL()
	cb.RawQuery = url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}}.Encode()
	refused("a provider error", c, cb.String(), 401, "access_denied")

	m.QueueUser(&mockoidc.MockUser{Subject: "s-bad", Email: "not a name"})
	refused("a claim that is no user name", anyBrowser(t), login, 401, "invalid credentials")

	if err := admin.Do(t.Context(), "auth.user.add", authwire.UserRequest{Name: "bob@example.com", Password: "bob-password"}, nil); err != nil {
		t.Fatal(err)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "s-bob", Email: "bob@example.com"})
	refused("a local user's name", anyBrowser(t), login, 401, "invalid credentials")

	refused("an open redirect", anyBrowser(t), login+"?redirect="+url.QueryEscape("//evil.example/"), 400, "only a path on this server")

	for what, claims := range map[string]jwt.MapClaims{
		"another audience": {"email": "eve@example.com", "aud": "someone-else"},
		"another issuer":   {"email": "eve@example.com", "iss": "https://evil.example"},
		"expired":          {"email": "eve@example.com", "exp": time.Now().Add(-time.Minute).Unix()},
		"no user claim":    {},
	} {
		status, body := post(t, n, "auth.login", "", authwire.LoginRequest{IDToken: idToken(t, m, claims)})
		if status != 401 || !strings.Contains(body, `"message":"invalid credentials"`) {
			t.Errorf("auth.login with an ID token of %s = %d %s, want 401 invalid credentials", what, status, body)
		}
	}
	status, body := post(t, n, "auth.login", "", authwire.LoginRequest{IDToken: "junk"})
	if status != 401 || !strings.Contains(body, "invalid credentials") {
		t.Errorf("auth.login with a malformed ID token = %d %s", status, body)
	}
	// Nobody was created by the refused logins, and each is audited.
	var u authwire.User
	if err := admin.Do(t.Context(), "auth.user.get", authwire.NameRequest{Name: "eve@example.com"}, &u); err == nil {
		t.Errorf("a refused ID token created %+v", u)
	}
	waitFor(t, "the audit log", func() bool { return oidcAudit(t, n, "login.fail") == 13 })
}

// TestOIDCProviderDown: a node whose provider cannot be reached starts,
// and its OIDC logins fail cleanly until the provider answers.
func TestOIDCProviderDown(t *testing.T) {
	n := mortartest.Start(t, &mortartest.Options{OIDC: &authserver.OIDCConfig{Issuer: "http://127.0.0.1:1/nowhere", ClientID: "mortar"}})
	status, body := httpGet(t, anyBrowser(t), n.AdminURL()+authserver.OIDCLoginPath)
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "cannot be reached") {
		t.Errorf("login with the provider down = %d %s, want 503", status, body)
	}
	status, body = post(t, n, "auth.login", "", authwire.LoginRequest{IDToken: "a.b.c"})
	if status != http.StatusServiceUnavailable {
		t.Errorf("auth.login with an ID token and the provider down = %d %s, want 503", status, body)
	}
	if err := n.Dial(t).Do(t.Context(), "auth.whoami", nil, nil); err != nil {
		t.Errorf("the node does not serve: %v", err)
	}
}
