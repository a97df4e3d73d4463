package rpc

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar/internal/msgpack"
	"github.com/mortarhq/mortar/internal/zmtp"
	"github.com/mortarhq/mortar/registry"
)

// Defaults for ServerConfig and ClientConfig fields.
const (
	HeartbeatIntervalDefault = 5 * time.Second // zerorpc's default
	HandshakeTimeoutDefault  = 10 * time.Second
	WriteTimeoutDefault      = 30 * time.Second
	MaxPendingDefault        = 4 << 20
	MaxCallsPerConnDefault   = 10000
	MaxMessageSizeDefault    = zmtp.MaxMessageSizeDefault
	ServerNameDefault        = "mortar"
)

// ServerConfig configures a Server. The zero value works.
type ServerConfig struct {
	// Name is what _zerorpc_name, _zerorpc_ping and _zerorpc_inspect
	// report. Defaults to ServerNameDefault.
	Name string
	// HeartbeatInterval is how often a long call's channel sends _zpc_hb;
	// a client silent for two intervals is lost and its call's context is
	// cancelled. Must match the clients' interval, as in zerorpc. Defaults
	// to HeartbeatIntervalDefault; negative disables heartbeats.
	HeartbeatInterval time.Duration
	// MaxMessageSize bounds one incoming message; a peer that sends a
	// larger one is disconnected. Defaults to MaxMessageSizeDefault.
	MaxMessageSize int64
	// HandshakeTimeout bounds the TLS and ZMTP handshakes of a new
	// connection. Defaults to HandshakeTimeoutDefault.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write to a peer; a peer that does not read
	// for that long is disconnected. Defaults to WriteTimeoutDefault.
	WriteTimeout time.Duration
	// MaxPending bounds the bytes queued for one peer before its handlers
	// wait for the peer to read. Defaults to MaxPendingDefault.
	MaxPending int
	// MaxCallsPerConn bounds the calls in flight on one connection; calls
	// beyond it are answered at once with an ERR named ServerBusy.
	// Defaults to MaxCallsPerConnDefault.
	MaxCallsPerConn int
	// TLSConfig, if set, makes Serve speak TLS on every listener.
	TLSConfig *tls.Config
	// Interceptors run around every call, the first outermost.
	Interceptors []Interceptor
	// Logger receives the server's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// Registry, if set, registers the server in the service registry for
	// each listener Serve starts on, keeps the registration alive with
	// heartbeats, and deregisters it when Shutdown or Close begins, so
	// that clients stop picking the server before it stops answering.
	Registry *registry.Client
	// Instance is the registration's template. Service defaults to Name;
	// ID to "ADDRESS:PORT"; Address and Port to the listener's (for a
	// wildcard listener, the machine's first non-loopback IPv4 address);
	// TTL to RegistrationTTLDefault.
	Instance registry.Instance
	// DeregisterGrace is how long Shutdown keeps serving normally after
	// deregistering, so that clients see the change and move away before
	// the server refuses calls and closes connections. Defaults to
	// DeregisterGraceDefault; negative means none. Unused without
	// Registry.
	DeregisterGrace time.Duration
}

// Defaults for a server's registration.
const (
	RegistrationTTLDefault = 15 * time.Second
	DeregisterGraceDefault = 500 * time.Millisecond
)

func (c *ServerConfig) withDefaults() ServerConfig {
	var cfg ServerConfig
	if c != nil {
		cfg = *c
	}
	cfg.Name = cmp.Or(cfg.Name, ServerNameDefault)
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, HeartbeatIntervalDefault)
	cfg.MaxMessageSize = cmp.Or(cfg.MaxMessageSize, MaxMessageSizeDefault)
	cfg.HandshakeTimeout = cmp.Or(cfg.HandshakeTimeout, HandshakeTimeoutDefault)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, WriteTimeoutDefault)
	cfg.MaxPending = cmp.Or(cfg.MaxPending, MaxPendingDefault)
	cfg.MaxCallsPerConn = cmp.Or(cfg.MaxCallsPerConn, MaxCallsPerConnDefault)
	cfg.DeregisterGrace = cmp.Or(cfg.DeregisterGrace, DeregisterGraceDefault)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "rpc")
	return cfg
}

var (
	// errShuttingDown is sent to calls that arrive during Shutdown.
	errShuttingDown = &RemoteError{Name: "ServerClosed", Message: "server is shutting down"}
	// errBusy is sent to calls beyond MaxCallsPerConn.
	errBusy = &RemoteError{Name: "ServerBusy", Message: "too many calls in flight on this connection"}
)

// Server serves zerorpc calls: a ZeroMQ ROUTER socket speaking ZMTP 3.1,
// reachable by zerorpc-python, zerorpc-node and mortar clients.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	methods atomic.Pointer[map[string]*method]
	ctx     context.Context // cancelled by Close: handlers stop
	cancel  context.CancelFunc
	wg      sync.WaitGroup   // every goroutine the server starts
	work    chan *serverCall // hands calls to idle workers

	mu        sync.Mutex                              // guards the fields below, and Handle's writes
	listeners map[net.Listener]*registry.Registration // nil value: not registered
	conns     map[*serverConn]struct{}
	inflight  int
	draining  bool          // no new listeners or calls
	closed    bool          // no new connections
	idle      chan struct{} // closed when draining and inflight is zero
}

// NewServer returns a server with the built-in introspection methods and
// no others. cfg may be nil.
func NewServer(cfg *ServerConfig) *Server {
	s := &Server{
		cfg:       cfg.withDefaults(),
		listeners: make(map[net.Listener]*registry.Registration),
		conns:     make(map[*serverConn]struct{}),
		work:      make(chan *serverCall),
	}
	s.log = s.cfg.Logger
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.methods.Store(&map[string]*method{})
	for _, m := range s.builtins() {
		s.add(m)
	}
	return s
}

// Handle exposes fn as the method name. fn's shape is
//
//	func([ctx context.Context,] args... [, send func(T) error]) ([R,] [error])
//
// or, for a stream, it may return iter.Seq[T] or iter.Seq2[T, error]
// instead of taking send. Arguments are decoded from msgpack into their Go
// types; a parameter of type any receives the value with its msgpack type
// preserved. Handle panics if fn has another shape: that is a programming
// error, like a bad pattern given to http.HandleFunc.
func (s *Server) Handle(name string, fn any, opts *MethodOpts) {
	if opts != nil && opts.Name != "" {
		name = opts.Name
	}
	m, err := newMethod(name, fn, opts)
	if err != nil {
		panic(err)
	}
	s.add(m)
}

// HandleObject exposes every exported method of obj, named in snake_case
// unless opts (keyed by Go method name) says otherwise.
func (s *Server) HandleObject(obj any, opts map[string]*MethodOpts) {
	v := reflect.ValueOf(obj)
	t := v.Type()
	for i := range t.NumMethod() {
		gm := t.Method(i)
		o := opts[gm.Name]
		s.Handle(snakeCase(gm.Name), v.Method(i).Interface(), o)
	}
	for name := range opts {
		if _, ok := t.MethodByName(name); !ok {
			panic(fmt.Sprintf("rpc: HandleObject: %T has no method %s", obj, name))
		}
	}
}

func (s *Server) add(m *method) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.methods.Load()
	next := make(map[string]*method, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[m.name] = m
	s.methods.Store(&next)
}

func (s *Server) lookup(name []byte) *method {
	return (*s.methods.Load())[string(name)]
}

// ListenAndServe listens on endpoint ("tcp://host:port" or "host:port")
// and serves on it.
func (s *Server) ListenAndServe(endpoint string) error {
	l, err := Listen(endpoint)
	if err != nil {
		return err
	}
	return s.Serve(l)
}

// Serve accepts connections on l until Shutdown or Close, and returns
// ErrServerClosed then. It closes l.
func (s *Server) Serve(l net.Listener) error {
	if s.cfg.TLSConfig != nil {
		l = tls.NewListener(l, s.cfg.TLSConfig)
	}
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	if err := s.register(l); err != nil {
		return err
	}
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		backoff = 0
		s.wg.Go(func() { s.serveConn(nc) })
	}
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.listeners[l] = nil
	return true
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	reg := s.listeners[l]
	delete(s.listeners, l)
	s.mu.Unlock()
	l.Close()
	s.deregister(context.Background(), reg)
}

// register registers the listener in the service registry, if the
// server has one.
func (s *Server) register(l net.Listener) error {
	if s.cfg.Registry == nil {
		return nil
	}
	in := s.cfg.Instance
	host, port, err := advertise(l.Addr(), in.Address)
	if err != nil {
		return fmt.Errorf("rpc: register %s: %w", l.Addr(), err)
	}
	in.Address = host
	in.Port = cmp.Or(in.Port, port)
	in.Service = cmp.Or(in.Service, s.cfg.Name)
	in.ID = cmp.Or(in.ID, net.JoinHostPort(host, strconv.Itoa(in.Port)))
	in.TTL = cmp.Or(in.TTL, RegistrationTTLDefault)
	if s.cfg.TLSConfig != nil && in.Metadata["tls"] == "" {
		in.Metadata = maps.Clone(in.Metadata)
		if in.Metadata == nil {
			in.Metadata = map[string]string{}
		}
		in.Metadata["tls"] = "true"
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	reg, err := s.cfg.Registry.Register(ctx, in)
	if err != nil {
		return fmt.Errorf("rpc: register as %s/%s: %w", in.Service, in.ID, err)
	}
	s.mu.Lock()
	_, live := s.listeners[l]
	if live && !s.draining {
		s.listeners[l] = reg
	}
	s.mu.Unlock()
	if !live || s.isClosing() {
		s.deregister(context.Background(), reg)
		return ErrServerClosed
	}
	s.log.Info("registered in the service registry", "service", in.Service, "id", in.ID, "endpoint", in.Endpoint())
	return nil
}

// deregister ends a registration, bounded by ctx and 5 seconds.
func (s *Server) deregister(ctx context.Context, reg *registry.Registration) {
	if reg == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	in := reg.Instance()
	if err := reg.Stop(ctx); err != nil {
		s.log.Warn("deregister from the service registry", "service", in.Service, "id", in.ID, "err", err)
	}
}

// deregisterAll ends every registration: the first step of Shutdown and
// Close, so that clients move elsewhere before the server stops. It
// reports whether there was any.
func (s *Server) deregisterAll(ctx context.Context) bool {
	s.mu.Lock()
	var regs []*registry.Registration
	for l, reg := range s.listeners {
		if reg != nil {
			regs = append(regs, reg)
			s.listeners[l] = nil
		}
	}
	s.mu.Unlock()
	for _, reg := range regs {
		s.deregister(ctx, reg)
	}
	return len(regs) > 0
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// Shutdown stops accepting connections and calls, waits for the calls in
// flight to finish and send their replies, then closes every connection.
// A server with a Registry first deregisters and keeps serving for
// DeregisterGrace, so that discovering clients move away first.
// Calls that arrive meanwhile get an ERR named ServerClosed. If ctx ends
// first, Shutdown cancels the remaining calls' contexts, closes, and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.deregisterAll(ctx) && s.cfg.DeregisterGrace > 0 {
		t := time.NewTimer(s.cfg.DeregisterGrace)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	s.mu.Lock()
	s.draining = true
	if s.idle == nil {
		s.idle = make(chan struct{})
		if s.inflight == 0 {
			close(s.idle)
		}
	}
	idle := s.idle
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	var err error
	select {
	case <-idle:
		err = s.flushConns(ctx)
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return err
}

// flushConns waits until the replies queued on every connection are
// written.
func (s *Server) flushConns(ctx context.Context) error {
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for sc := range s.conns {
		conns = append(conns, sc)
	}
	s.mu.Unlock()
	for _, sc := range conns {
		if err := sc.flush(ctx); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// Close stops the server at once: listeners and connections are closed and
// the contexts of calls in flight cancelled. It returns after every
// goroutine the server started has exited.
func (s *Server) Close() error {
	s.deregisterAll(context.Background())
	s.mu.Lock()
	s.draining, s.closed = true, true
	for l := range s.listeners {
		l.Close()
	}
	for sc := range s.conns {
		sc.close(ErrServerClosed)
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) callStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.inflight++
	return true
}

func (s *Server) callEnded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 && s.idle != nil {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
}

// serverConn is one client connection.
type serverConn struct {
	*conn
	srv    *Server
	peer   string
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the connection ends: stops heartbeats

	mu    sync.Mutex
	calls map[string]*serverCall
}

func (s *Server) serveConn(nc net.Conn) {
	peer := nc.RemoteAddr().String()
	nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	zc, err := zmtp.Handshake(nc, zmtp.Config{SocketType: zmtp.Router, MaxMessageSize: s.cfg.MaxMessageSize})
	if err != nil {
		s.log.Warn("handshake failed", "peer", peer, "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	sc := &serverConn{srv: s, peer: peer, calls: make(map[string]*serverCall)}
	sc.conn = newConn(zc, s.cfg.WriteTimeout, s.cfg.MaxPending)
	zc.SetPingHandler(sc.onPing)
	sc.ctx, sc.cancel = context.WithCancelCause(s.ctx)
	if !s.addConn(sc) {
		sc.close(ErrServerClosed)
		return
	}
	s.log.Debug("peer connected", "peer", peer, "socket_type", zc.PeerSocketType())
	s.wg.Go(sc.writeLoop)
	sc.done = make(chan struct{})
	if s.cfg.HeartbeatInterval > 0 {
		s.wg.Go(func() { heartbeats(sc.conn, s.cfg.HeartbeatInterval, sc.done, sc.snapshot) })
	}
	sc.read()
}

// read reads the connection until it ends, then cleans up; unless it hands
// reading to another goroutine (see runInline), which then does both.
func (sc *serverConn) read() {
	s := sc.srv
	err := sc.readMessages(sc.handle)
	if err == errHandedOff {
		return
	}
	close(sc.done)
	sc.cancel(ErrConnLost)
	sc.close(ErrConnLost)
	s.removeConn(sc)
	if isClosedErr(err) {
		s.log.Debug("peer disconnected", "peer", sc.peer)
	} else {
		s.log.Warn("peer dropped", "peer", sc.peer, "err", err)
	}
}

// inlineBudget is how long a call may run on the reading goroutine before
// another goroutine takes over reading.
const inlineBudget = time.Millisecond

// runInline runs c, the only call on the connection, on the reading
// goroutine: its reply leaves without a goroutine switch, the shortest
// path for a lone caller. If c is still running after inlineBudget, a new
// goroutine takes over reading, so a slow call never holds up the
// connection; runInline then reports that this goroutine is no longer the
// reader.
func (sc *serverConn) runInline(c *serverCall) (handedOff bool) {
	// Whoever flips decided first wins: the timer hands reading over, or
	// this goroutine, having finished in time, keeps it. A timer per run
	// keeps one run's timer from deciding for the next reader's run.
	var decided atomic.Bool
	t := time.AfterFunc(inlineBudget, func() {
		if decided.CompareAndSwap(false, true) {
			sc.srv.wg.Go(sc.read)
		}
	})
	sc.srv.runCall(c)
	if decided.CompareAndSwap(false, true) {
		t.Stop()
		return false
	}
	return true
}

func (s *Server) addConn(sc *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[sc] = struct{}{}
	return true
}

func (s *Server) removeConn(sc *serverConn) {
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
}

func (sc *serverConn) snapshot(buf []heartbeated) []heartbeated {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, c := range sc.calls {
		buf = append(buf, c)
	}
	return buf
}

// handle routes one incoming message: an event on an open channel goes to
// its call, any other event opens a channel and starts a call.
func (sc *serverConn) handle(envelope [][]byte, payload []byte) (handedOff bool) {
	var ev event
	if err := decodeEvent(payload, &ev); err != nil {
		sc.srv.log.Warn("dropped malformed event", "peer", sc.peer, "err", err)
		return false
	}
	if ev.respTo != nil {
		sc.mu.Lock()
		c := sc.calls[string(ev.respTo)]
		sc.mu.Unlock()
		if c != nil {
			c.control(&ev)
		}
		return false // else a late event for a finished call: nothing to do
	}
	if ev.msgID == nil {
		sc.srv.log.Warn("dropped event without message_id", "peer", sc.peer, "name", string(ev.name))
		return false
	}
	c := sc.startCall(envelope, payload)
	switch {
	case c == nil:
		return false
	case sc.active.Load() == 1 && !sc.zc.Buffered() && (c.m == nil || !c.m.streams()):
		// The only call, and no other request is waiting in the read
		// buffer. (A stream would wait for _zpc_more, which only the
		// reader can receive, so streams never run inline.)
		return sc.runInline(c)
	}
	sc.srv.dispatchCall(c)
	return false
}

// delimiter is the usual envelope of a DEALER's message: one empty frame.
var delimiter = [][]byte{{}}

func copyEnvelope(env [][]byte) [][]byte {
	switch {
	case len(env) == 0:
		return nil
	case len(env) == 1 && len(env[0]) == 0:
		return delimiter
	}
	out := make([][]byte, len(env))
	for i, e := range env {
		out[i] = append([]byte(nil), e...)
	}
	return out
}

// startCall opens the call's channel and returns the call to run, or nil
// if it was answered or dropped already.
func (sc *serverConn) startCall(envelope [][]byte, payload []byte) *serverCall {
	s := sc.srv
	c := &serverCall{sc: sc, credits: 1}
	c.payload = append([]byte(nil), payload...)
	var ev event
	decodeEvent(c.payload, &ev) // cannot fail: it decoded before the copy
	c.name, c.args, c.rawHeader = ev.name, ev.args, ev.rawHeader
	c.m = s.lookup(c.name)
	c.key = string(ev.msgID)
	c.init(ev.msgID, copyEnvelope(envelope))
	if !s.callStarted() {
		c.refuse(errShuttingDown)
		return nil
	}
	sc.mu.Lock()
	if _, dup := sc.calls[c.key]; dup {
		sc.mu.Unlock()
		s.callEnded()
		s.log.Warn("dropped request reusing an open channel's message_id", "peer", sc.peer)
		return nil
	}
	if len(sc.calls) >= s.cfg.MaxCallsPerConn {
		sc.mu.Unlock()
		s.callEnded()
		s.log.Warn("refused call: too many calls in flight on one connection", "peer", sc.peer, "limit", s.cfg.MaxCallsPerConn)
		c.refuse(errBusy)
		return nil
	}
	sc.calls[c.key] = c
	sc.mu.Unlock()
	sc.active.Add(1)
	c.ctx, c.cancel = context.WithCancelCause(sc.ctx)
	if ms := timeoutMillis(&ev); ms > 0 {
		var cancel context.CancelFunc
		c.ctx, cancel = context.WithTimeout(c.ctx, time.Duration(ms)*time.Millisecond)
		c.stopTimer = cancel
	}
	return c
}

// workerIdle is how long a call goroutine waits for another call before
// it exits.
const workerIdle = 10 * time.Second

// dispatchCall runs c on an idle worker goroutine, or a new one. Reusing
// goroutines keeps their grown stacks: a fresh goroutine per call spends
// a noticeable share of each call growing its stack.
func (s *Server) dispatchCall(c *serverCall) {
	select {
	case s.work <- c:
	default:
		s.wg.Go(func() { s.worker(c) })
	}
}

func (s *Server) worker(c *serverCall) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		s.runCall(c)
		idle.Reset(workerIdle)
		select {
		case c = <-s.work:
		case <-idle.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// maxTimeoutMillis caps timeout_ms at a year; larger values are ignored.
const maxTimeoutMillis = 365 * 24 * 3600 * 1000

// timeoutMillis reads mortar's timeout_ms header key, if present.
func timeoutMillis(ev *event) int64 {
	raw := headerValue(ev.rawHeader, HeaderTimeout)
	if raw == nil {
		return 0
	}
	ms, _, err := msgpack.ReadInt(raw)
	if err != nil || ms > maxTimeoutMillis {
		return 0
	}
	return ms
}

// serverCall is one call in flight on a server.
type serverCall struct {
	channel
	key       string // the channel ID, as the key of serverConn.calls
	sc        *serverConn
	scratch   [128]byte // encodes a small result without allocating
	payload   []byte    // the request event; the fields below alias it
	name      []byte
	m         *method // the method called, nil if the server has none
	args      []byte
	rawHeader []byte

	ctx       context.Context
	cancel    context.CancelCauseFunc
	stopTimer context.CancelFunc
	silent    atomic.Bool // the client is gone: send nothing more

	mu      sync.Mutex
	credits int           // events we may still send (_zpc_more adds)
	more    chan struct{} // made when a sender waits; signalled when credits arrive
}

func (c *serverCall) state() *channel { return &c.channel }

// refuse answers a call that will not run, on a channel never registered.
func (c *serverCall) refuse(re *RemoteError) {
	c.ctx = c.sc.ctx
	c.send(evErr, encodeRemoteError(re))
}

func (c *serverCall) lost() {
	if !c.silent.Swap(true) {
		c.sc.srv.log.Warn("lost remote: no heartbeat", "peer", c.sc.peer, "method", string(c.name))
		c.cancel(ErrLostRemote)
	}
}

// control handles an event the client sent on the call's channel.
func (c *serverCall) control(ev *event) {
	c.lastSeen.Store(mono())
	switch string(ev.name) {
	case evMore:
		n, ok := moreCredits(ev.args)
		if !ok {
			c.sc.srv.log.Warn("dropped malformed _zpc_more", "peer", c.sc.peer)
			return
		}
		c.mu.Lock()
		c.credits += n
		more := c.more
		c.mu.Unlock()
		if more != nil {
			select {
			case more <- struct{}{}:
			default:
			}
		}
	case evCancel:
		c.silent.Store(true)
		c.cancel(context.Canceled)
	}
}

// moreCredits reads the count of a _zpc_more event's args (n,).
func moreCredits(args []byte) (int, bool) {
	n, rest, err := msgpack.ReadArrayHeader(args)
	if err != nil || n < 1 {
		return 0, false
	}
	v, _, err := msgpack.ReadInt(rest)
	if err != nil || v < 0 || v > 1<<20 {
		return 0, false
	}
	return int(v), true
}

// send sends one event on the call's channel once the client has room for
// it (zerorpc's flow control: one event on credit, more per _zpc_more).
func (c *serverCall) send(name string, args []byte) error {
	if c.silent.Load() {
		return context.Cause(c.ctx)
	}
	for {
		c.mu.Lock()
		if c.credits > 0 {
			c.credits--
			c.mu.Unlock()
			break
		}
		if c.more == nil {
			c.more = make(chan struct{}, 1)
		}
		more := c.more
		c.mu.Unlock()
		select {
		case <-more:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		}
	}
	return c.sc.sendEvent(c.envelope, c.id, nil, name, args)
}

func (s *Server) runCall(c *serverCall) {
	defer s.endCall(c)
	req := &Request{Method: string(c.name), Peer: c.sc.peer, rawHeader: c.rawHeader}
	ctx := context.WithValue(c.ctx, requestKey{}, req)
	var result []byte
	var streamed bool
	var err error
	if len(s.cfg.Interceptors) == 0 {
		result, streamed, err = s.dispatch(ctx, c)
	} else {
		err = chain(s.cfg.Interceptors, ctx, req, func(ctx context.Context) error {
			var err error
			result, streamed, err = s.dispatch(ctx, c)
			return err
		})
	}
	if c.silent.Load() {
		return
	}
	switch {
	case err != nil:
		re := toRemote(err)
		if re.Name == PanicErrorName {
			s.log.Error("handler panicked", "method", req.Method, "peer", c.sc.peer, "panic", re.Message, "stack", re.Traceback)
		}
		err = c.send(evErr, encodeRemoteError(re))
	case streamed:
		err = c.send(evStreamDone, nilArgs)
	default:
		err = c.send(evOK, result)
	}
	if err != nil && !c.silent.Load() {
		s.log.Debug("reply not sent", "method", req.Method, "peer", c.sc.peer, "err", err)
	}
}

func (s *Server) endCall(c *serverCall) {
	c.sc.mu.Lock()
	delete(c.sc.calls, c.key)
	c.sc.mu.Unlock()
	c.sc.active.Add(-1)
	if c.stopTimer != nil {
		c.stopTimer()
	}
	c.cancel(nil)
	s.callEnded()
}

var nilArgs = []byte{0xc0}

// dispatch runs the method and returns the encoded args of its OK reply,
// or streamed if it sent STREAM events instead.
func (s *Server) dispatch(ctx context.Context, c *serverCall) (result []byte, streamed bool, err error) {
	m := c.m
	if m == nil {
		return nil, false, &RemoteError{Name: NameErrorName, Message: string(c.name)}
	}
	streamed = m.streams()
	var scratch []byte
	emit := func(item any) error {
		b, err := msgpack.Append(scratch[:0], item)
		if err != nil {
			return fmt.Errorf("rpc: encode stream item: %w", err)
		}
		scratch = b
		return c.send(evStream, b)
	}
	v, err := m.invoke(ctx, c.args, emit)
	if err != nil || streamed {
		return nil, streamed, err
	}
	if raw, ok := v.(Raw); ok {
		v = msgpack.Raw(raw)
	}
	b := msgpack.AppendArrayHeader(c.scratch[:0], 1)
	if b, err = msgpack.Append(b, v); err != nil {
		return nil, false, fmt.Errorf("rpc: encode result of %s: %w", m.name, err)
	}
	return b, false, nil
}

// encodeRemoteError encodes ERR's args [name, message, traceback].
func encodeRemoteError(re *RemoteError) []byte {
	b := msgpack.AppendArrayHeader(nil, 3)
	b = msgpack.AppendString(b, re.Name)
	b = msgpack.AppendString(b, re.Message)
	return msgpack.AppendString(b, re.Traceback)
}
