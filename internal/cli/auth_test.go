package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/authwire"
)

// TestAuthCLI drives the security commands against a node: users, roles,
// API keys, login and logout, the audit log.
func TestAuthCLI(t *testing.T) {
	n := startNode(t)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	url := "--url=" + n.URL()
	steps := []struct {
		stdin    string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"", []string{"whoami", url}, 0, "user:        admin\nroles:       admin\npermissions: *\n", ""},
		{"", []string{"role", "add", url, "reader", "config:read", "registry:read"}, 0, "added role reader\n", ""},
		{"", []string{"role", "add", url, "bad", ":"}, 1, "", "malformed permission"},
		{"alice-password\n", []string{"user", "add", url, "alice", "--role", "reader", "--password-stdin"}, 0, "added user alice\n", ""},
		{"", []string{"user", "add", url, "svc", "--no-password", "--perm", "registry:write:orders"}, 0, "added user svc\n", ""},
		{"", []string{"user", "add", url, "bob"}, 2, "", "--password-stdin"},
		{"", []string{"user", "list", url}, 0, "alice  reader", ""},
		{"", []string{"role", "grant", url, "reader", "push:read"}, 0, "granted push:read to role reader\n", ""},
		{"", []string{"role", "list", url}, 0, "reader  config:read registry:read push:read\n", ""},
		{"", []string{"role", "revoke", url, "reader", "push:read"}, 0, "revoked push:read from role reader\n", ""},
		{"", []string{"user", "grant", url, "alice", "--perm", "task:submit:email"}, 0, "granted task:submit:email to user alice\n", ""},
		{"", []string{"user", "grant", url, "alice"}, 2, "", "name what to grant"},
		{"", []string{"role", "remove", url, "admin"}, 1, "", "built in"},
		{"", []string{"user", "totp", "enroll", url, "alice"}, 0, "secret: ", ""},
		{"", []string{"user", "totp", "confirm", url, "alice", "000000"}, 1, "", "does not match"},
		{"", []string{"user", "totp", "disable", url, "alice"}, 0, "second factor off for alice\n", ""},
	}
	for _, s := range steps {
		code, out, errOut := runIn(t, s.stdin, s.args...)
		if code != s.wantCode || !strings.Contains(out, s.wantOut) || !strings.Contains(errOut, s.wantErr) {
			t.Fatalf("mortar %v = %d, stdout %q, stderr %q; want %d, stdout containing %q, stderr containing %q",
				s.args, code, out, errOut, s.wantCode, s.wantOut, s.wantErr)
		}
	}
	// An API key acts as its user.
	code, key, errOut := run(t, "apikey", "create", url, "--user", "svc", "--name", "ci")
	if code != 0 || !strings.HasPrefix(key, "mk_") || !strings.Contains(errOut, "shown this once") {
		t.Fatalf("apikey create = %d %q %q", code, key, errOut)
	}
	key = strings.TrimSpace(key)
	if code, out, _ := run(t, "whoami", url, "--token", key); code != 0 || !strings.Contains(out, "user:        svc\n") {
		t.Fatalf("whoami with the key = %d %q", code, out)
	}
	if code, _, errOut := run(t, "user", "list", url, "--token", key); code != 1 || !strings.Contains(errOut, "permission denied: auth:user:read") {
		t.Fatalf("user list as svc = %d %q, want permission denied", code, errOut)
	}
	code, out, _ := run(t, "apikey", "list", url, "--user", "svc", "-o", "json")
	var keys []struct{ ID string }
	if err := json.Unmarshal([]byte(out), &keys); code != 0 || err != nil || len(keys) != 1 || !strings.Contains(key, keys[0].ID) {
		t.Fatalf("apikey list = %d %q (%v)", code, out, err)
	}
	if code, out, _ := run(t, "apikey", "revoke", url, keys[0].ID); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("apikey revoke = %d %q", code, out)
	}
	if code, _, errOut := run(t, "whoami", url, "--token", key); code != 1 || !strings.Contains(errOut, "refused the credential") {
		t.Fatalf("whoami with a revoked key = %d %q", code, errOut)
	}

	// Log in as alice: the token is kept (0600) and used; logout ends it.
	if code, out, errOut := runIn(t, "wrong-password\n", "login", url, "--user", "alice", "--password-stdin"); code != 1 || !strings.Contains(errOut, "invalid credentials") {
		t.Fatalf("login with a wrong password = %d %q %q", code, out, errOut)
	}
	if code, out, errOut := runIn(t, "alice-password\n", "login", url, "--user", "alice", "--password-stdin"); code != 0 || !strings.Contains(out, "as alice until") {
		t.Fatalf("login = %d %q %q", code, out, errOut)
	}
	fi, err := os.Stat(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "mortar", "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved login: %v %v", fi, err)
	}
	t.Setenv("MORTAR_TOKEN", "") // no longer the admin's credential
	if code, out, _ := run(t, "whoami", url); code != 0 || !strings.Contains(out, "user:        alice\n") || !strings.Contains(out, "session:") {
		t.Fatalf("whoami after login = %d %q", code, out)
	}
	if code, out, _ := run(t, "logout", url); code != 0 || !strings.Contains(out, "logged out") {
		t.Fatalf("logout = %d %q", code, out)
	}
	t.Setenv("MORTAR_TOKEN", n.Token())
	if code, out, _ := run(t, "whoami", url); code != 0 || !strings.Contains(out, "user:        admin\n") {
		t.Fatalf("whoami after logout = %d %q", code, out)
	}
	// The audit log is written off the request path: poll it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := run(t, "audit", url, "--kind", "login.*", "-o", "json")
		var entries []struct{ Kind, Principal string }
		if err := json.Unmarshal([]byte(out), &entries); code != 0 || err != nil {
			t.Fatalf("audit = %d %q (%v)", code, out, err)
		}
		if slices.ContainsFunc(entries, func(e struct{ Kind, Principal string }) bool {
			return e.Kind == "login.fail" && e.Principal == "alice"
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit lacks alice's failed login: %v", entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, out, _ := run(t, "user", "remove", url, "alice"); code != 0 || !strings.Contains(out, "removed user alice") {
		t.Fatalf("user remove = %d %q", code, out)
	}
}

// TestLoginSessionCLI: --oidc tells where to log in; --session keeps a
// session token from there once the node vouches for it, and refuses
// what is not one.
func TestLoginSessionCLI(t *testing.T) {
	n := startNode(t)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	url := "--url=" + n.URL()
	if code, out, _ := run(t, "login", url, "--oidc", "--admin", "127.0.0.1:7171"); code != 0 ||
		!strings.Contains(out, "http://127.0.0.1:7171/auth/oidc/login") || !strings.Contains(out, "mortar login --url "+n.URL()+" --session TOKEN") {
		t.Fatalf("login --oidc = %d %q", code, out)
	}
	if code, _, errOut := run(t, "login", url, "--oidc", "--session", "x"); code != 2 || !strings.Contains(errOut, "not both") {
		t.Fatalf("login --oidc --session = %d %q", code, errOut)
	}
	var login authwire.LoginResponse
	if err := n.Dial(t).Do(t.Context(), "auth.login", authwire.LoginRequest{User: "admin", Password: n.AdminPassword()}, &login); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "login", url, "--session", "junk.junk.junk"); code != 1 || !strings.Contains(errOut, "check the session token") {
		t.Fatalf("login --session junk = %d %q", code, errOut)
	}
	if code, _, errOut := run(t, "login", url, "--session", n.Token()); code != 2 || !strings.Contains(errOut, "not a session token") {
		t.Fatalf("login --session API-KEY = %d %q", code, errOut)
	}
	if code, out, errOut := run(t, "login", url, "--session", login.Token); code != 0 || !strings.Contains(out, "as admin until") {
		t.Fatalf("login --session = %d %q %q", code, out, errOut)
	}
	t.Setenv("MORTAR_TOKEN", "")
	if code, out, _ := run(t, "whoami", url); code != 0 || !strings.Contains(out, "session:     "+login.Session) {
		t.Fatalf("whoami after login --session = %d %q", code, out)
	}
}
