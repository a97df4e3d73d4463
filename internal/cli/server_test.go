package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine,
// which signals every write.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer contains sub.
func (s *syncBuffer) waitFor(t *testing.T, sub string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for !strings.Contains(s.String(), sub) {
		select {
		case <-s.wrote:
		case <-deadline:
			t.Fatalf("no %q after %v in:\n%s", sub, d, s.String())
		}
	}
}

func TestServerStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	out, errb := newSyncBuffer(), newSyncBuffer()
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"server", "--name", "t1", "--data-dir", dir, "--port", "-1", "--admin", "127.0.0.1:0", "--log-level", "warn"}, out, errb)
	}()
	out.waitFor(t, "admin: http://127.0.0.1:", 30*time.Second)
	for _, want := range []string{`node "t1" ready`, "nats:  nats://127.0.0.1:", "data:  " + dir} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("server output lacks %q:\n%s", want, out.String())
		}
	}
	cancel()
	select {
	case c := <-code:
		if c != ExitOK {
			t.Fatalf("server exit = %d, want 0; stderr:\n%s", c, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop after its context ended")
	}
}

func TestServerBadFlagsAndStartup(t *testing.T) {
	// A seed file is read and trimmed: a user seed in it is refused as
	// not an account seed.
	user, _ := nkeys.CreateUser()
	userSeed, _ := user.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, append(userSeed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"server", "--durability", "sometimes"}, ExitUsage, "durability"},
		{[]string{"server", "--log-level", "loud"}, ExitUsage, "--log-level"},
		{[]string{"server", "--routes", "127.0.0.1:1"}, ExitUsage, "cluster listen"},
		{[]string{"server", "extra"}, ExitUsage, ""},
		{[]string{"server", "--oidc-client-id", "mortar"}, ExitUsage, "--oidc-client-id needs --oidc-issuer"},
		{[]string{"server", "--oidc-issuer", "accounts.example.com", "--oidc-client-id", "mortar"}, ExitUsage, "want an http or https URL"},
		{[]string{"server", "--oidc-issuer", "https://accounts.example.com"}, ExitUsage, "no client ID"},
		{[]string{"server", "--oidc-issuer", "https://accounts.example.com", "--oidc-client-id", "m", "--oidc-default-role", "a b"}, ExitUsage, "default role"},
		{[]string{"server", "--nats-callout-seed", "SAJUNK"}, ExitUsage, "needs an external NATS"},
		{[]string{"server", "--nats-url", "nats://127.0.0.1:1", "--nats-callout-seed", "SAJUNK"}, ExitUsage, "callout issuer seed: not an nkey seed"},
		{[]string{"server", "--nats-url", "nats://127.0.0.1:1", "--nats-callout-seed-file", "/nonexistent/seed.nk"}, ExitUsage, "--nats-callout-seed-file"},
		{[]string{"server", "--nats-callout-seed", "SAJUNK", "--nats-callout-seed-file", "/nonexistent/seed.nk"}, ExitUsage, "not both"},
		{[]string{"server", "--nats-user", "mortar"}, ExitUsage, "external NATS"},
		{[]string{"server", "--nats-url", "nats://127.0.0.1:1", "--nats-callout-seed-file", seedFile}, ExitUsage, `kind "user", want an account seed`},
		{[]string{"server", "--data-dir", "/proc/forbidden/x", "--port", "-1", "--admin", "off"}, ExitStartup, ""},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("mortar %v = %d, stderr %q; want %d containing %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func TestNodeList(t *testing.T) {
	n := startNode(t)
	code, out, stderr := run(t, "node", "list", "--url", n.URL())
	if code != ExitOK || !strings.Contains(out, "NAME") || !strings.Contains(out, "n1") {
		t.Fatalf("node list = %d %q %q", code, out, stderr)
	}
	code, out, _ = run(t, "node", "list", "--url", n.URL(), "-o", "json")
	if code != ExitOK || !strings.Contains(out, `"name": "n1"`) || !strings.Contains(out, `"replicas": 1`) {
		t.Fatalf("node list -o json = %d %q", code, out)
	}
	code, _, stderr = run(t, "node", "list", "--url", n.URL(), "-o", "yaml")
	if code != ExitUsage || !strings.Contains(stderr, "--output") {
		t.Fatalf("node list -o yaml = %d %q, want usage", code, stderr)
	}
	code, _, stderr = run(t, "node", "list", "--url", "nats://127.0.0.1:1", "--timeout", "200ms")
	if code != ExitFailure || !strings.Contains(stderr, "mortar server") {
		t.Fatalf("node list with no node = %d %q", code, stderr)
	}
}
