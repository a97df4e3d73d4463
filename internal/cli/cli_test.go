package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/testservice"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run runs the CLI and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func testService(t *testing.T) string {
	t.Helper()
	srv := rpc.NewServer(&rpc.ServerConfig{Name: testservice.Name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	testservice.Register(srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	t.Cleanup(func() { srv.Shutdown(context.Background()); <-done })
	return rpc.Endpoint(l.Addr())
}

func TestCall(t *testing.T) {
	ep := testService(t)
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{"call", ep, "hello"}, 0, "hello\n", ""},
		{[]string{"call", ep, "add", "1", "2"}, 0, "3\n", ""},
		{[]string{"call", ep, "add", "-1", "-2.5"}, 0, "-3.5\n", ""},
		{[]string{"call", ep, "echo", "plain text"}, 0, "plain text\n", ""},
		{[]string{"call", "--json", ep, "echo", "plain"}, 0, "\"plain\"\n", ""},
		{[]string{"call", ep, "echo", `{"k":[1,2],"s":"<x>"}`}, 0, "{\"k\":[1,2],\"s\":\"<x>\"}\n", ""},
		{[]string{"call", ep, "typeof", "2.0"}, 0, "float\n", ""},
		{[]string{"call", ep, "typeof", "2"}, 0, "int\n", ""},
		{[]string{"call", ep, "count", "3"}, 0, "0\n1\n2\n", ""},
		{[]string{"call", ep, "count", "0"}, 0, "", ""},
		{[]string{"call", ep, "fail", "boom"}, 1, "", "TestError: boom"},
		{[]string{"call", ep, "count_then_fail", "2", "late"}, 1, "0\n1\n", "TestError: late"},
		{[]string{"call", ep, "nosuch"}, 1, "", "NameError: nosuch"},
		{[]string{"call", "--timeout", "200ms", ep, "sleep", "5"}, 1, "", "deadline exceeded"},
		{[]string{"call"}, 2, "", "needs at least 1"},
		{[]string{"call", "--timeout", "0s", ep, "hello"}, 2, "", "--timeout must be positive"},
		{[]string{"call", "--bogus", ep}, 2, "", "unknown flag"},
		{[]string{"call", "nope://x", "hello"}, 1, "", "unsupported transport"},
		{[]string{"call", "tcp://127.0.0.1:1", "hello"}, 1, "", "connection refused"},
		{[]string{"frobnicate"}, 2, "", "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.wantCode || out != tt.wantOut || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("mortar %v = %d, stdout %q, stderr %q; want %d, %q, stderr containing %q",
					tt.args, code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	ep := testService(t)
	code, out, errOut := run(t, "call", ep)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"TestService", "add(a, b)", "Return a + b.", "count_then_fail(n, msg)", "hello()"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = run(t, "call", "--inspect", "--json", ep, "ignored")
	if !strings.Contains(out, `"name":"TestService"`) {
		t.Errorf("--inspect --json output: %s", out)
	}
}

func TestEnvOverridesDefaultNotFlag(t *testing.T) {
	ep := testService(t)
	t.Setenv("MORTAR_TIMEOUT", "100ms")
	if code, _, errOut := run(t, "call", ep, "sleep", "3"); code != 1 || !strings.Contains(errOut, "deadline") {
		t.Errorf("MORTAR_TIMEOUT=100ms: exit %d, %q; want a deadline failure", code, errOut)
	}
	if code, out, errOut := run(t, "call", "--timeout", "10s", ep, "sleep", "0.2"); code != 0 || out != "0.2\n" {
		t.Errorf("--timeout beats env: exit %d, %q, %q", code, out, errOut)
	}
	t.Setenv("MORTAR_TIMEOUT", "soon")
	if code, _, errOut := run(t, "call", ep, "hello"); code != 2 || !strings.Contains(errOut, "MORTAR_TIMEOUT") {
		t.Errorf("bad MORTAR_TIMEOUT: exit %d, %q; want usage error", code, errOut)
	}
}

func TestHelpVersionCompletion(t *testing.T) {
	code, out, _ := run(t, "--help")
	if code != 0 || !strings.Contains(out, "call") || !strings.Contains(out, "MORTAR_") {
		t.Errorf("--help: %d %q", code, out)
	}
	code, out, _ = run(t, "call", "--help")
	if code != 0 || !strings.Contains(out, "(env MORTAR_TIMEOUT)") {
		t.Errorf("call --help lacks env names: %q", out)
	}
	code, out, _ = run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "mortar ") {
		t.Errorf("version: %d %q", code, out)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, _ = run(t, "completion", shell)
		if code != 0 || len(out) < 100 {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, len(out))
		}
	}
}

// startNode starts a node and makes the CLI present its admin credential
// (MORTAR_TOKEN), as a CLI on the node's machine would find it.
func startNode(t *testing.T) *mortartest.Node {
	t.Helper()
	n := mortartest.StartNode(t)
	t.Setenv(mortar.EnvToken, n.Token())
	return n
}

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := mainWithStdin(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}
