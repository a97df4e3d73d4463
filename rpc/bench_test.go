package rpc_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

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
