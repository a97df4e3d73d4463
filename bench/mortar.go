package main

import (
	"context"
	"io"
	"log/slog"
	"net"

	"github.com/mortarhq/mortar/rpc"
)

// mortar's rpc package: a ZeroRPC server with an "echo" method taking and
// returning bin, one rpc.Client per connection, Client.Call from every
// goroutine. Default configuration.
func init() {
	register(system{name: "mortar", about: "mortar rpc: ZeroRPC over ZMTP 3.1 with msgpack, default config", serve: serveMortar, dial: dialMortar})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func serveMortar(l net.Listener) (func() error, error) {
	srv := rpc.NewServer(&rpc.ServerConfig{Name: "bench", Logger: quiet})
	srv.Handle("echo", func(p []byte) []byte { return p }, nil)
	return serveInBackground(func() error { return srv.Serve(l) }, srv.Close, rpc.ErrServerClosed), nil
}

type mortarCaller struct{ c *rpc.Client }

func dialMortar(ctx context.Context, addr string) (caller, error) {
	c, err := rpc.Dial(ctx, "tcp://"+addr, &rpc.ClientConfig{Logger: quiet})
	if err != nil {
		return nil, err
	}
	return mortarCaller{c}, nil
}

func (m mortarCaller) Echo(ctx context.Context, payload []byte) ([]byte, error) {
	var reply []byte
	err := m.c.Call(ctx, "echo", &reply, payload)
	return reply, err
}

func (m mortarCaller) Close() error { return m.c.Close() }
