// Command testservice serves TestService, mortar's zerorpc conformance
// service, so that any zerorpc client can check interoperability:
//
//	go run ./examples/testservice --endpoint tcp://127.0.0.1:4242
//	zerorpc tcp://127.0.0.1:4242 add 1 2     # zerorpc-python's CLI
//	mortar call tcp://127.0.0.1:4242 add 1 2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mortarhq/mortar/internal/testservice"
	"github.com/mortarhq/mortar/rpc"
)

func main() {
	endpoint := flag.String("endpoint", "tcp://127.0.0.1:4242", "endpoint to listen on: tcp://HOST:PORT or ipc:///PATH")
	heartbeat := flag.Float64("heartbeat", 5, "heartbeat interval in seconds (zerorpc's default is 5)")
	flag.Parse()
	if err := run(*endpoint, time.Duration(*heartbeat*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "testservice:", err)
		os.Exit(1)
	}
}

func run(endpoint string, heartbeat time.Duration) error {
	if heartbeat <= 0 {
		return errors.New("--heartbeat must be positive")
	}
	l, err := rpc.Listen(endpoint)
	if err != nil {
		return err
	}
	srv := rpc.NewServer(&rpc.ServerConfig{Name: testservice.Name, HeartbeatInterval: heartbeat})
	testservice.Register(srv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	// The address line is the readiness signal scripts wait for.
	fmt.Printf("TestService listening on %s\n", rpc.Endpoint(l.Addr()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	return err
}
