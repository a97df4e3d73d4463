// Package pushserver is the push gateway's half on a node: it holds long
// connections from devices and browsers (WebSocket and SSE on the admin
// port, length-prefixed frames on a TCP port) on an event loop, checks
// their connect tokens, detects dead ones with heartbeats on one timer
// wheel, and delivers pushes to a client ID, a user, a channel or everyone,
// wherever in the cluster they are published. docs/push.md is the
// protocol.
package pushserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/netpoll"
	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/internal/timerwheel"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Defaults of Config.
const (
	PingDefault           = 25 * time.Second
	PongDefault           = 8 * time.Second
	ConnectTimeoutDefault = 10 * time.Second
	MaxFrameDefault       = 64 << 10
	SendQueueDefault      = 1 << 20
	RateDefault           = 100
	BurstDefault          = 200
	TickDefault           = time.Second
)

// Same-client policies.
const (
	SameClientReplace = "replace" // a new connection closes the older one with the same client ID
	SameClientKeep    = "keep"    // both stay; the client's pushes reach each
)

// Config configures a Server.
type Config struct {
	// Store holds the channel history stream (nil history means off).
	Store *store.Store
	// Conn is the node's own NATS connection.
	Conn *nats.Conn
	// NodeName names this node in connection IDs and presence.
	NodeName string
	// Secrets verify connect tokens; the first also signs the tokens of
	// the push.token operation. At least one is required.
	Secrets [][]byte
	// Authenticate, when set, admits connections whose connect token is
	// a mortar credential (a session token or an API key) rather than a
	// push token: they act as its subject, and the client ID is theirs
	// to name.
	Authenticate func(ctx context.Context, credential, addr string) (*auth.Subject, error)
	// TokenPerms are the permissions of a connection whose push token
	// names none. Defaults to TokenPermsDefault.
	TokenPerms []string
	// TCPAddr is the length-prefixed TCP listener's address; "" means
	// none.
	TCPAddr string
	// Ping is the writer-idle time after which the node pings. Defaults
	// to PingDefault.
	Ping time.Duration
	// Pong is how long after Ping of reader silence a connection is
	// closed as idle. Defaults to PongDefault.
	Pong time.Duration
	// Idle closes connections that neither sent nor received data
	// (heartbeats aside) for this long. Zero means never.
	Idle time.Duration
	// ConnectTimeout is how long a new connection has to send connect.
	// Defaults to ConnectTimeoutDefault.
	ConnectTimeout time.Duration
	// SameClient is SameClientReplace (the default) or SameClientKeep.
	SameClient string
	// MaxFrame is the largest frame a client may send. Defaults to
	// MaxFrameDefault.
	MaxFrame int
	// SendQueue bounds the bytes queued to a connection; a client that
	// falls further behind is closed as slow. Defaults to
	// SendQueueDefault.
	SendQueue int
	// Rate and Burst bound the messages a client may send per second.
	// Default to RateDefault and BurstDefault.
	Rate  float64
	Burst int
	// Tick is the timer wheel's resolution. Defaults to TickDefault.
	Tick time.Duration
	// Loops is the number of event loops; defaults to GOMAXPROCS.
	Loops int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics is where the server registers its metrics; nil means
	// nowhere.
	Metrics prometheus.Registerer
}

func (c Config) withDefaults() (Config, error) {
	if c.Conn == nil {
		return c, errors.New("pushserver: a NATS connection is required")
	}
	if len(c.Secrets) == 0 || len(c.Secrets[0]) == 0 {
		return c, errors.New("pushserver: a token secret is required")
	}
	if c.MaxFrame < 0 || c.SendQueue < 0 || c.Rate < 0 || c.Burst < 0 || c.Idle < 0 {
		return c, errors.New("pushserver: max frame, send queue, rate, burst and idle must not be negative")
	}
	c.Ping = cmp.Or(c.Ping, PingDefault)
	c.Pong = cmp.Or(c.Pong, PongDefault)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, ConnectTimeoutDefault)
	c.SameClient = cmp.Or(c.SameClient, SameClientReplace)
	if c.SameClient != SameClientReplace && c.SameClient != SameClientKeep {
		return c, fmt.Errorf("pushserver: same-client policy %q: want %q or %q", c.SameClient, SameClientReplace, SameClientKeep)
	}
	c.MaxFrame = cmp.Or(c.MaxFrame, MaxFrameDefault)
	c.SendQueue = cmp.Or(c.SendQueue, SendQueueDefault)
	c.Rate = cmp.Or(c.Rate, RateDefault)
	c.Burst = cmp.Or(c.Burst, BurstDefault)
	c.Tick = cmp.Or(c.Tick, TickDefault)
	if c.Ping < c.Tick || c.Pong < c.Tick || c.ConnectTimeout < c.Tick {
		return c, fmt.Errorf("pushserver: ping, pong and connect timeout must be at least one tick (%s)", c.Tick)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.NodeName = cmp.Or(c.NodeName, "node")
	if len(c.TokenPerms) == 0 {
		c.TokenPerms = TokenPermsDefault
	}
	for _, p := range c.TokenPerms {
		if _, err := auth.ParsePermission(p); err != nil {
			return c, fmt.Errorf("pushserver: token perms: %w", err)
		}
	}
	return c, nil
}

// Server is the push gateway on one node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	hist    jetstream.Stream // nil when history is off
	epoch   string           // the history's identity: its creation time
	poll    *netpoll.Poller
	wheel   *timerwheel.Wheel[*conn]
	hub     hub
	dir     *directory
	acks    ackTable
	metrics *metrics

	serial  atomic.Uint64 // connection and ack numbers
	now     atomic.Int64  // Unix nanoseconds, refreshed every tick: cheap "now" for activity stamps
	running atomic.Bool   // Run has started the poller
	tcpAddr atomic.Value  // string: the TCP listener's address

	asyncMu   sync.Mutex     // orders goAsync's Add before Run's final Wait
	asyncDone bool           // Run is stopping: async work is dropped
	asyncWG   sync.WaitGroup // commands that wait for the engine
	async     chan struct{}  // bounds them
	ready     chan struct{}  // closed once Run listens and is subscribed
	handler   http.Handler
	subs      subjects // compiled push-token permissions
}

// maxAsync bounds commands waiting on the engine at once (subscribes with
// history, publishes); more wait their turn on their connection's loop.
const maxAsync = 256

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:   c,
		log:   c.Logger.With("component", "push"),
		nc:    c.Conn,
		hub:   newHub(),
		async: make(chan struct{}, maxAsync),
		ready: make(chan struct{}),
	}
	s.acks.init()
	s.dir = newDirectory(c.NodeName, dirIntervalDefault)
	s.hub.changed = s.dir.local
	s.now.Store(time.Now().UnixNano())
	if c.Store != nil && c.Store.Push != nil {
		s.hist = c.Store.Push
		s.epoch = strconv.FormatInt(s.hist.CachedInfo().Created.UnixNano(), 10)
	}
	s.poll, err = netpoll.New(&netpoll.Config{Loops: c.Loops, MaxPending: c.SendQueue, Logger: s.log}, handler{s})
	if err != nil {
		return nil, fmt.Errorf("pushserver: %w", err)
	}
	s.wheel, err = timerwheel.New(&timerwheel.Config{Tick: c.Tick, Slots: wheelSlots(c)}, s.onTimer)
	if err != nil {
		return nil, fmt.Errorf("pushserver: %w", err)
	}
	s.metrics = newMetrics(s, c.Metrics)
	s.handler = s.newHandler()
	return s, nil
}

// wheelSlots sizes the wheel so that the longest usual deadline fits in
// one revolution.
func wheelSlots(c Config) int {
	longest := max(c.Ping+c.Pong, c.ConnectTimeout, c.Idle)
	return int(longest/c.Tick) + 2
}

// Ready is closed once Run listens and receives pushes.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// TCPAddr returns the TCP listener's address once Run listens, or "".
func (s *Server) TCPAddr() string {
	a, _ := s.tcpAddr.Load().(string)
	return a
}

// Run serves until ctx ends, then tells every client the node is going
// away (1001, reconnect) and closes their connections.
func (s *Server) Run(ctx context.Context) error {
	var ln net.Listener
	if s.cfg.TCPAddr != "" {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.TCPAddr); err != nil {
			return fmt.Errorf("pushserver: tcp listen: %w", err)
		}
		s.tcpAddr.Store(ln.Addr().String())
	}
	subs, err := s.subscribe()
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	pctx, stopPoll := context.WithCancel(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	var loops sync.WaitGroup
	loops.Go(func() {
		if err := s.poll.Run(pctx); err != nil {
			s.log.Error("push event loop", "err", err)
		}
	})
	s.running.Store(true)
	g.Go(func() error { return s.wheel.Run(gctx) })
	g.Go(func() error { return s.clock(gctx) })
	g.Go(func() error { return s.runDirectory(gctx) })
	if ln != nil {
		g.Go(func() error { return s.acceptTCP(gctx, ln) })
		g.Go(func() error {
			<-gctx.Done()
			return ln.Close()
		})
	}
	close(s.ready)
	s.log.Info("push gateway serving", "tcp", s.TCPAddr(), "ping", s.cfg.Ping, "pong", s.cfg.Pong, "history", s.hist != nil)
	err = g.Wait()
	for _, sub := range subs {
		sub.Unsubscribe()
	}
	s.running.Store(false)
	s.shutdownConns()
	stopPoll()
	loops.Wait()
	s.asyncMu.Lock()
	s.asyncDone = true // no new async work once the loops are gone
	s.asyncMu.Unlock()
	s.asyncWG.Wait()
	return err
}

// clock refreshes s.now every tick.
func (s *Server) clock(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.now.Store(now.UnixNano())
			s.acks.expire(now)
		}
	}
}

// acceptTCP hands each accepted TCP connection to the event loop.
func (s *Server) acceptTCP(ctx context.Context, ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// EMFILE and friends: log, back off a little, keep serving.
			s.log.Warn("push tcp accept", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err := s.adopt(nc, nil, transportTCP, 0); err != nil {
			s.log.Debug("push tcp adopt", "err", err)
		}
	}
}

// adopt hands nc to the event loop as a new, unauthenticated connection.
func (s *Server) adopt(nc net.Conn, buffered []byte, tr transport, enc pushwire.Encoding) error {
	if !s.running.Load() {
		nc.Close()
		return errors.New("pushserver: not running")
	}
	c := s.newConn(tr, enc, nc.RemoteAddr())
	pc, err := s.poll.Add(nc, buffered, c)
	if err != nil {
		return err
	}
	c.attach(pc)
	return nil
}

// goAsync runs fn on its own goroutine, bounded by maxAsync, for a
// command that waits on the engine. While Run is stopping, fn is dropped:
// its connection is closing.
func (s *Server) goAsync(fn func()) {
	s.asyncMu.Lock()
	if s.asyncDone {
		s.asyncMu.Unlock()
		return
	}
	s.asyncWG.Add(1)
	s.asyncMu.Unlock()
	s.async <- struct{}{}
	go func() {
		defer s.asyncWG.Done()
		defer func() { <-s.async }()
		fn()
	}()
}

// shutdownGrace bounds how long shutdown waits for goodbyes to flush.
const shutdownGrace = time.Second

// shutdownConns tells every client the node is going away, and waits a
// little for those messages to be written.
func (s *Server) shutdownConns() {
	cs := s.hub.everyone()
	for _, c := range cs {
		c.close(disconnectShutdown)
	}
	if len(cs) == 0 {
		return
	}
	deadline := time.Now().Add(shutdownGrace)
	for time.Now().Before(deadline) {
		if n, _ := s.hub.len(); n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
