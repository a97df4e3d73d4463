package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mortarhq/mortar/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestBinary builds the command, runs it on a free port, calls it, and
// stops it with SIGTERM, which must shut it down cleanly.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "testservice")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--endpoint", "tcp://127.0.0.1:0", "--heartbeat", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the ready line: %v", err)
	}
	endpoint := strings.TrimSpace(strings.TrimPrefix(line, "TestService listening on "))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, endpoint, &rpc.ClientConfig{HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var name string
	if err := c.Call(ctx, "_zerorpc_name", &name); err != nil || name != "TestService" {
		t.Errorf("_zerorpc_name() = %q, %v", name, err)
	}
	var slept float64
	if err := c.Call(ctx, "sleep", &slept, 1.5); err != nil || slept != 1.5 {
		t.Errorf("sleep(1.5) with 1s heartbeats = %v, %v", slept, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func TestRejectsBadHeartbeat(t *testing.T) {
	if err := run("tcp://127.0.0.1:0", 0); err == nil {
		t.Error("run with --heartbeat 0 succeeded")
	}
}
