package registry_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/registry"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// client returns a registry client on conn.
func client(t *testing.T, conn *mortar.Conn) *registry.Client {
	t.Helper()
	c, err := registry.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func inst(service, id string, port int) registry.Instance {
	return registry.Instance{Service: service, ID: id, Address: "127.0.0.1", Port: port}
}

// next returns the watcher's next event within 15s.
func next(t *testing.T, w *registry.Watcher) registry.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	ev, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return ev
}

// expect returns the next event and checks its type and instance ID.
func expect(t *testing.T, w *registry.Watcher, typ registry.EventType, id string) registry.Event {
	t.Helper()
	ev := next(t, w)
	if ev.Type != typ || ev.Instance.ID != id {
		t.Fatalf("event %s %s/%s (status %s), want %s %s", ev.Type, ev.Instance.Service, ev.Instance.ID, ev.Instance.Status, typ, id)
	}
	return ev
}

// metric reads one sample line's value from the node's /metrics.
func metric(t *testing.T, n *mortartest.Node, name string) string {
	t.Helper()
	resp, err := n.HTTPClient().Get(n.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// waitFor polls cond every 20ms until it holds or 15s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
