package rpc_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mortarhq/mortar/internal/testservice"
	"github.com/mortarhq/mortar/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger sends logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startServer serves TestService (plus what register adds) on a loopback
// port and returns its endpoint. The server is closed when the test ends.
func startServer(t testing.TB, cfg *rpc.ServerConfig, register func(*rpc.Server)) (*rpc.Server, string) {
	t.Helper()
	if cfg == nil {
		cfg = &rpc.ServerConfig{}
	}
	cfg.Name = testservice.Name
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv := rpc.NewServer(cfg)
	testservice.Register(srv)
	if register != nil {
		register(srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != rpc.ErrServerClosed {
			t.Errorf("Serve() = %v, want ErrServerClosed", err)
		}
	})
	return srv, rpc.Endpoint(l.Addr())
}

func dial(t testing.TB, endpoint string, cfg *rpc.ClientConfig) *rpc.Client {
	t.Helper()
	if cfg == nil {
		cfg = &rpc.ClientConfig{}
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, endpoint, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSmoke(t *testing.T) {
	_, ep := startServer(t, nil, nil)
	c := dial(t, ep, nil)
	ctx := t.Context()
	var s string
	if err := c.Call(ctx, "hello", &s); err != nil || s != "hello" {
		t.Fatalf("hello() = %q, %v", s, err)
	}
	var sum int
	if err := c.Call(ctx, "add", &sum, 1, 2); err != nil || sum != 3 {
		t.Fatalf("add(1,2) = %d, %v", sum, err)
	}
	var items []int
	for item, err := range c.Stream(ctx, "count", 5) {
		if err != nil {
			t.Fatal(err)
		}
		var n int
		item.Decode(&n)
		items = append(items, n)
	}
	t.Log(items)
}
