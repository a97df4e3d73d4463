package registry_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/registry"
)

// An instance registers with a lease and keeps it alive until Stop.
func ExampleClient_Register() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	reg, err := registry.New(conn, nil)
	if err != nil {
		log.Fatal(err)
	}
	r, err := reg.Register(ctx, registry.Instance{
		Service: "billing", ID: "billing-1",
		Address: "10.0.0.6", Port: 8080, Protocol: "http",
		Zone: "eu-1", TTL: 15 * time.Second,
		Check: &registry.Check{Type: registry.CheckHTTP}, // GET http://10.0.0.6:8080/health
	})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Stop(ctx) // deregisters
	fmt.Println("registered on node", r.Instance().Node)
}

// A client picks an instance per call from a live view of the service.
func ExampleClient_Resolve() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	reg, _ := registry.New(conn, nil)
	res, err := reg.Resolve(ctx, "billing", &registry.ResolverConfig{
		Balancer: registry.ZoneAffinity("eu-1", registry.P2C()),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer res.Close()
	in, done, err := res.Pick("")
	if err != nil {
		log.Fatal(err) // registry.ErrNoInstances: nothing fit to serve
	}
	start := time.Now()
	err = callBilling(ctx, in.Endpoint())
	done(time.Since(start), err) // feeds P2C's latency average
}

func callBilling(ctx context.Context, endpoint string) error {
	_ = endpoint // an HTTP request to endpoint
	return nil
}

// A watcher sees the instances registered now, then every change.
func ExampleClient_Watch() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	reg, _ := registry.New(conn, nil)
	w, err := reg.Watch(ctx, "billing")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Type, ev.Instance.ID, ev.Instance.Status)
	}
}
