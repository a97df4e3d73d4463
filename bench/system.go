package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
)

// A system is one RPC implementation under test. Each system's file
// registers one from init.
type system struct {
	// name is what -systems and -system take, and what the report shows.
	name string
	// about says, for the report's header, what is measured and how it is
	// configured. Optional.
	about string
	// serve starts serving echo on l in the background and returns at
	// once. stop stops serving, closes l and every connection, and returns
	// after every goroutine serve started has exited.
	serve func(l net.Listener) (stop func() error, err error)
	// dial connects one client to addr ("127.0.0.1:port"). The caller it
	// returns is shared by every calling goroutine.
	dial func(ctx context.Context, addr string) (caller, error)
}

// A caller is one client connection. Echo is called from many goroutines
// at once and returns what the server sent back.
type caller interface {
	Echo(ctx context.Context, payload []byte) ([]byte, error)
	Close() error
}

// systems holds every registered system by name.
var systems = map[string]system{}

// preferredOrder is the order of the default -systems list; systems not in
// it follow, sorted by name.
var preferredOrder = []string{"netrpc", "grpc", "mortar"}

// register adds s to systems. It panics on a programmer error: a missing
// field or a name registered twice.
func register(s system) {
	if s.name == "" || s.serve == nil || s.dial == nil {
		panic(fmt.Sprintf("bench: register %q: name, serve and dial are required", s.name))
	}
	if _, dup := systems[s.name]; dup {
		panic(fmt.Sprintf("bench: register %q: registered twice", s.name))
	}
	systems[s.name] = s
}

// lookupSystem returns the registered system called name.
func lookupSystem(name string) (system, error) {
	s, ok := systems[name]
	if !ok {
		return system{}, fmt.Errorf("unknown system %q (registered: %s)", name, strings.Join(registeredNames(), ", "))
	}
	return s, nil
}

// registeredNames lists the registered systems in the default order.
func registeredNames() []string {
	names := make([]string, 0, len(systems))
	for _, n := range preferredOrder {
		if _, ok := systems[n]; ok {
			names = append(names, n)
		}
	}
	var rest []string
	for n := range systems {
		if !slices.Contains(preferredOrder, n) {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// serveInBackground runs serve in a goroutine and returns the stop func a
// system's serve returns: it calls shutdown, then waits for serve to
// return. An error from serve that is closed (such as a server's
// ErrServerClosed) counts as a clean stop; closed may be nil.
func serveInBackground(serve, shutdown func() error, closed error) (stop func() error) {
	var (
		wg       sync.WaitGroup
		serveErr error
	)
	wg.Go(func() { serveErr = serve() })
	return func() error {
		err := shutdown()
		wg.Wait()
		if serveErr != nil && (closed == nil || !errors.Is(serveErr, closed)) {
			err = errors.Join(err, fmt.Errorf("serve: %w", serveErr))
		}
		return err
	}
}
