// Package netpoll serves many mostly idle TCP connections from a few event
// loop goroutines instead of a goroutine (and its stack and read buffer) per
// connection, for the push gateway's WebSocket connections.
//
// A [Poller] takes ownership of a connection with [Poller.Add], for example
// one hijacked from net/http after a WebSocket upgrade, and calls its
// [Handler] as data arrives. An idle [Conn] holds no buffers: reads go into
// the loop's shared buffer, and a write queue exists only while the kernel
// is not accepting data as fast as [Conn.Write] is called.
//
// # Implementations
//
// On Linux each loop is an epoll instance (level-triggered) serving its share
// of connections; the connection's file descriptor is duplicated away from
// the Go runtime's poller. On other systems, or on Linux when built with the
// netpoll_portable tag (which the tests use to check both), each Conn gets a
// reader goroutine and, while it has queued output, a writer goroutine. The
// API and its guarantees are the same; only the cost per connection differs.
//
// # Lifecycle
//
// [Poller.Run] serves until its context ends, then closes every Conn and
// returns once all of the poller's goroutines have exited. Conns may be added
// before Run starts; they are served once it does. Add fails with [ErrClosed]
// after Run has returned.
//
// Each Conn sees zero or more [Handler.OnData] calls, never concurrently, then
// exactly one [Handler.OnClose]. Half-closed connections are not supported: a
// peer's FIN (read EOF) closes the Conn.
package netpoll

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	// ErrClosed is returned by Conn methods once the Conn is closing or
	// closed, by [Poller.Add] once the Poller has stopped, and passed to
	// [Handler.OnClose] for Conns closed because [Poller.Run] ended.
	ErrClosed = errors.New("netpoll: connection closed")

	// ErrSlow is returned by [Conn.Write] when queueing the data would take
	// the Conn's unwritten output over [Config.MaxPending]. Nothing of the
	// data is written or queued, so the stream stays intact; the caller
	// usually closes the Conn.
	ErrSlow = errors.New("netpoll: too much output pending")
)

// Defaults for [Config].
const (
	ReadBufferDefault   = 64 << 10
	MaxPendingDefault   = 1 << 20
	CloseTimeoutDefault = time.Second
)

// Config configures a [Poller]. The zero value is ready to use.
type Config struct {
	// Loops is the number of event loops, each a goroutine with its own
	// epoll instance and read buffer. Defaults to runtime.GOMAXPROCS(0).
	Loops int

	// ReadBuffer is the size of each loop's shared read buffer, the most
	// that one OnData call delivers. With the portable implementation it is
	// allocated per Conn instead. Defaults to ReadBufferDefault.
	ReadBuffer int

	// MaxPending is how many unwritten bytes a Conn may queue before
	// [Conn.Write] fails with [ErrSlow]; a single Write larger than this
	// always fails. Defaults to MaxPendingDefault.
	MaxPending int

	// CloseTimeout bounds how long [Conn.CloseAfter] waits for queued output
	// to drain and for the peer to close. Defaults to CloseTimeoutDefault.
	CloseTimeout time.Duration

	// Logger receives the poller's own diagnostics. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Handler receives a Conn's events.
//
// OnData runs on the Conn's loop goroutine and never concurrently for one
// Conn. b is valid only during the call: it is the loop's shared read buffer,
// which the handler may modify in place (to unmask a WebSocket payload, say)
// but must copy to keep. A slow OnData delays every Conn on the same loop.
//
// OnClose runs exactly once per Conn, after which no OnData follows. err is
// nil after [Conn.Close] or [Conn.CloseAfter], [ErrClosed] when [Poller.Run]
// ended, io.EOF when the peer closed, and otherwise the read or write error.
type Handler interface {
	OnData(c *Conn, b []byte)
	OnClose(c *Conn, err error)
}

// Poller runs event loops serving the Conns added to it.
type Poller struct {
	cfg Config
	h   Handler
	log *slog.Logger
	n   atomic.Int64 // open Conns

	pollerSys
}

// New returns a Poller that calls h for every Conn. A nil cfg means all
// defaults. New starts nothing; call [Poller.Run].
func New(cfg *Config, h Handler) (*Poller, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if h == nil {
		return nil, errors.New("netpoll: handler is required")
	}
	if c.Loops < 0 || c.ReadBuffer < 0 || c.MaxPending < 0 || c.CloseTimeout < 0 {
		return nil, errors.New("netpoll: negative Loops, ReadBuffer, MaxPending or CloseTimeout")
	}
	c.Loops = cmp.Or(c.Loops, runtime.GOMAXPROCS(0))
	c.ReadBuffer = cmp.Or(c.ReadBuffer, ReadBufferDefault)
	c.MaxPending = cmp.Or(c.MaxPending, MaxPendingDefault)
	c.CloseTimeout = cmp.Or(c.CloseTimeout, CloseTimeoutDefault)
	log := cmp.Or(c.Logger, slog.Default())
	p := &Poller{cfg: c, h: h, log: log.With("component", "netpoll")}
	p.init()
	return p, nil
}

// Len returns the number of Conns added and not yet closed, including those
// added before Run.
func (p *Poller) Len() int { return int(p.n.Load()) }

// Add takes ownership of nc, which must be a socket connection implementing
// syscall.Conn, such as a *net.TCPConn hijacked from net/http or dialled;
// nc is closed (its descriptor lives on in the Conn) even if Add fails, and
// must not be used again. buffered holds bytes already read from nc, such as
// a hijacked bufio.Reader's buffered bytes; they are copied and delivered in
// the first OnData call, before anything read from the socket. data is
// returned by [Conn.Data]. Add may be called before [Poller.Run].
func (p *Poller) Add(nc net.Conn, buffered []byte, data any) (*Conn, error) {
	c := &Conn{data: data}
	ra := nc.RemoteAddr()
	if ta, ok := ra.(*net.TCPAddr); ok {
		c.raddr = ta.AddrPort()
	} else {
		c.other = ra
	}
	if _, ok := nc.(syscall.Conn); !ok {
		nc.Close()
		return nil, fmt.Errorf("netpoll: add: %T does not implement syscall.Conn", nc)
	}
	if err := p.add(c, nc, buffered); err != nil {
		return nil, err
	}
	return c, nil
}

// Run serves Conns until ctx ends, then closes every Conn (OnClose receives
// [ErrClosed]) and returns nil once every goroutine it started has exited.
// It returns an error if a loop fails. Run may be called only once.
func (p *Poller) Run(ctx context.Context) error { return p.run(ctx) }

// Conn is a connection owned by a [Poller]. Its methods are safe for
// concurrent use, including from the Handler.
type Conn struct {
	connSys
	data  any
	raddr netip.AddrPort // remote address of a TCP connection
	other net.Addr       // remote address of any other kind of connection
}

// Data returns the value passed to [Poller.Add].
func (c *Conn) Data() any { return c.data }

// RemoteAddr returns the remote address of the connection. For TCP it is
// a new *net.TCPAddr each call, built from a compact copy kept in the Conn.
func (c *Conn) RemoteAddr() net.Addr {
	if c.raddr.IsValid() {
		return net.TCPAddrFromAddrPort(c.raddr)
	}
	return c.other
}

// Write sends b without blocking. It writes directly to the socket when no
// output is queued and queues (copies) what the socket does not accept, to
// be written as it drains; the bytes of one Write are never interleaved with
// another's. Write fails with [ErrSlow] if the queue would exceed
// [Config.MaxPending] and with [ErrClosed] once the Conn is closing. If the
// socket fails, the Conn closes and OnClose receives the error; a Write
// whose own write(2) failed returns that error too.
func (c *Conn) Write(b []byte) error { return c.send(b, nil) }

// Writev is like [Conn.Write] for the concatenation of bufs, written with one
// writev(2) system call where possible.
func (c *Conn) Writev(bufs ...[]byte) error { return c.send(nil, bufs) }

// Close closes the Conn now, discarding output not yet handed to the socket
// (on Linux, what Write had to queue; with the portable implementation,
// possibly all of it); use [Conn.CloseAfter] to send something and then
// close. OnClose(c, nil) follows. Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.close()
	return nil
}

// CloseAfter writes final (for example a WebSocket close frame) after any
// queued output, then half-closes the connection and closes it once the peer
// closes too or [Config.CloseTimeout] has passed, whichever is first. Writes
// fail with [ErrClosed] from now on and no more OnData is delivered;
// OnClose(c, nil) follows. It does nothing if the Conn is already closing.
func (c *Conn) CloseAfter(final []byte) { c.closeAfter(final) }

// Conn states. A Conn moves only forward through them.
const (
	stateOpen     uint8 = iota
	stateDraining       // CloseAfter: flushing the queue, then lingering for the peer's FIN
	stateClosing        // Close or a write error: the loop will close it
	stateClosed         // descriptor closed, OnClose called or about to be
)

// appendSkip appends b and then bufs to dst, leaving out their first skip
// bytes.
func appendSkip(dst []byte, skip int, b []byte, bufs [][]byte) []byte {
	for i := -1; i < len(bufs); i++ {
		x := b
		if i >= 0 {
			x = bufs[i]
		}
		if skip >= len(x) {
			skip -= len(x)
			continue
		}
		dst = append(dst, x[skip:]...)
		skip = 0
	}
	return dst
}
