package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/mortartest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNodeAdminEndpoints(t *testing.T) {
	n := mortartest.StartNode(t)
	for _, tc := range []struct {
		path string
		code int
		want string
	}{
		{"/healthz", 200, `"ok"`},
		{"/readyz", 200, `"ready"`},
		{"/metrics", 200, "go_goroutines"},
	} {
		code, body := httpGet(t, n.AdminURL()+tc.path)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s = %d %q, want %d containing %q", tc.path, code, body, tc.code, tc.want)
		}
	}
	resp, err := http.Post(n.AdminURL()+"/api/v1/no.such", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(b), `"code":"not_found"`) {
		t.Errorf("POST unknown op = %d %s", resp.StatusCode, b)
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
