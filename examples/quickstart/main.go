// Command quickstart is mortar's RPC quick start: it serves a small
// service over the ZeroRPC protocol, calls it through a client over TCP,
// prints what came back, and keeps serving so that other clients
// (mortar call, zerorpc-python, zerorpc-node) can call it too.
//
//	go run ./examples/quickstart
//	go run ./cmd/mortar call tcp://127.0.0.1:4242 greet Ada   # another terminal
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mortarhq/mortar/rpc"
)

// Greeter is the service. Every exported method becomes an RPC method,
// named in snake_case.
type Greeter struct{}

// Greet returns a greeting.
func (Greeter) Greet(name string) string { return "Hello, " + name + "!" }

// Add returns a + b.
func (Greeter) Add(a, b int) int { return a + b }

// Countdown streams n, n-1, … 1.
func (Greeter) Countdown(ctx context.Context, n int, send func(int) error) error {
	for i := n; i > 0; i-- {
		if err := send(i); err != nil {
			return err
		}
	}
	return nil
}

// Divide returns a / b, or an error the caller receives as a RemoteError.
func (Greeter) Divide(a, b float64) (float64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	return a / b, nil
}

func main() {
	endpoint := flag.String("endpoint", "tcp://127.0.0.1:4242", "where to serve")
	once := flag.Bool("once", false, "exit after the demo calls instead of serving on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *endpoint, *once); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, endpoint string, once bool) error {
	srv := rpc.NewServer(&rpc.ServerConfig{Name: "Greeter"})
	srv.HandleObject(Greeter{}, map[string]*rpc.MethodOpts{
		"Greet":     {Doc: "Return a greeting.", Args: []string{"name"}},
		"Add":       {Doc: "Return a + b.", Args: []string{"a", "b"}},
		"Countdown": {Doc: "Stream n, n-1, ... 1.", Args: []string{"n"}},
		"Divide":    {Doc: "Return a / b.", Args: []string{"a", "b"}},
	})
	l, err := rpc.Listen(endpoint)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	fmt.Fprintf(out, "serving Greeter on %s\n", rpc.Endpoint(l.Addr()))

	if err := demo(ctx, out, rpc.Endpoint(l.Addr())); err != nil {
		srv.Close()
		<-served
		return err
	}
	if !once {
		fmt.Fprintf(out, "\ntry: go run ./cmd/mortar call %s            (lists methods)\n", rpc.Endpoint(l.Addr()))
		fmt.Fprintf(out, "     go run ./cmd/mortar call %s countdown 3\nCtrl-C stops.\n", rpc.Endpoint(l.Addr()))
		select {
		case <-ctx.Done():
		case err := <-served:
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdown)
	<-served
	return err
}

// demo calls the service the way any Go client would.
func demo(ctx context.Context, out io.Writer, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := rpc.Dial(ctx, endpoint, nil)
	if err != nil {
		return err
	}
	defer c.Close()

	var greeting string
	if err := c.Call(ctx, "greet", &greeting, "Ada"); err != nil {
		return err
	}
	fmt.Fprintf(out, "greet(\"Ada\") = %q\n", greeting)

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

	err = c.Call(ctx, "divide", nil, 1, 0)
	if re, ok := errors.AsType[*rpc.RemoteError](err); ok {
		fmt.Fprintf(out, "divide(1, 0) failed remotely: %s\n", re.Message)
		return nil
	}
	return fmt.Errorf("divide(1, 0) = %v, want a remote error", err)
}
