// Command quickstart is mortar's quick start. With a node running
// (go run ./cmd/mortar server), it:
//
//   - serves a small Greeter service over the ZeroRPC protocol, and
//     registers it in the node's service registry as "Greeter";
//
//   - calls it through discovery (rpc.Dial "mortar://Greeter"), not by
//     address;
//
//   - reads its greeting from the config center (quickstart/greeter, a
//     JSON value bound to a struct) and follows changes live: change the
//     value from another terminal and the next call greets differently.
//
//     go run ./cmd/mortar server            # terminal 1
//     go run ./examples/quickstart          # terminal 2
//     go run ./cmd/mortar config set quickstart/greeter '{"greeting":"Hi"}'   # terminal 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/config"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/rpc"
)

// Settings is the service's configuration, kept in the config center.
type Settings struct {
	Greeting string `json:"greeting"`
}

// Greeter is the service. Every exported method becomes an RPC method,
// named in snake_case.
type Greeter struct {
	settings *config.Binding[Settings]
}

// Greet returns a greeting, in the words the config center holds now.
func (g *Greeter) Greet(name string) string {
	return g.settings.Get().Greeting + ", " + name + "!"
}

// Add returns a + b.
func (*Greeter) Add(a, b int) int { return a + b }

// Countdown streams n, n-1, … 1.
func (*Greeter) Countdown(ctx context.Context, n int, send func(int) error) error {
	for i := n; i > 0; i-- {
		if err := send(i); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	url := flag.String("url", mortar.DefaultURL, "NATS URL of the mortar node")
	once := flag.Bool("once", false, "change the greeting itself, show the effect and exit, instead of serving on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *url, *once); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

const (
	group = "quickstart"
	key   = "greeter"
)

func run(ctx context.Context, out io.Writer, url string, once bool) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := mortar.Dial(dctx, url, &mortar.Options{Name: "quickstart"})
	if err != nil {
		return fmt.Errorf("%w (start a node first: go run ./cmd/mortar server)", err)
	}
	defer conn.Close()

	// Configuration: seed the key once, then bind it to Settings.
	cfg, err := config.New(conn, &config.Config{Author: "quickstart"})
	if err != nil {
		return err
	}
	absent := uint64(0)
	_, err = cfg.Set(dctx, group, key, []byte(`{"greeting":"Hello"}`),
		&config.SetOpts{ContentType: config.TypeJSON, Comment: "quick start default", ExpectedVersion: &absent})
	if err != nil && !errors.Is(err, config.ErrConflict) { // conflict: it exists already
		return err
	}
	changed := make(chan Settings, 16)
	settings, err := config.Bind(ctx, cfg, group, key, &config.BindOpts[Settings]{
		OnChange: func(_, s Settings) { changed <- s },
		OnError:  func(err error) { fmt.Fprintln(out, "config:", err) },
	})
	if err != nil {
		return err
	}
	defer settings.Stop()

	// The service: served on a free port and registered as "Greeter".
	reg, err := registry.New(conn, nil)
	if err != nil {
		return err
	}
	srv := rpc.NewServer(&rpc.ServerConfig{Name: "Greeter", Registry: reg, Instance: registry.Instance{TTL: 5 * time.Second}})
	srv.HandleObject(&Greeter{settings: settings}, map[string]*rpc.MethodOpts{
		"Greet":     {Doc: "Return a greeting.", Args: []string{"name"}},
		"Add":       {Doc: "Return a + b.", Args: []string{"a", "b"}},
		"Countdown": {Doc: "Stream n, n-1, ... 1.", Args: []string{"n"}},
	})
	w, err := reg.Watch(dctx, "Greeter")
	if err != nil {
		return err
	}
	defer w.Stop()
	l, err := rpc.Listen("tcp://127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) // deregisters, then finishes calls in flight
		<-served
	}()
	id := net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	for {
		ev, err := w.Next(dctx)
		if err != nil {
			return fmt.Errorf("waiting for the registration: %w", err)
		}
		if ev.Type == registry.EventPut && ev.Instance.ID == id {
			fmt.Fprintf(out, "registered Greeter at %s (node %s)\n", ev.Instance.Endpoint(), ev.Instance.Node)
			break
		}
	}

	// A client that knows only the service's name.
	c, err := rpc.Dial(dctx, "mortar://Greeter", &rpc.ClientConfig{Registry: reg})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := demo(dctx, out, c); err != nil {
		return err
	}

	if once {
		if _, err := cfg.Set(dctx, group, key, []byte(`{"greeting":"Howdy"}`), &config.SetOpts{Comment: "quick start --once"}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "\nChange the greeting live from another terminal:\n")
		fmt.Fprintf(out, "  go run ./cmd/mortar config set %s/%s '{\"greeting\":\"Hi\"}'\n", group, key)
		fmt.Fprintf(out, "  go run ./cmd/mortar service list Greeter     # the registered instance\n")
		fmt.Fprintf(out, "Ctrl-C stops (and deregisters).\n")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-served:
			return err
		case s := <-changed:
			fmt.Fprintf(out, "config changed: greeting is now %q\n", s.Greeting)
			if err := greet(ctx, out, c); err != nil {
				return err
			}
			if once {
				return nil
			}
		}
	}
}

func greet(ctx context.Context, out io.Writer, c *rpc.Client) error {
	var greeting string
	if err := c.Call(ctx, "greet", &greeting, "Ada"); err != nil {
		return err
	}
	fmt.Fprintf(out, "greet(\"Ada\") = %q\n", greeting)
	return nil
}

// demo calls the service the way any Go client would.
func demo(ctx context.Context, out io.Writer, c *rpc.Client) error {
	if err := greet(ctx, out, c); err != nil {
		return err
	}
	var sum int
	if err := c.Call(ctx, "add", &sum, 40, 2); err != nil {
		return err
	}
	fmt.Fprintf(out, "add(40, 2) = %d\n", sum)
	fmt.Fprint(out, "countdown(3) =")
	for item, err := range c.Stream(ctx, "countdown", 3) {
		if err != nil {
			return err
		}
		var n int
		if err := item.Decode(&n); err != nil {
			return err
		}
		fmt.Fprintf(out, " %d", n)
	}
	fmt.Fprintln(out)
	return nil
}
