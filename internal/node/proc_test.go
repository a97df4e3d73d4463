package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/node"
)

// childNodeEnv carries a node.Config, as JSON, to a child process of the
// test binary that runs that node until SIGTERM, or dies by SIGKILL: a
// node that can crash for real.
const childNodeEnv = "MORTAR_TEST_CHILD_NODE"

func runChildNode(cfgJSON string) int {
	var cfg node.Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := node.New(&cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := n.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child node:", err)
		return 1
	}
	return 0
}

// procNode is a node in a child process.
type procNode struct {
	name, url, admin, dataDir string
	cmd                       *exec.Cmd
	exited                    chan struct{}
}

// token returns the node's local admin credential.
func (p *procNode) token(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dataDir, mortar.LocalCredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Kill ends the node with SIGKILL: no step-down, no goodbye.
func (p *procNode) Kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcCluster starts a 3-node cluster of child processes and waits
// until every node is ready.
func startProcCluster(t *testing.T) []*procNode {
	t.Helper()
	routes := []string{freePort(t), freePort(t), freePort(t)}
	var nodes []*procNode
	for i := range 3 {
		client, admin := freePort(t), freePort(t)
		_, port, _ := net.SplitHostPort(client)
		var portN int
		fmt.Sscan(port, &portN)
		cfg := node.Config{
			Name: fmt.Sprintf("p%d", i+1), DataDir: t.TempDir(), Host: "127.0.0.1", Port: portN,
			ClusterName: "fault", ClusterListen: routes[i], Routes: routes,
			AdminAddr: admin, NodeTTL: 3 * time.Second, Push: node.PushConfig{TCPAddr: "127.0.0.1:0"},
		}
		b, _ := json.Marshal(cfg)
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childNodeEnv+"="+string(b))
		cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &procNode{name: cfg.Name, dataDir: cfg.DataDir, url: "nats://" + client, admin: "http://" + admin, cmd: cmd, exited: make(chan struct{})}
		go func() { cmd.Wait(); close(p.exited) }()
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(20 * time.Second):
				p.Kill()
			}
		})
		nodes = append(nodes, p)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range nodes {
		for {
			resp, err := http.Get(p.admin + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s not ready: %v", p.name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nodes
}

func procURLs(nodes []*procNode) string {
	var urls []string
	for _, p := range nodes {
		urls = append(urls, p.url)
	}
	return strings.Join(urls, ",")
}
