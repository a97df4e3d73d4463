package config_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/config"
	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/mortarhq/mortar/mortartest"
)

func next(t *testing.T, w *config.Watcher) *config.Value {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := w.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return v
}

// TestWatchOrderAndLatency: a watcher sees the current value, then every
// change in order; the push latency's p99 stays under 50 ms on one node.
func TestWatchOrderAndLatency(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	w, err := c.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if v := next(t, w); v.Exists {
		t.Fatalf("first value of a missing key = %+v", v)
	}
	const n = 200
	lat := make([]time.Duration, 0, n)
	for i := 1; i <= n; i++ {
		start := time.Now()
		if _, err := c.Set(ctx, "g", "k", fmt.Appendf(nil, "%d", i), nil); err != nil {
			t.Fatal(err)
		}
		v := next(t, w)
		lat = append(lat, time.Since(start))
		if v.Version != uint64(i) || string(v.Data) != fmt.Sprint(i) {
			t.Fatalf("change %d: got version %d %q", i, v.Version, v.Data)
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[n/2], lat[n*99/100]
	t.Logf("set-to-notice latency over %d writes: p50 %v p99 %v max %v", n, p50, p99, lat[n-1])
	if p99 > 50*time.Millisecond {
		// The goal is p99 < 50 ms; under -race on a loaded 2-core box it
		// can slip, so report rather than fail unless it is far off.
		if p99 > 250*time.Millisecond {
			t.Errorf("p99 %v, goal 50ms", p99)
		} else {
			t.Logf("p99 %v above the 50ms goal (race detector / load?)", p99)
		}
	}
	if _, err := c.Delete(ctx, "g", "k", nil); err != nil {
		t.Fatal(err)
	}
	if v := next(t, w); v.Exists || v.Version != n+1 {
		t.Fatalf("after delete = %+v", v)
	}
	w.Stop()
	if _, err := w.Next(ctx); !errors.Is(err, config.ErrWatcherStopped) {
		t.Fatalf("Next after Stop = %v", err)
	}
}

// TestWatchWithoutDeadline: Watch takes a ctx with no deadline, such as
// context.Background(), and the watch works.
func TestWatchWithoutDeadline(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	if _, err := c.Set(ctx, "g", "k", []byte("one"), nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(context.Background(), "g", "k")
	if err != nil {
		t.Fatalf("Watch(context.Background()): %v", err)
	}
	defer w.Stop()
	if v := next(t, w); v.Version != 1 || string(v.Data) != "one" {
		t.Fatalf("first value = %+v", v)
	}
	if _, err := c.Set(ctx, "g", "k", []byte("two"), nil); err != nil {
		t.Fatal(err)
	}
	if v := next(t, w); v.Version != 2 || string(v.Data) != "two" {
		t.Fatalf("after a write = %+v", v)
	}
}

// TestWatchBurst: writes faster than the watcher reads still end at the
// last value, in increasing versions.
func TestWatchBurst(t *testing.T) {
	c, _ := setup(t, nil)
	ctx := ctxT(t)
	w, err := c.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w)
	for i := 1; i <= 50; i++ {
		c.Set(ctx, "g", "k", fmt.Appendf(nil, "%d", i), nil)
	}
	var last uint64
	for last < 50 {
		v := next(t, w)
		if v.Version <= last {
			t.Fatalf("version %d after %d", v.Version, last)
		}
		last = v.Version
	}
}

func TestGray(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	admin, _ := config.New(conn, nil)
	canary, _ := config.New(conn, &config.Config{Labels: map[string]string{"zone": "a", "canary": "true"}})
	byAddr, _ := config.New(conn, &config.Config{Address: "10.0.0.7:80"})
	plain, _ := config.New(conn, &config.Config{Labels: map[string]string{"zone": "b"}})
	ctx := ctxT(t)
	if _, err := admin.Set(ctx, "g", "k", []byte("main"), nil); err != nil {
		t.Fatal(err)
	}
	wCanary, err := canary.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer wCanary.Stop()
	wPlain, err := plain.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer wPlain.Stop()
	next(t, wCanary)
	next(t, wPlain)

	if _, err := admin.SetGray(ctx, "g", "k", []byte("gray"), config.Rule{}, nil); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Fatalf("SetGray with an empty rule = %v", err)
	}
	if _, err := admin.SetGray(ctx, "g", "k", []byte("gray"), config.Rule{Selector: "canary=true,zone in (a, c)", Addresses: []string{"10.0.0.7:80"}}, nil); err != nil {
		t.Fatal(err)
	}
	if v := next(t, wCanary); !v.Gray || string(v.Data) != "gray" {
		t.Fatalf("canary watcher after gray = %+v", v)
	}
	for _, tc := range []struct {
		c    *config.Client
		want string
	}{{canary, "gray"}, {byAddr, "gray"}, {plain, "main"}, {admin, "main"}} {
		if v, err := tc.c.Get(ctx, "g", "k"); err != nil || string(v.Data) != tc.want {
			t.Errorf("Get = %+v, %v; want %s", v, err, tc.want)
		}
	}
	// Abandon: the canary sees main again.
	if err := admin.Abandon(ctx, "g", "k", "bad idea"); err != nil {
		t.Fatal(err)
	}
	if v := next(t, wCanary); v.Gray || string(v.Data) != "main" {
		t.Fatalf("canary after abandon = %+v", v)
	}
	if err := admin.Abandon(ctx, "g", "k", ""); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("second Abandon = %v", err)
	}
	// Promote: everyone sees the gray value as version 2.
	if _, err := admin.SetGray(ctx, "g", "k", []byte("gray2"), config.Rule{Selector: "canary"}, nil); err != nil {
		t.Fatal(err)
	}
	if v := next(t, wCanary); string(v.Data) != "gray2" {
		t.Fatalf("canary = %+v", v)
	}
	v, err := admin.Promote(ctx, "g", "k", "")
	if err != nil || v.Version != 2 || v.PromotedFrom == 0 {
		t.Fatalf("Promote = %+v, %v", v, err)
	}
	if v := next(t, wPlain); string(v.Data) != "gray2" || v.Version != 2 || v.Gray {
		t.Fatalf("plain watcher after promote = %+v", v)
	}
	if v := next(t, wCanary); string(v.Data) != "gray2" || v.Gray {
		t.Fatalf("canary watcher after promote = %+v", v)
	}
	if _, err := admin.GetGray(ctx, "g", "k"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("GetGray after promote = %v", err)
	}
	if _, err := admin.Promote(ctx, "g", "k", ""); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("Promote without gray = %v", err)
	}
}

func TestNamespaces(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	def, _ := config.New(conn, nil)
	team, _ := config.New(conn, &config.Config{Namespace: "team-a"})
	ctx := ctxT(t)
	_, err := team.Set(ctx, "g", "k", []byte("x"), nil)
	if !errors.Is(err, config.ErrNotFound) || !contains(err, "create it") {
		t.Fatalf("Set into unknown namespace = %v", err)
	}
	if err := def.CreateNamespace(ctx, "team-a", "for team a"); err != nil {
		t.Fatal(err)
	}
	if err := def.CreateNamespace(ctx, "team-a", ""); mortar.ErrorCode(err) != mortar.CodeAlreadyExists {
		t.Fatalf("second create = %v", err)
	}
	if _, err := team.Set(ctx, "g", "k", []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	nss, err := def.Namespaces(ctx)
	if err != nil || len(nss) != 2 || nss[0].NS != "default" || nss[1].NS != "team-a" {
		t.Fatalf("Namespaces = %+v, %v", nss, err)
	}
	if err := def.DeleteNamespace(ctx, "team-a"); mortar.ErrorCode(err) != mortar.CodeFailedPrecondition {
		t.Fatalf("delete non-empty namespace = %v", err)
	}
	if _, err := def.Get(ctx, "g", "k"); !errors.Is(err, config.ErrNotFound) {
		t.Fatalf("namespaces are separate: %v", err)
	}
	team.Delete(ctx, "g", "k", nil)
	if err := def.DeleteNamespace(ctx, "team-a"); err != nil {
		t.Fatal(err)
	}
	if err := def.DeleteNamespace(ctx, "default"); mortar.ErrorCode(err) != mortar.CodeFailedPrecondition {
		t.Fatalf("delete default = %v", err)
	}
}

func contains(err error, s string) bool {
	return err != nil && len(s) > 0 && stringsContains(err.Error(), s)
}

// TestRetriedRequestAppliesOnce: the same request ID twice (a client
// retry after a lost reply) stores one version.
func TestRetriedRequestAppliesOnce(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	ctx := ctxT(t)
	body := []byte(`{"group":"g","key":"k","value":"v"}`)
	var versions []uint64
	for range 2 {
		msg := natsMsg(mortar.APISubjectPrefix+"config.set", body, "req-1", n.Token())
		reply, err := conn.NATS().RequestMsgWithContext(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		if reply.Header.Get(mortar.HeaderError) != "" {
			t.Fatalf("error reply: %s", reply.Data)
		}
		var v configwire.VersionInfo
		mustJSON(t, reply.Data, &v)
		versions = append(versions, v.Version)
	}
	if versions[0] != 1 || versions[1] != 1 {
		t.Fatalf("versions of a retried set = %v, want [1 1]", versions)
	}
	c, _ := config.New(conn, nil)
	h, _, err := c.History(ctx, "g", "k", nil)
	if err != nil || len(h) != 1 {
		t.Fatalf("history after a retried set = %+v, %v", h, err)
	}
	// Malformed bodies are invalid_argument.
	for _, bad := range []string{`{"group":"g","key":"k","value":"v","bogus":1}`, `{"group":`, `{"group":"g","key":"k"}`, `{"group":"g","key":"k","value":"v","value_base64":"eA=="}`} {
		reply, err := conn.NATS().RequestMsgWithContext(ctx, natsMsg(mortar.APISubjectPrefix+"config.set", []byte(bad), mortar.NewID(), n.Token()))
		if err != nil {
			t.Fatal(err)
		}
		if code := reply.Header.Get(mortar.HeaderError); code != string(mortar.CodeInvalidArgument) {
			t.Errorf("config.set %s = %s %s, want invalid_argument", bad, code, reply.Data)
		}
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	n := mortartest.StartNode(t)
	c, _ := config.New(n.Dial(t), &config.Config{Labels: map[string]string{"canary": "1"}})
	ctx := ctxT(t)
	for i := 1; i <= 3; i++ {
		c.Set(ctx, "g", "k", fmt.Appendf(nil, "v%d", i), nil)
	}
	c.SetGray(ctx, "g", "k", []byte("gray"), config.Rule{Selector: "canary"}, nil)
	w, err := c.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w)
	n.Restart()
	if v, err := c.Get(ctx, "g", "k"); err != nil || string(v.Data) != "gray" {
		t.Fatalf("after restart Get = %+v, %v", v, err)
	}
	if v, err := c.GetVersion(ctx, "g", "k", 2); err != nil || string(v.Data) != "v2" {
		t.Fatalf("after restart GetVersion(2) = %+v, %v", v, err)
	}
	if err := c.Abandon(ctx, "g", "k", ""); err != nil {
		t.Fatal(err)
	}
	// The watcher resumes across the reconnect.
	if v := next(t, w); v.Gray || string(v.Data) != "v3" {
		t.Fatalf("watcher after restart and abandon = %+v", v)
	}
}

func TestClusterSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	cl := mortartest.StartCluster(t, 3)
	writer, _ := config.New(cl.Nodes[0].Dial(t), nil)
	reader, _ := config.New(cl.Nodes[2].Dial(t), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	w, err := reader.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next(t, w)
	for i := 1; i <= 5; i++ {
		if _, err := writer.Set(ctx, "g", "k", fmt.Appendf(nil, "%d", i), nil); err != nil {
			t.Fatal(err)
		}
		if v := next(t, w); v.Version != uint64(i) {
			t.Fatalf("watcher on another node: version %d, want %d", v.Version, i)
		}
	}
	if v, err := reader.Get(ctx, "g", "k"); err != nil || string(v.Data) != "5" {
		t.Fatalf("read via another node = %+v, %v", v, err)
	}
}

// TestWritesAlternatingNodes writes one key through two nodes in turn,
// with compare-and-set: each node's cached idea of the last version goes
// stale at every turn, and must never refuse a correct expected version
// or accept a wrong one.
func TestWritesAlternatingNodes(t *testing.T) {
	cl := mortartest.StartCluster(t, 3)
	a, _ := config.New(cl.Nodes[0].Dial(t), nil)
	b, _ := config.New(cl.Nodes[1].Dial(t), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for i := uint64(0); i < 10; i++ {
		c := a
		if i%2 == 1 {
			c = b
		}
		if i > 0 {
			behind := i - 1 // the version before the current one
			if _, err := c.Set(ctx, "g", "alt", []byte("x"), &config.SetOpts{ExpectedVersion: &behind}); !errors.Is(err, config.ErrConflict) {
				t.Fatalf("write %d with a stale expected version: %v, want conflict", i, err)
			}
		}
		v, err := c.Set(ctx, "g", "alt", fmt.Appendf(nil, "%d", i), &config.SetOpts{ExpectedVersion: &i})
		if err != nil {
			t.Fatalf("write %d through node %d: %v", i, i%2, err)
		}
		if v.Version != i+1 {
			t.Fatalf("write %d made version %d", i, v.Version)
		}
		// An unconditional write through the other node in between.
		other := b
		if c == b {
			other = a
		}
		if _, err := other.Set(ctx, "g", "other", []byte("y"), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWatchReplaysVersionsSkippedByOutage cuts a watcher off while a key
// changes five times; after it reconnects it returns all five versions,
// in order, not only the last.
func TestWatchReplaysVersionsSkippedByOutage(t *testing.T) {
	c, n := setup(t, nil)
	ctx := ctxT(t)
	p := mortartest.NewProxy(t, n.URL())
	wconn := p.Dial(t, n.Token())
	wc, _ := config.New(wconn, nil)
	if _, err := c.Set(ctx, "g", "k", []byte("v1"), nil); err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(ctx, "g", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if v := next(t, w); string(v.Data) != "v1" {
		t.Fatalf("first value %q", v.Data)
	}
	p.Cut()
	for wconn.NATS().IsConnected() {
		time.Sleep(10 * time.Millisecond)
	}
	for i := 2; i <= 6; i++ {
		if _, err := c.Set(ctx, "g", "k", fmt.Appendf(nil, "v%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	p.Restore()
	for i := 2; i <= 6; i++ {
		v := next(t, w)
		if want := fmt.Sprintf("v%d", i); string(v.Data) != want || v.Version != uint64(i) {
			t.Fatalf("after the outage: version %d %q, want %d %q", v.Version, v.Data, i, want)
		}
	}
}
