package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/config"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go"
	"github.com/pquerna/otp/totp"
)

// addUser makes a user with perms (as a role of its own) and returns an
// API key of it.
func addUser(t *testing.T, admin *mortar.Conn, name string, perms ...string) string {
	t.Helper()
	ctx := t.Context()
	if len(perms) > 0 {
		if err := admin.Do(ctx, "auth.role.add", authwire.RoleRequest{Name: name + "-role", Permissions: perms}, nil); err != nil {
			t.Fatal(err)
		}
	}
	req := authwire.UserRequest{Name: name, Password: name + "-password"}
	if len(perms) > 0 {
		req.Roles = []string{name + "-role"}
	}
	if err := admin.Do(ctx, "auth.user.add", req, nil); err != nil {
		t.Fatal(err)
	}
	var k authwire.APIKey
	if err := admin.Do(ctx, "auth.apikey.create", authwire.APIKeyRequest{User: name}, &k); err != nil {
		t.Fatal(err)
	}
	return k.Key
}

// post calls op over HTTP with credential (none when empty) and returns
// the status and body.
func post(t *testing.T, n *mortartest.Node, op, credential string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", n.AdminURL()+"/api/v1/"+op, bytes.NewReader(b))
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func TestSecurityBootstrap(t *testing.T) {
	n := mortartest.StartNode(t)
	fi, err := os.Stat(filepath.Join(n.DataDir(), mortar.LocalCredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("local credential mode = %v, want 0600", fi.Mode().Perm())
	}
	c := n.Dial(t)
	var who authwire.WhoAmI
	if err := c.Do(t.Context(), "auth.whoami", nil, &who); err != nil {
		t.Fatal(err)
	}
	if who.User != "admin" {
		t.Errorf("local credential is %q, want admin", who.User)
	}
	// The admin logs in with the bootstrap password; a restart keeps
	// the same credential file working.
	var login authwire.LoginResponse
	if err := c.Do(t.Context(), "auth.login", authwire.LoginRequest{User: "admin", Password: n.AdminPassword()}, &login); err != nil {
		t.Fatal(err)
	}
	before := n.Token()
	n.Restart()
	if n.Token() != before {
		t.Error("restart replaced a working local credential")
	}
	if err := n.DialAs(t, login.Token).Do(t.Context(), "auth.whoami", nil, &who); err != nil {
		t.Fatalf("session token after a restart: %v", err)
	}
}

// TestSecurityLoginErrors: every wrong credential gets one answer.
func TestSecurityLoginErrors(t *testing.T) {
	n := mortartest.StartNode(t)
	c := n.Dial(t)
	addUser(t, c, "alice")
	for _, req := range []authwire.LoginRequest{
		{User: "alice", Password: "wrong-password"},
		{User: "nobody", Password: "alice-password"},
		{User: "alice"},
		{RememberToken: "mr_junk"},
	} {
		status, body := post(t, n, "auth.login", "", req)
		if status != 401 || !strings.Contains(body, `"message":"invalid credentials"`) {
			t.Errorf("login %+v = %d %s, want 401 invalid credentials", req, status, body)
		}
	}
	for _, cred := range []string{"junk", "mk_AAAAAAAAAAAAAAAA_" + strings.Repeat("A", 43), "a.b.c", strings.Repeat("x", 9000)} {
		status, body := post(t, n, "node.list", cred, nil)
		if status != 401 || !strings.Contains(body, `"message":"invalid credentials"`) {
			t.Errorf("node.list with %.20q = %d %s, want 401 invalid credentials", cred, status, body)
		}
	}
	status, body := post(t, n, "node.list", "", nil)
	if status != 401 || !strings.Contains(body, "credentials required") {
		t.Errorf("node.list without a credential = %d %s", status, body)
	}
	// Brute force: after 5 failures the user is throttled, even with the
	// right password.
	for range 5 {
		post(t, n, "auth.login", "", authwire.LoginRequest{User: "alice", Password: "guess-guess"})
	}
	status, body = post(t, n, "auth.login", "", authwire.LoginRequest{User: "alice", Password: "alice-password"})
	if status != 429 || !strings.Contains(body, "too many failed logins") {
		t.Errorf("login after 5 failures = %d %s, want 429", status, body)
	}
	// Every failure is in the audit log (written off the request path),
	// with what the caller was not told.
	waitFor(t, "the audit log", func() bool {
		kinds := auditKinds(t, c, "login.*")
		return kinds["login.fail"]+kinds["login.throttled"] == 10 && kinds["login.throttled"] >= 1
	})
}

// auditKinds counts the audit log's entries of the kinds that match kind.
func auditKinds(t *testing.T, c *mortar.Conn, kind string) map[string]int {
	t.Helper()
	var audit authwire.AuditResponse
	if err := c.Do(t.Context(), "auth.audit", authwire.AuditRequest{Kind: kind}, &audit); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range audit.Entries {
		kinds[e.Kind]++
	}
	return kinds
}

// TestSecurityDenied: a subject permitted only to read one config
// namespace is refused everything else, over NATS and HTTP, and the
// denial is audited.
func TestSecurityDenied(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx := t.Context()
	if err := admin.Do(ctx, "config.set", map[string]any{"group": "g", "key": "k", "value": "v"}, nil); err != nil {
		t.Fatal(err)
	}
	key := addUser(t, admin, "viewer", "config:read:default")
	viewer := n.DialAs(t, key)
	if err := viewer.Do(ctx, "config.get", map[string]any{"group": "g", "key": "k"}, nil); err != nil {
		t.Fatalf("permitted config.get: %v", err)
	}
	for _, tc := range []struct {
		op   string
		body any
	}{
		{"config.set", map[string]any{"group": "g", "key": "k", "value": "w"}},
		{"config.get", map[string]any{"ns": "other", "group": "g", "key": "k"}},
		{"registry.register", map[string]any{"instance": map[string]any{"service": "s", "id": "1", "address": "127.0.0.1:1"}}},
		{"task.send", map[string]any{"task": "t"}},
		{"push.send", map[string]any{"all": true, "data": 1}},
		{"node.list", nil},
		{"auth.user.list", nil},
		{"auth.user.grant", authwire.GrantRequest{Name: "viewer", Roles: []string{"admin"}}},
	} {
		if err := viewer.Do(ctx, tc.op, tc.body, nil); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
			t.Errorf("%s over NATS = %v, want permission_denied", tc.op, err)
		}
		if status, body := post(t, n, tc.op, key, tc.body); status != 403 {
			t.Errorf("%s over HTTP = %d %s, want 403", tc.op, status, body)
		}
	}
	waitFor(t, "the audit log", func() bool { return auditKinds(t, admin, "denied")["denied"] == 16 })
	var audit authwire.AuditResponse
	if err := admin.Do(ctx, "auth.audit", authwire.AuditRequest{Kind: "denied", Limit: 1}, &audit); err != nil {
		t.Fatal(err)
	}
	if e := audit.Entries[0]; e.Principal != "viewer" || e.Op != "config.set" || e.Permission != "config:write:default" {
		t.Errorf("first denial = %+v, want viewer refused config:write:default on config.set", e)
	}
}

// TestSecurityRoleChange: granting and revoking a role's permission takes
// effect at once.
func TestSecurityRoleChange(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx := t.Context()
	viewer := n.DialAs(t, addUser(t, admin, "viewer", "config:read"))
	set := func() error {
		return viewer.Do(ctx, "config.set", map[string]any{"group": "g", "key": "k", "value": "v"}, nil)
	}
	if err := set(); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Fatalf("set before the grant = %v", err)
	}
	if err := admin.Do(ctx, "auth.role.grant", authwire.GrantRequest{Name: "viewer-role", Permissions: []string{"config:write:default"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the grant to apply", func() bool { return set() == nil })
	if err := admin.Do(ctx, "auth.role.revoke", authwire.GrantRequest{Name: "viewer-role", Permissions: []string{"config:write:default"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation to apply", func() bool { return mortar.ErrorCode(set()) == mortar.CodePermissionDenied })
}

// waitFor polls cond, which an engine watch makes true, for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSecuritySessions: log in, use the token, log out; revoke every
// session of a user; remember-me tokens are spent once.
func TestSecuritySessions(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx := t.Context()
	addUser(t, admin, "bob", "config:read")
	var login authwire.LoginResponse
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "bob", Password: "bob-password", Remember: true}, &login); err != nil {
		t.Fatal(err)
	}
	bob := n.DialAs(t, login.Token)
	var who authwire.WhoAmI
	if err := bob.Do(ctx, "auth.whoami", nil, &who); err != nil || who.User != "bob" || who.Session != login.Session {
		t.Fatalf("whoami = %+v, %v", who, err)
	}
	if err := bob.Do(ctx, "auth.logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, n, "auth.whoami", login.Token, nil); status != 401 {
		t.Fatalf("token after logout = %d %s, want 401", status, body)
	}
	// Remember-me: good once, and it comes back renewed.
	var again authwire.LoginResponse
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{RememberToken: login.RememberToken}, &again); err != nil {
		t.Fatal(err)
	}
	if again.User != "bob" || again.RememberToken == "" || again.RememberToken == login.RememberToken {
		t.Fatalf("remembered login = %+v", again)
	}
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{RememberToken: login.RememberToken}, nil); mortar.ErrorCode(err) != mortar.CodeUnauthenticated {
		t.Fatalf("spent remember-me token = %v, want unauthenticated", err)
	}
	// Revoking all of bob's sessions ends the remembered one's token.
	if status, _ := post(t, n, "auth.whoami", again.Token, nil); status != 200 {
		t.Fatalf("remembered session token refused: %d", status)
	}
	var ended map[string]int
	if err := admin.Do(ctx, "auth.session.revoke", authwire.SessionRef{User: "bob"}, &ended); err != nil {
		t.Fatal(err)
	}
	if ended["ended"] < 2 {
		t.Errorf("revoke all ended %d, want the session and the remember-me token", ended["ended"])
	}
	if status, body := post(t, n, "auth.whoami", again.Token, nil); status != 401 {
		t.Fatalf("token after revoke = %d %s, want 401", status, body)
	}
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{RememberToken: again.RememberToken}, nil); mortar.ErrorCode(err) != mortar.CodeUnauthenticated {
		t.Fatalf("revoked remember-me token = %v, want unauthenticated", err)
	}
}

// TestSecuritySessionIdle: an unused session expires after its idle
// timeout; a used one lives on.
func TestSecuritySessionIdle(t *testing.T) {
	n := mortartest.Start(t, &mortartest.Options{SessionIdle: 2 * time.Second})
	admin := n.Dial(t)
	ctx := t.Context()
	var used, idle authwire.LoginResponse
	for _, l := range []*authwire.LoginResponse{&used, &idle} {
		if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "admin", Password: n.AdminPassword()}, l); err != nil {
			t.Fatal(err)
		}
	}
	// Poll the session list (which does not use the sessions) until the
	// idle one is gone, using the other all along.
	events := make(chan auth.SessionEvent, 10)
	l, err := auth.ListenSessions(admin, func(e auth.SessionEvent) { events <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()
	start := time.Now()
	waitFor(t, "the idle session to expire", func() bool {
		if status, _ := post(t, n, "auth.whoami", used.Token, nil); status != 200 {
			t.Fatalf("the session in use expired after %v", time.Since(start))
		}
		var list struct{ Sessions []authwire.Session }
		if err := admin.Do(ctx, "auth.session.list", authwire.SessionRef{User: "admin"}, &list); err != nil {
			t.Fatal(err)
		}
		for _, s := range list.Sessions {
			if s.ID == idle.Session {
				return false
			}
		}
		return true
	})
	if d := time.Since(start); d < time.Second {
		t.Errorf("idle session expired after %v, before its 2s timeout", d)
	}
	if status, body := post(t, n, "auth.whoami", idle.Token, nil); status != 401 {
		t.Errorf("expired session's token = %d %s, want 401", status, body)
	}
	// Listeners hear the expiry, and a start and a stop.
	var again authwire.LoginResponse
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "admin", Password: n.AdminPassword()}, &again); err != nil {
		t.Fatal(err)
	}
	if err := n.DialAs(t, again.Token).Do(ctx, "auth.logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []auth.SessionEvent{{Kind: "expire", Session: idle.Session}, {Kind: "start", Session: again.Session}, {Kind: "stop", Session: again.Session}}
	for _, w := range want {
		select {
		case e := <-events:
			if e.Kind != w.Kind || e.Session != w.Session || e.User != "admin" {
				t.Errorf("session event %+v, want %s of %s", e, w.Kind, w.Session)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s event", w.Kind)
		}
	}
}

// TestSecurityNATS: NATS connections authenticate, and a subject's
// connection may touch only the subjects its permissions map to.
func TestSecurityNATS(t *testing.T) {
	n := mortartest.StartNode(t)
	checkNATSConnections(t, n.URL(), n.Dial(t))
}

// checkNATSConnections checks the NATS server at url admits only
// connections with a credential, each with the subject permissions of
// its grants: connections without one, with a junk token or a wrong
// password are refused; a viewer of one config namespace (a user it adds
// through admin) is refused the subjects outside its grants and may use
// the API and watch its namespace; a user and password log in.
func checkNATSConnections(t *testing.T, url string, admin *mortar.Conn) {
	t.Helper()
	key := addUser(t, admin, "viewer", "config:read:default")
	for _, opts := range [][]nats.Option{nil, {nats.Token("junk")}, {nats.UserInfo("viewer", "wrong-password")}} {
		if nc, err := nats.Connect(url, opts...); err == nil {
			nc.Close()
			t.Errorf("connect with %d options succeeded, want an authorization violation", len(opts))
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("connect: %v, want an authorization violation", err)
		}
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.Token(key), nats.CustomInboxPrefix(mortar.InboxPrefix(key, "")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	violation := func(what string) {
		t.Helper()
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("%s: %v, want a permissions violation", what, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: no permissions violation", what)
		}
	}
	for _, subj := range []string{"$KV.mortar_auth.>", "_INBOX.>", "mortar.api.v1.>", "mortar.cfg.ev.*.prod.>"} {
		sub, err := nc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		violation("subscribe " + subj)
		sub.Unsubscribe()
	}
	for _, subj := range []string{"mortar.task.q.default", "$JS.API.STREAM.DELETE.KV_mortar_auth", "mortar.registry.hb.svc.x"} {
		nc.Publish(subj, []byte("x"))
		nc.Flush()
		violation("publish " + subj)
	}
	// What it may do works: the API, and watching its namespace.
	sub, err := nc.SubscribeSync("mortar.cfg.ev.*.default.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, err := mortar.NewConn(nc, &mortar.Options{Token: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(t.Context(), "config.set", map[string]any{"group": "g", "key": "k", "value": "v"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("watch of a permitted namespace: %v", err)
	}
	if err := c.Do(t.Context(), "config.get", map[string]any{"group": "g", "key": "k"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Errorf("permitted use: %v", err)
	default:
	}
	// A user and password log in too.
	nc2, err := nats.Connect(url, nats.UserInfo("viewer", "viewer-password"))
	if err != nil {
		t.Fatal(err)
	}
	nc2.Close()
}

// TestSecurityEveryOperation: every API operation refuses a subject with
// no permissions, except the few any authenticated subject may call.
func TestSecurityEveryOperation(t *testing.T) {
	dir := t.TempDir()
	nd, err := node.New(&node.Config{
		Name: "ops", DataDir: dir, DontListen: true, AdminAddr: "off",
		Push: node.PushConfig{TCPAddr: "off"}, Auth: node.AuthConfig{AdminPassword: "ops-admin-password"},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-nd.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	cred, err := os.ReadFile(filepath.Join(dir, mortar.LocalCredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	call := func(op, cred string, body any) ([]byte, error) {
		b, _ := json.Marshal(body)
		return nd.Mux().Call(ctx, &api.Request{Op: op, Body: b, Credential: strings.TrimSpace(cred)})
	}
	if _, err := call("auth.user.add", strings.TrimSpace(string(cred)), authwire.UserRequest{Name: "nobody"}); err != nil {
		t.Fatal(err)
	}
	out, err := call("auth.apikey.create", string(cred), authwire.APIKeyRequest{User: "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	var k authwire.APIKey
	json.Unmarshal(out, &k)
	open := map[string]bool{
		"auth.login": true, "auth.jwks": true, "auth.whoami": true, "auth.logout": true,
		"task.get": true, "auth.apikey.revoke": true, "auth.verify": true,
	}
	for _, op := range nd.Mux().Ops() {
		_, err := call(op, k.Key, map[string]any{})
		code := mortar.ErrorCode(err)
		switch {
		case open[op] && code == mortar.CodePermissionDenied:
			t.Errorf("%s refused an authenticated subject: %v", op, err)
		case !open[op] && code != mortar.CodePermissionDenied:
			t.Errorf("%s with no permissions = %v, want permission_denied", op, err)
		}
		if op == "auth.login" || op == "auth.jwks" {
			continue
		}
		if _, err := call(op, "", map[string]any{}); mortar.ErrorCode(err) != mortar.CodeUnauthenticated {
			t.Errorf("%s without a credential = %v, want unauthenticated", op, err)
		}
	}
}

// TestSecurityTOTP: a user enrolls a second factor, confirms it with a
// code, and from then on logs in only with a code, each code once.
func TestSecurityTOTP(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx := t.Context()
	addUser(t, admin, "tess")
	var login authwire.LoginResponse
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "tess", Password: "tess-password"}, &login); err != nil {
		t.Fatal(err)
	}
	tess := n.DialAs(t, login.Token)
	var enr authwire.TOTPEnrollment
	if err := tess.Do(ctx, "auth.totp.enroll", authwire.TOTPRequest{Name: "tess"}, &enr); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enr.URL, "otpauth://totp/") {
		t.Errorf("enrollment URL = %q", enr.URL)
	}
	// Not yet confirmed: a password alone still logs in.
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "tess", Password: "tess-password"}, nil); err != nil {
		t.Fatalf("login before confirming: %v", err)
	}
	if err := tess.Do(ctx, "auth.totp.confirm", authwire.TOTPRequest{Name: "tess", Code: "000000"}, nil); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Fatalf("confirm with a wrong code = %v", err)
	}
	now := time.Now()
	code, err := totp.GenerateCode(enr.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := tess.Do(ctx, "auth.totp.confirm", authwire.TOTPRequest{Name: "tess", Code: code}, nil); err != nil {
		t.Fatal(err)
	}
	for _, req := range []authwire.LoginRequest{
		{User: "tess", Password: "tess-password"},
		{User: "tess", Password: "tess-password", TOTP: code}, // spent on confirming
		{User: "tess", Password: "wrong-password", TOTP: "123456"},
	} {
		if err := admin.Do(ctx, "auth.login", req, nil); mortar.ErrorCode(err) != mortar.CodeUnauthenticated || mortar.ErrorMessage(err) != "invalid credentials" {
			t.Errorf("login %+v = %v, want invalid credentials", req, err)
		}
	}
	next, err := totp.GenerateCode(enr.Secret, now.Add(30*time.Second)) // within the allowed skew
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "tess", Password: "tess-password", TOTP: next}, nil); err != nil {
		t.Fatalf("login with password and code: %v", err)
	}
	// Removing it takes a code from the user, or an administrator.
	if err := tess.Do(ctx, "auth.totp.disable", authwire.TOTPRequest{Name: "tess"}, nil); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Errorf("disable without a code = %v, want invalid_argument", err)
	}
	if err := admin.Do(ctx, "auth.totp.disable", authwire.TOTPRequest{Name: "tess"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "auth.login", authwire.LoginRequest{User: "tess", Password: "tess-password"}, nil); err != nil {
		t.Errorf("login after disabling: %v", err)
	}
}

// TestSecurityLimitedClients: a service whose user holds only what it
// needs can do it all through the SDK (registry with heartbeats and
// watch, config watch, a task worker and producer), without one NATS
// permission violation.
func TestSecurityLimitedClients(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	key := addUser(t, admin, "svc", "registry:write,read:orders", "config:read:default", "task:submit,work,result:*")
	violations := make(chan error, 100)
	c, err := mortar.Dial(ctx, n.URL(), &mortar.Options{Token: key, NATSOptions: []nats.Option{
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	reg, err := registry.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := reg.Watch(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	r, err := reg.Register(ctx, registry.Instance{Service: "orders", ID: "o-1", Address: "127.0.0.1", Port: 9, TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())

	if err := admin.Do(ctx, "config.set", map[string]any{"group": "g", "key": "k", "value": "v1"}, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	cw, err := cfg.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Stop()
	if _, err := cw.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.Do(ctx, "config.set", map[string]any{"group": "g", "key": "k", "value": "v2"}, nil); err != nil {
		t.Fatal(err)
	}
	if v, err := cw.Next(ctx); err != nil || string(v.Data) != "v2" {
		t.Fatalf("config watch = %v, %v", v, err)
	}

	add := task.Define[[2]int, int]("sec.add")
	worker, err := task.NewWorker(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	task.Handle(worker, add, func(_ context.Context, a [2]int) (int, error) { return a[0] + a[1], nil })
	if err := worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer worker.Stop(context.Background())
	tc, err := task.New(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := add.Delay(ctx, tc, [2]int{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := res.Get(ctx); err != nil || sum != 5 {
		t.Fatalf("task result = %v, %v", sum, err)
	}
	// The registry watch saw the instance.
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Instance.ID == "o-1" {
			break
		}
	}
	select {
	case err := <-violations:
		t.Errorf("a permitted client hit: %v", err)
	default:
	}
	// What it may not do, it cannot: the API refuses, and so does NATS.
	if _, err := reg.Register(ctx, registry.Instance{Service: "billing", ID: "b-1", Address: "127.0.0.1", Port: 9}); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Errorf("register another service = %v, want permission_denied", err)
	}
	if err := <-violations; !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), "mortar.registry.ev.billing") {
		t.Errorf("watching another service's events: %v, want a permissions violation", err)
	}
}

// TestSecurityCluster: what one node writes, every node enforces at once:
// a key made on one node works on another, a session revoked on one ends
// on all, a grant made on one applies on all.
func TestSecurityCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster")
	}
	cl := mortartest.StartCluster(t, 3)
	n1, n3 := cl.Nodes[0], cl.Nodes[2]
	ctx := t.Context()
	admin1 := n1.Dial(t)
	key := addUser(t, admin1, "carol", "config:read")
	// At once on another node: the API key and the user, read from the
	// leader if the watch has not brought them yet.
	carol3 := n3.DialAs(t, key)
	var who authwire.WhoAmI
	if err := carol3.Do(ctx, "auth.whoami", nil, &who); err != nil || who.User != "carol" {
		t.Fatalf("whoami on n3 = %+v, %v", who, err)
	}
	var login authwire.LoginResponse
	if err := admin1.Do(ctx, "auth.login", authwire.LoginRequest{User: "carol", Password: "carol-password"}, &login); err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, n3, "auth.whoami", login.Token, nil); status != 200 {
		t.Fatalf("session token on n3 = %d %s", status, body)
	}
	if err := admin1.Do(ctx, "auth.session.revoke", authwire.SessionRef{User: "carol", ID: login.Session}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation on n3", func() bool {
		status, _ := post(t, n3, "auth.whoami", login.Token, nil)
		return status == 401
	})
	set := func() error {
		return carol3.Do(ctx, "config.set", map[string]any{"group": "g", "key": "k", "value": "v"}, nil)
	}
	if err := set(); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Fatalf("set before the grant = %v", err)
	}
	if err := admin1.Do(ctx, "auth.user.grant", authwire.GrantRequest{Name: "carol", Permissions: []string{"config:write"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the grant on n3", func() bool { return set() == nil })
}

// TestSecurityRunAs: a caller permitted auth:runas:USER acts as USER, with
// USER's permissions; one that is not is refused, whether USER exists or
// not.
func TestSecurityRunAs(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx := t.Context()
	addUser(t, admin, "dana", "config:read")
	support := addUser(t, admin, "support", "auth:runas:dana")
	plain := addUser(t, admin, "plain", "config:read")
	c, err := mortar.Dial(ctx, n.URL(), &mortar.Options{Token: support, RunAs: "dana"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var who authwire.WhoAmI
	if err := c.Do(ctx, "auth.whoami", nil, &who); err != nil || who.User != "dana" || who.RunAsOf != "support" {
		t.Fatalf("whoami running as dana = %+v, %v", who, err)
	}
	// dana's permissions, not support's (which has no config:read).
	if err := c.Do(ctx, "config.list", map[string]any{}, nil); err != nil {
		t.Errorf("config.list as dana: %v", err)
	}
	// Running as dana does not make one dana for self-service.
	if err := c.Do(ctx, "auth.user.passwd", authwire.PasswordRequest{Name: "dana", Password: "new-password-1", Old: "dana-password"}, nil); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Errorf("passwd of dana by run-as = %v, want permission_denied", err)
	}
	for _, tc := range []struct{ cred, runAs string }{{support, "admin"}, {support, "nobody"}, {plain, "dana"}} {
		c2, err := mortar.Dial(ctx, n.URL(), &mortar.Options{Token: tc.cred, RunAs: tc.runAs})
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.Do(ctx, "auth.whoami", nil, nil); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
			t.Errorf("run as %s = %v, want permission_denied", tc.runAs, err)
		}
		c2.Close()
	}
}

// TestSecurityNATSRevocation: a revoked credential's NATS connection is
// closed and cannot come back; a connection whose grants change comes back
// with the new ones.
func TestSecurityNATSRevocation(t *testing.T) {
	n := mortartest.StartNode(t)
	admin := n.Dial(t)
	ctx := t.Context()
	key := addUser(t, admin, "eve", "config:read:default")
	closed := make(chan struct{})
	nc, err := nats.Connect(n.URL(), nats.Token(key), nats.CustomInboxPrefix(mortar.InboxPrefix(key, "")),
		nats.MaxReconnects(3), nats.ReconnectWait(50*time.Millisecond),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var keys struct{ Apikeys []authwire.APIKey }
	if err := admin.Do(ctx, "auth.apikey.list", authwire.APIKeyRef{User: "eve"}, &keys); err != nil || len(keys.Apikeys) != 1 {
		t.Fatalf("apikey.list = %+v, %v", keys, err)
	}
	if err := admin.Do(ctx, "auth.apikey.revoke", authwire.APIKeyRef{ID: keys.Apikeys[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed: // kicked, then refused on every reconnect
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked key's connection is still open")
	}
	if err := nc.LastError(); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("last error = %v, want an authorization violation", err)
	}

	// A role's permission revoked: the connection is dropped and comes
	// back without it.
	key = addUser(t, admin, "fay", "config:read")
	errs := make(chan error, 10)
	reconnected := make(chan struct{}, 1)
	nc2, err := nats.Connect(n.URL(), nats.Token(key), nats.CustomInboxPrefix(mortar.InboxPrefix(key, "")),
		nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	if _, err := nc2.SubscribeSync("mortar.cfg.ev.*.default.>"); err != nil {
		t.Fatal(err)
	}
	nc2.Flush()
	if err := admin.Do(ctx, "auth.role.revoke", authwire.GrantRequest{Name: "fay-role", Permissions: []string{"config:read"}}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not renewed after its grants changed")
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("after the revocation: %v, want a permissions violation for the restored subscription", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the restored subscription was not refused")
	}
}
