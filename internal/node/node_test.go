package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childNodeEnv); cfg != "" {
		os.Exit(runChildNode(cfg)) // a node process of TestClusterLeaderKilled
	}
	goleak.VerifyTestMain(m)
}

func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNodeAdminEndpoints(t *testing.T) {
	n := mortartest.StartNode(t)
	resp, err := http.Post(n.AdminURL()+"/api/v1/no.such", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"code":"not_found"`) {
		t.Errorf("POST unknown op = %d %s", resp.StatusCode, b)
	}
	for _, tc := range []struct {
		path   string
		client *http.Client
		code   int
		want   string
	}{
		{"/healthz", http.DefaultClient, 200, `"ok"`},
		{"/readyz", http.DefaultClient, 200, `"ready"`},
		{"/metrics", http.DefaultClient, 401, "credentials required"},
		{"/metrics", n.HTTPClient(), 200, "go_goroutines"},
		{"/metrics", n.HTTPClient(), 200, `mortar_api_requests_total{code="not_found",op="unknown"}`},
		{"/auth/jwks.json", http.DefaultClient, 200, `"crv":"Ed25519"`},
	} {
		code, body := httpGet(t, tc.client, n.AdminURL()+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
}

func TestConnDoUnknownOp(t *testing.T) {
	n := mortartest.StartNode(t)
	c := n.Dial(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := c.Do(ctx, "no.such", map[string]any{}, nil)
	if mortar.ErrorCode(err) != mortar.CodeNotFound {
		t.Fatalf("Do(no.such) = %v, want not_found", err)
	}
	if !errors.Is(err, &mortar.Error{Code: mortar.CodeNotFound}) {
		t.Fatalf("errors.Is(%v, not_found) = false", err)
	}
}

func TestNodeRestartKeepsState(t *testing.T) {
	n := mortartest.StartNode(t)
	c := n.Dial(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	kv, err := c.JetStream().CreateKeyValue(ctx, jetstreamKV("restart"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	n.Restart()
	kv, err = c.JetStream().KeyValue(ctx, "restart")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != "v1" {
		t.Fatalf("after restart Get(k) = %v, %v; want v1", e, err)
	}
}

func TestClusterForms(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	cl := mortartest.StartCluster(t, 3)
	c := cl.Dial(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	info, err := c.JetStream().Stream(ctx, "KV_mortar_nodes")
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.Replicas; got != 3 {
		t.Fatalf("nodes bucket replicas = %d, want 3", got)
	}
}

// TestNodeExternalNATS runs a node on an existing NATS server (JetStream
// on) instead of embedding one.
func TestNodeExternalNATS(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("external nats not ready")
	}
	n := mortartest.Start(t, &mortartest.Options{NATSURL: ns.ClientURL()})
	if n.URL() != ns.ClientURL() {
		t.Errorf("node URL = %q, want the external %q", n.URL(), ns.ClientURL())
	}
	// The node's layout lives on the external server.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.KeyValue(t.Context(), "mortar_nodes"); err != nil {
		t.Fatalf("mortar_nodes bucket on the external server: %v", err)
	}
	c := n.Dial(t)
	err = c.Do(t.Context(), "no.such", nil, nil)
	if mortar.ErrorCode(err) != mortar.CodeNotFound {
		t.Fatalf("Do through external NATS = %v, want not_found", err)
	}
	n.Stop()
}

func TestNodeConfigErrors(t *testing.T) {
	for _, cfg := range []node.Config{
		{Name: "bad name"},
		{Port: 70000},
		{Durability: "sometimes"},
		{Routes: []string{"127.0.0.1:6222"}},
		{ClusterListen: "nonsense"},
		{Replicas: 9},
		{NodeTTL: time.Millisecond},
		{SelfPreservation: 1.5},
		{Push: node.PushConfig{TCPAddr: "nonsense"}},
		{Push: node.PushConfig{HistorySize: -2}},
		{Push: node.PushConfig{SameClient: "both"}},
		{Push: node.PushConfig{Rate: -1}},
		{Push: node.PushConfig{Ping: -time.Second}},
	} {
		if _, err := node.New(&cfg); err == nil {
			t.Errorf("node.New(%+v) = nil error", cfg)
		}
	}
}

func TestNodePortInUse(t *testing.T) {
	n1 := mortartest.StartNode(t)
	_, port, _ := strings.Cut(strings.TrimPrefix(n1.URL(), "nats://127.0.0.1"), ":")
	p, _ := strconv.Atoi(port)
	nd, err := node.New(&node.Config{Name: "n2", DataDir: t.TempDir(), Port: p, AdminAddr: "off", Push: node.PushConfig{TCPAddr: "off"}, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := nd.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run on a taken port = %v (ctx %v), want a startup error", err, ctx.Err())
	}
}
