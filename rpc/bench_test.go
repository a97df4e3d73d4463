package rpc_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/rpc"
)

// BenchmarkEcho is a 16-byte echo round trip over loopback TCP, client and
// server in this process; bench/ compares it across processes with peers.
func BenchmarkEcho(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, ep := startServer(b, &rpc.ServerConfig{Logger: quiet}, func(s *rpc.Server) {
		s.Handle("echo16", func(p []byte) []byte { return p }, nil)
	})
	c := dial(b, ep, &rpc.ClientConfig{Logger: quiet})
	payload := bytes.Repeat([]byte{'x'}, 16)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		var got []byte
		for b.Loop() {
			if err := c.Call(ctx, "echo16", &got, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel64", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32) // 64 callers on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			var got []byte
			for pb.Next() {
				if err := c.Call(ctx, "echo16", &got, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEchoDiscovered is BenchmarkEcho through "mortar://echo": the
// same server, registered in a node's registry, called through a client
// that resolves it and picks per call (P2C). The difference to
// BenchmarkEcho/serial is the cost of discovery per call.
func BenchmarkEchoDiscovered(b *testing.B) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := mortartest.StartNode(b)
	rc, err := registry.New(n.Dial(b), &registry.Config{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	startServer(b, &rpc.ServerConfig{Logger: quiet, Registry: rc, Instance: registry.Instance{Service: "echo", TTL: time.Minute}}, func(s *rpc.Server) {
		s.Handle("echo16", func(p []byte) []byte { return p }, nil)
	})
	ctx := context.Background()
	c, err := rpc.Dial(ctx, "mortar://echo", &rpc.ClientConfig{Logger: quiet, Registry: rc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	payload := bytes.Repeat([]byte{'x'}, 16)
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); c.Call(ctx, "echo16", &got, payload) != nil; {
		if time.Now().After(deadline) {
			b.Fatal("echo never registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Call(ctx, "echo16", &got, payload); err != nil {
			b.Fatal(err)
		}
	}
}
