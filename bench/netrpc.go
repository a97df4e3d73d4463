package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"sync"
)

// net/rpc with its default gob codec: an Echo.Echo service, one rpc.Client
// per connection, synchronous Client.Call from every goroutine.
func init() {
	register(system{
		name:  "netrpc",
		about: "net/rpc, gob codec, synchronous Client.Call",
		serve: serveNetRPC,
		dial:  dialNetRPC,
	})
}

// echoService is registered as "Echo".
type echoService struct{}

// Echo replies with its argument.
func (echoService) Echo(args []byte, reply *[]byte) error {
	*reply = args
	return nil
}

func serveNetRPC(l net.Listener) (func() error, error) {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Echo", echoService{}); err != nil {
		return nil, fmt.Errorf("netrpc: register: %w", err)
	}
	cs := &connSet{conns: map[net.Conn]struct{}{}}
	stop := serveInBackground(
		func() error { return cs.serve(l, func(c net.Conn) { srv.ServeConn(c) }) },
		func() error { return errors.Join(l.Close(), cs.close()) },
		net.ErrClosed,
	)
	return stop, nil
}

// connSet is an accept loop that, unlike rpc.Server.Accept, keeps track of
// its connections so that close can end them and wait for their goroutines.
type connSet struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// serve accepts connections on l and runs handle on each until l is closed.
func (cs *connSet) serve(l net.Listener, handle func(net.Conn)) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("netrpc: accept: %w", err)
		}
		if !cs.start(c, handle) {
			c.Close()
			return net.ErrClosed
		}
	}
}

// start runs handle(c) in a goroutine that close waits for, unless close
// has begun. It starts the goroutine under mu so that close never misses
// one.
func (cs *connSet) start(c net.Conn, handle func(net.Conn)) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	cs.conns[c] = struct{}{}
	cs.wg.Go(func() {
		handle(c)
		cs.remove(c)
	})
	return true
}

func (cs *connSet) remove(c net.Conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
}

// close closes every connection and waits for their handlers to return.
func (cs *connSet) close() error {
	cs.mu.Lock()
	cs.closed = true
	var errs []error
	for c := range cs.conns {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	cs.mu.Unlock()
	cs.wg.Wait()
	return errors.Join(errs...)
}

type netRPCCaller struct{ c *rpc.Client }

func dialNetRPC(ctx context.Context, addr string) (caller, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netrpc: dial %s: %w", addr, err)
	}
	return netRPCCaller{rpc.NewClient(conn)}, nil
}

// Echo ignores ctx: net/rpc's Client.Call takes none. A dead server ends
// the call by closing the connection.
func (n netRPCCaller) Echo(_ context.Context, payload []byte) ([]byte, error) {
	var reply []byte
	if err := n.c.Call("Echo.Echo", payload, &reply); err != nil {
		return nil, fmt.Errorf("netrpc: call: %w", err)
	}
	return reply, nil
}

func (n netRPCCaller) Close() error { return n.c.Close() }
