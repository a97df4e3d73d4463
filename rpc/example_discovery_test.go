package rpc_test

import (
	"context"
	"log"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/rpc"
)

// A zerorpc client that knows only the service's name, and a server that
// registers itself while it serves.
func ExampleDial_discovery() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	reg, _ := registry.New(conn, nil)

	srv := rpc.NewServer(&rpc.ServerConfig{Name: "orders", Registry: reg})
	srv.Handle("count", func() int { return 42 }, nil)
	go srv.ListenAndServe("tcp://127.0.0.1:4242")
	defer srv.Shutdown(ctx) // deregisters, waits a moment, drains

	c, err := rpc.Dial(ctx, "mortar://orders", &rpc.ClientConfig{Registry: reg, Balancer: registry.P2C()})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.Call(ctx, "count", &n); err != nil {
		log.Fatal(err)
	}
}
