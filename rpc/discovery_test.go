package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/rpc"
)

// member is one instance of the "echo" service in discovery tests.
type member struct {
	id    string
	srv   *rpc.Server
	calls atomic.Int64
	done  chan error
}

// startMember serves "whoami" on a loopback port and registers it as
// service echo through rc.
func startMember(t *testing.T, rc *registry.Client, id string) *member {
	t.Helper()
	m := &member{id: id, done: make(chan error, 1)}
	m.srv = rpc.NewServer(&rpc.ServerConfig{
		Name:     "echo",
		Logger:   testLogger(t),
		Registry: rc,
		Instance: registry.Instance{ID: id, TTL: time.Second},
	})
	m.srv.Handle("whoami", func() string { m.calls.Add(1); return id }, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { m.done <- m.srv.Serve(l) }()
	t.Cleanup(func() { m.srv.Close(); <-m.done })
	return m
}

// waitInstances waits until service has n instances in the registry.
func waitInstances(t *testing.T, rc *registry.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		list, err := rc.List(t.Context(), "echo")
		if err == nil && len(list) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo has %d instances (%v), want %d", len(list), err, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func registryClient(t *testing.T, conn *mortar.Conn) *registry.Client {
	t.Helper()
	rc, err := registry.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func TestDiscoveryBalancesAndFailsOver(t *testing.T) {
	n := mortartest.StartNode(t)
	rc := registryClient(t, n.Dial(t))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	if _, err := rpc.Dial(ctx, "mortar://echo", nil); err == nil {
		t.Fatal("mortar:// without a registry: no error")
	}
	c, err := rpc.Dial(ctx, "mortar://echo", &rpc.ClientConfig{Registry: rc, Balancer: registry.RoundRobin(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id string
	if err := c.Call(ctx, "whoami", &id); !errors.Is(err, registry.ErrNoInstances) {
		t.Fatalf("call with no instances: %v, want ErrNoInstances", err)
	}

	members := []*member{startMember(t, rc, "a"), startMember(t, rc, "b"), startMember(t, rc, "c")}
	waitInstances(t, rc, 3)
	// The client follows registrations live; once it sees all three,
	// round robin spreads calls evenly.
	deadline := time.Now().Add(10 * time.Second)
	seen := map[string]int{}
	for len(seen) < 3 && time.Now().Before(deadline) {
		if err := c.Call(ctx, "whoami", &id); err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	for _, m := range members {
		m.calls.Store(0)
	}
	for range 300 {
		if err := c.Call(ctx, "whoami", &id); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range members {
		if got := m.calls.Load(); got < 90 || got > 110 {
			t.Fatalf("instance %s got %d of 300 calls", m.id, got)
		}
	}

	// Calls keep flowing from 4 goroutines while one instance shuts down
	// gracefully and another crashes: none fails.
	var errs atomic.Int64
	var total atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var got string
				if err := c.Call(ctx, "whoami", &got); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				total.Add(1)
			}
		})
	}
	waitCalls := func(n int64) {
		t.Helper()
		target := total.Load() + n
		for total.Load() < target {
			if ctx.Err() != nil {
				t.Fatal("calls stalled")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCalls(200)
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	if err := members[0].srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	scancel()
	waitCalls(200)
	if _, err := rc.Get(ctx, "echo", "a"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("shut-down server still registered: %v", err)
	}
	close(stop)
	wg.Wait()
	if e := errs.Load(); e != 0 {
		t.Fatalf("%d of %d calls failed across a graceful shutdown; first: %v", e, total.Load(), firstErr.Load())
	}

	// A new instance gets calls as soon as the client sees it.
	d := startMember(t, rc, "d")
	waitInstances(t, rc, 3)
	deadline = time.Now().Add(10 * time.Second)
	for d.calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("new instance never called")
		}
		if err := c.Call(ctx, "whoami", &id); err != nil {
			t.Fatal(err)
		}
	}
	// Streams are balanced too.
	for item, err := range c.Stream(ctx, "whoami") {
		if err != nil {
			t.Fatal(err)
		}
		var s string
		if err := item.Decode(&s); err != nil || s == "" {
			t.Fatalf("stream item %q, %v", s, err)
		}
	}
}

func TestDiscoveryCrashedInstance(t *testing.T) {
	n := mortartest.StartNode(t)
	rc := registryClient(t, n.Dial(t))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// The crashing instance registers over its own connection, so that
	// closing it stops the heartbeats without a deregistration, as a
	// killed process does.
	crashConn := n.Dial(t)
	crash := startMember(t, registryClient(t, crashConn), "crash")
	startMember(t, rc, "steady")
	waitInstances(t, rc, 2)

	c, err := rpc.Dial(ctx, "mortar://echo", &rpc.ClientConfig{Registry: rc, RetryLostCalls: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var calls, failed int
	var firstErr error
	crashed := false
	for crash.calls.Load() == 0 || !crashed || calls < 2000 {
		if crash.calls.Load() > 0 && !crashed {
			crashConn.Close() // heartbeats stop; the lease lapses in about a second
			crash.srv.Close() // connections break mid-stream of calls
			crashed = true
		}
		var id string
		if err := c.Call(ctx, "whoami", &id); err != nil {
			failed++
			if firstErr == nil {
				firstErr = fmt.Errorf("call %d: %w", calls, err)
			}
		}
		calls++
		if ctx.Err() != nil {
			t.Fatal("timed out")
		}
	}
	if failed != 0 {
		t.Fatalf("%d of %d calls failed across a crash; first: %v", failed, calls, firstErr)
	}
	waitInstances(t, rc, 1) // evicted when its lease lapsed
}

func TestDiscoverySkipsOtherProtocols(t *testing.T) {
	n := mortartest.StartNode(t)
	rc := registryClient(t, n.Dial(t))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// An HTTP instance of the same service: a zerorpc client must not
	// pick it.
	if _, err := rc.RegisterOnce(ctx, registry.Instance{Service: "echo", ID: "web", Address: "127.0.0.1", Port: 1, Protocol: "http"}); err != nil {
		t.Fatal(err)
	}
	c, err := rpc.Dial(ctx, "mortar://echo", &rpc.ClientConfig{Registry: rc, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id string
	if err := c.Call(ctx, "whoami", &id); !errors.Is(err, registry.ErrNoInstances) {
		t.Fatalf("only an http instance: %v, want ErrNoInstances", err)
	}
	startMember(t, rc, "z")
	waitInstances(t, rc, 2)
	for deadline := time.Now().Add(10 * time.Second); c.Call(ctx, "whoami", &id) != nil; {
		if time.Now().After(deadline) {
			t.Fatal("zerorpc instance never reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 50 {
		if err := c.Call(ctx, "whoami", &id); err != nil || id != "z" {
			t.Fatalf("call = %q, %v", id, err)
		}
	}
}
