package rpc

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mortarhq/mortar/internal/msgpack"
	"github.com/mortarhq/mortar/internal/zmtp"
	"github.com/mortarhq/mortar/registry"
)

// StreamWindowDefault is how many stream items a client lets a server send
// ahead of the consumer, as zerorpc-python's default.
const StreamWindowDefault = 100

// ClientConfig configures a Client. The zero value works.
type ClientConfig struct {
	// HeartbeatInterval is how often a call's channel sends _zpc_hb once
	// the call has lasted that long; a server silent for two intervals is
	// lost and the call fails with ErrLostRemote. Must match the server's
	// interval, as in zerorpc. Defaults to HeartbeatIntervalDefault;
	// negative disables heartbeats.
	HeartbeatInterval time.Duration
	// MaxMessageSize bounds one incoming message. Defaults to
	// MaxMessageSizeDefault.
	MaxMessageSize int64
	// HandshakeTimeout bounds connecting: TCP, TLS and ZMTP handshakes.
	// Defaults to HandshakeTimeoutDefault.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write to the server. Defaults to
	// WriteTimeoutDefault.
	WriteTimeout time.Duration
	// MaxPending bounds the bytes queued for the server before callers
	// wait. Defaults to MaxPendingDefault.
	MaxPending int
	// StreamWindow is how many stream items the server may send ahead of
	// the consumer. Defaults to StreamWindowDefault.
	StreamWindow int
	// TLSConfig, if set, makes the client speak TLS.
	TLSConfig *tls.Config
	// Interceptors run around every call, the first outermost.
	Interceptors []Interceptor
	// Logger receives the client's logs. Defaults to slog.Default().
	Logger *slog.Logger

	// Registry resolves "mortar://NAME" endpoints through the service
	// registry. Required for them; unused otherwise.
	Registry *registry.Client
	// Balancer picks an instance per call on a mortar:// client.
	// Defaults to registry.P2C().
	Balancer registry.Balancer
	// RetryLostCalls lets a mortar:// client retry on another instance a
	// call whose connection broke or whose server stopped heartbeating
	// after the request was sent. The call may then run twice: set it
	// only when the methods are idempotent. Calls that never reached an
	// instance are always retried elsewhere.
	RetryLostCalls bool
}

func (c *ClientConfig) withDefaults() ClientConfig {
	var cfg ClientConfig
	if c != nil {
		cfg = *c
	}
	cfg.HeartbeatInterval = cmp.Or(cfg.HeartbeatInterval, HeartbeatIntervalDefault)
	cfg.MaxMessageSize = cmp.Or(cfg.MaxMessageSize, MaxMessageSizeDefault)
	cfg.HandshakeTimeout = cmp.Or(cfg.HandshakeTimeout, HandshakeTimeoutDefault)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, WriteTimeoutDefault)
	cfg.MaxPending = cmp.Or(cfg.MaxPending, MaxPendingDefault)
	cfg.StreamWindow = max(cmp.Or(cfg.StreamWindow, StreamWindowDefault), 2)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "rpc")
	return cfg
}

// Client calls one zerorpc server over one connection: a ZeroMQ DEALER.
// Any number of goroutines may call at once; their calls are multiplexed
// as channels. A broken connection fails the calls in flight with
// ErrConnLost and is redialled by the next call.
type Client struct {
	cfg      ClientConfig
	endpoint string
	network  string
	address  string
	dialSem  chan struct{} // one dial at a time
	wg       sync.WaitGroup

	pool *pool // mortar:// endpoints: calls go to discovered instances

	mu     sync.Mutex
	cc     *clientConn
	closed bool
}

// Dial connects to a zerorpc server at endpoint ("tcp://host:port",
// "host:port" or "ipc:///path"), or resolves a service through the
// registry ("mortar://NAME", with cfg.Registry set): then each call goes
// to one of the service's instances, picked by cfg.Balancer, and the
// client follows the service's instances as they come and go. cfg may
// be nil.
func Dial(ctx context.Context, endpoint string, cfg *ClientConfig) (*Client, error) {
	if name, ok := strings.CutPrefix(endpoint, "mortar://"); ok {
		return dialService(ctx, name, cfg.withDefaults())
	}
	network, address, err := splitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg.withDefaults(), endpoint: endpoint, network: network, address: address, dialSem: make(chan struct{}, 1)}
	if _, err := c.conn(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the connection (every connection, for a mortar://
// endpoint); calls in flight fail with ErrClosed.
func (c *Client) Close() error {
	if c.pool != nil {
		c.pool.close()
	}
	c.mu.Lock()
	c.closed = true
	cc := c.cc
	c.mu.Unlock()
	if cc != nil {
		cc.close(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

// conn returns the live connection, dialling if there is none.
func (c *Client) conn(ctx context.Context) (*clientConn, error) {
	if cc, err := c.current(); cc != nil || err != nil {
		return cc, err
	}
	select {
	case c.dialSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.dialSem }()
	if cc, err := c.current(); cc != nil || err != nil {
		return cc, err
	}
	cc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cc.close(ErrClosed)
		return nil, ErrClosed
	}
	c.cc = cc
	c.wg.Go(cc.writeLoop)
	c.wg.Go(cc.run)
	return cc, nil
}

func (c *Client) current() (*clientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	return c.cc, nil
}

func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", c.endpoint, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		nc.SetDeadline(deadline)
	}
	if c.cfg.TLSConfig != nil {
		tc := tls.Client(nc, c.cfg.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("rpc: dial %s: tls: %w", c.endpoint, err)
		}
		nc = tc
	}
	zc, err := zmtp.Handshake(nc, zmtp.Config{SocketType: zmtp.Dealer, MaxMessageSize: c.cfg.MaxMessageSize})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("rpc: dial %s: %w", c.endpoint, err)
	}
	nc.SetDeadline(time.Time{})
	cc := &clientConn{client: c, peer: nc.RemoteAddr().String(), calls: make(map[callID]*clientCall), done: make(chan struct{})}
	cc.conn = newConn(zc, c.cfg.WriteTimeout, c.cfg.MaxPending)
	zc.SetPingHandler(cc.onPing)
	return cc, nil
}

// clientConn is one connection to the server and its open calls.
type clientConn struct {
	*conn
	client *Client
	peer   string
	done   chan struct{} // closed when the reader exits

	mu    sync.Mutex
	calls map[callID]*clientCall
	err   error // why the connection ended
}

// callID is the message_id a client gives a call's first event; replies
// carry its encoding (bin 16) as response_to.
type callID [16]byte

// replyID extracts the callID from a reply's response_to.
func replyID(respTo []byte) (id callID, ok bool) {
	if len(respTo) != 18 || respTo[0] != 0xc4 || respTo[1] != 16 {
		return id, false
	}
	return callID(respTo[2:]), true
}

func (cc *clientConn) run() {
	c := cc.client
	if hb := c.cfg.HeartbeatInterval; hb > 0 {
		c.wg.Go(func() { heartbeats(cc.conn, hb, cc.done, cc.snapshot) })
	}
	err := cc.readMessages(cc.handle)
	cc.close(fmt.Errorf("%w: %w", ErrConnLost, err))
	c.mu.Lock()
	if c.cc == cc {
		c.cc = nil
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		err = ErrClosed
	} else {
		err = fmt.Errorf("%w: %w", ErrConnLost, err)
		c.cfg.Logger.Warn("connection lost", "endpoint", c.endpoint, "err", err)
	}
	cc.mu.Lock()
	cc.err = err
	calls := cc.calls
	cc.calls = nil
	cc.mu.Unlock()
	for _, call := range calls {
		call.fail(err)
	}
	close(cc.done)
}

func (cc *clientConn) snapshot(buf []heartbeated) []heartbeated {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, c := range cc.calls {
		buf = append(buf, c)
	}
	return buf
}

// handle routes one reply event to its call.
func (cc *clientConn) handle(_ [][]byte, payload []byte) bool {
	cc.route(payload)
	return false
}

func (cc *clientConn) route(payload []byte) {
	var ev event
	if err := decodeEvent(payload, &ev); err != nil {
		cc.client.cfg.Logger.Warn("dropped malformed event", "endpoint", cc.client.endpoint, "err", err)
		return
	}
	if ev.respTo == nil {
		return // not a reply: a DEALER has nothing to serve
	}
	id, ok := replyID(ev.respTo)
	if !ok {
		return // not one of our IDs
	}
	cc.mu.Lock()
	call := cc.calls[id]
	cc.mu.Unlock()
	if call == nil {
		return // a late event for a call that ended
	}
	call.lastSeen.Store(mono())
	switch string(ev.name) {
	case evHeartbeat, evMore:
		return
	}
	call.deliver(reply{name: internName(ev.name), args: append([]byte(nil), ev.args...)})
}

func internName(b []byte) string {
	switch string(b) {
	case evOK:
		return evOK
	case evErr:
		return evErr
	case evStream:
		return evStream
	case evStreamDone:
		return evStreamDone
	}
	return string(b)
}

func (cc *clientConn) register(call *clientCall) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.calls == nil {
		return cc.err
	}
	cc.calls[call.cid] = call
	cc.active.Add(1)
	return nil
}

func (cc *clientConn) unregister(call *clientCall) {
	cc.mu.Lock()
	if _, ok := cc.calls[call.cid]; ok {
		delete(cc.calls, call.cid)
		cc.active.Add(-1)
	}
	cc.mu.Unlock()
}

// reply is one event received on a call's channel.
type reply struct {
	name string
	args []byte
}

// clientCall is one call in flight.
type clientCall struct {
	channel
	cid    callID
	idBuf  [18]byte // cid's encoding: the channel ID
	cc     *clientConn
	window int

	mu       sync.Mutex
	qbuf     [1]reply // the queue's first backing array: a unary reply
	queue    []reply
	err      error // set when the call can receive nothing more
	notify   chan struct{}
	reserved int  // items the server may send before it needs _zpc_more
	started  bool // the first event was consumed
	ended    bool // a terminal event was consumed
}

func (c *clientCall) state() *channel { return &c.channel }

func (c *clientCall) lost() { c.fail(ErrLostRemote) }

func (c *clientCall) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.wake()
}

func (c *clientCall) wake() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *clientCall) deliver(r reply) {
	c.mu.Lock()
	if len(c.queue) > 2*c.window+2 {
		c.err = fmt.Errorf("%w: server sent more stream items than granted", ErrProtocol)
	} else {
		c.queue = append(c.queue, r)
	}
	c.mu.Unlock()
	c.wake()
}

// start opens a channel and sends the request.
func (c *Client) start(ctx context.Context, req *Request, args []any) (*clientCall, error) {
	var buf [256]byte
	body := msgpack.AppendArrayHeader(buf[:0], len(args))
	for i, a := range args {
		var err error
		if body, err = msgpack.Append(body, a); err != nil {
			return nil, fmt.Errorf("rpc: call %s: argument %d: %w", req.Method, i, err)
		}
	}
	if deadline, ok := ctx.Deadline(); ok {
		// Round up, so the server's deadline never precedes ours.
		ms := max((time.Until(deadline)+time.Millisecond-1)/time.Millisecond, 1)
		req.header.setRaw(HeaderTimeout, msgpack.AppendInt(nil, int64(ms)))
	}
	cc, err := c.conn(ctx)
	if err != nil {
		return nil, &notSentError{err}
	}
	req.Peer = cc.peer
	call := &clientCall{cc: cc, window: c.cfg.StreamWindow, notify: make(chan struct{}, 1), reserved: 1}
	call.queue = call.qbuf[:0]
	cc.newID((*[16]byte)(&call.cid))
	key := msgpack.AppendBytes(call.idBuf[:0], call.cid[:])
	call.init(key, delimiter)
	if err := cc.register(call); err != nil {
		return nil, &notSentError{err}
	}
	if err := cc.sendEventID(delimiter, call.cid[:], nil, &req.header, req.Method, body); err != nil {
		cc.unregister(call)
		return nil, &notSentError{err}
	}
	return call, nil
}

// next waits for the call's next event, granting stream credit the way
// zerorpc-python does: once the first event is consumed, whenever fewer
// than half a window of items are outstanding.
func (c *clientCall) next(ctx context.Context) (reply, error) {
	c.mu.Lock()
	if c.started && c.reserved < c.window/2 && c.err == nil {
		n := c.window - c.reserved
		c.reserved += n
		c.mu.Unlock()
		c.cc.sendEvent(delimiter, c.id, nil, evMore, msgpack.AppendInt([]byte{0x91}, int64(n)))
		c.mu.Lock()
	}
	for {
		if len(c.queue) > 0 {
			r := c.queue[0]
			c.queue[0] = reply{}
			c.queue = c.queue[1:]
			c.reserved--
			c.started = true
			c.ended = r.name != evStream
			c.mu.Unlock()
			return r, nil
		}
		if c.err != nil {
			err := c.err
			c.mu.Unlock()
			return reply{}, err
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-ctx.Done():
			return reply{}, ctx.Err()
		}
		c.mu.Lock()
	}
}

// finish closes the call's channel, telling the server to stop if the call
// ended before its reply did.
func (c *clientCall) finish() {
	c.cc.unregister(c)
	c.mu.Lock()
	abandoned := !c.ended && c.err == nil
	c.mu.Unlock()
	if abandoned {
		c.cc.sendEvent(delimiter, c.id, nil, evCancel, nilArgs)
	}
}

// Call calls method with args and decodes its result into result, which
// must be a pointer (or nil to discard the result). A remote error is
// returned as a *RemoteError. If the method streams, result receives the
// items as a list.
func (c *Client) Call(ctx context.Context, method string, result any, args ...any) error {
	req := &Request{Method: method}
	return chain(c.cfg.Interceptors, ctx, req, func(ctx context.Context) error {
		if c.pool != nil {
			return c.pool.call(ctx, req, result, args)
		}
		return c.callOnce(ctx, req, result, args)
	})
}

// callOnce makes one call on this client's connection.
func (c *Client) callOnce(ctx context.Context, req *Request, result any, args []any) error {
	call, err := c.start(ctx, req, args)
	if err != nil {
		return err
	}
	defer call.finish()
	var items [][]byte
	for {
		r, err := call.next(ctx)
		if err != nil {
			return err
		}
		switch r.name {
		case evOK:
			return decodeResult(r.args, result)
		case evStream:
			items = append(items, r.args)
		case evStreamDone:
			return decodeItems(items, result)
		case evErr:
			return remoteOrDeadline(ctx, r.args)
		default:
			return fmt.Errorf("%w: unexpected %q reply to %s", ErrProtocol, r.name, req.Method)
		}
	}
}

// remoteOrDeadline returns the ERR's remote error, unless the caller's own
// context has ended: the server's deadline, derived from the caller's, may
// expire a moment before it, and the caller should see its own error.
func remoteOrDeadline(ctx context.Context, args []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The timer that ends ctx may not have run yet.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return decodeRemoteError(args)
}

// Stream calls method and yields the items it streams. If the method
// replies with a single result instead, Stream yields that result. A
// remote error ends the sequence as a *RemoteError. Breaking out of the
// loop tells the server to stop.
func (c *Client) Stream(ctx context.Context, method string, args ...any) iter.Seq2[Raw, error] {
	return func(yield func(Raw, error) bool) {
		req := &Request{Method: method}
		stopped := false
		err := chain(c.cfg.Interceptors, ctx, req, func(ctx context.Context) error {
			var err error
			if c.pool != nil {
				stopped, err = c.pool.stream(ctx, req, args, yield)
			} else {
				stopped, _, err = c.streamOnce(ctx, req, args, yield)
			}
			return err
		})
		if err != nil && !stopped {
			yield(nil, err)
		}
	}
}

// streamOnce makes one streaming call on this client's connection. It
// reports whether the consumer stopped the loop and whether any item
// reached it.
func (c *Client) streamOnce(ctx context.Context, req *Request, args []any, yield func(Raw, error) bool) (stopped, yielded bool, err error) {
	call, err := c.start(ctx, req, args)
	if err != nil {
		return false, false, err
	}
	defer call.finish()
	for {
		r, err := call.next(ctx)
		if err != nil {
			return false, yielded, err
		}
		var item Raw
		switch r.name {
		case evStream:
			item = r.args
		case evOK:
			if item, err = firstArg(r.args); err != nil {
				return false, yielded, err
			}
		case evStreamDone:
			return false, yielded, nil
		case evErr:
			return false, yielded, remoteOrDeadline(ctx, r.args)
		default:
			return false, yielded, fmt.Errorf("%w: unexpected %q reply to %s", ErrProtocol, r.name, req.Method)
		}
		yielded = true
		if !yield(item, nil) {
			return true, true, nil
		}
		if r.name == evOK {
			return false, true, nil
		}
	}
}

// Raw is one msgpack-encoded value received from a peer.
type Raw []byte

// Decode decodes the value into v, a pointer.
func (r Raw) Decode(v any) error {
	_, err := msgpack.Unmarshal(r, v)
	return err
}

// Value decodes the value into Go's basic types, preserving its msgpack
// type: str is string, bin is []byte, int is int64 (uint64 above
// MaxInt64), float is float32 or float64, array is []any, map is
// map[string]any (map[any]any if a key is not a str).
func (r Raw) Value() (any, error) {
	v, _, err := msgpack.ReadAny(r)
	return v, err
}

func firstArg(args []byte) (Raw, error) {
	n, rest, err := msgpack.ReadArrayHeader(args)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("%w: OK reply without a result", ErrProtocol)
	}
	end, err := msgpack.Skip(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: OK reply: %w", ErrProtocol, err)
	}
	return Raw(rest[:len(rest)-len(end)]), nil
}

func decodeResult(args []byte, result any) error {
	item, err := firstArg(args)
	if err != nil || result == nil {
		return err
	}
	if err := item.Decode(result); err != nil {
		return fmt.Errorf("rpc: decode result: %w", err)
	}
	return nil
}

func decodeItems(items [][]byte, result any) error {
	if result == nil {
		return nil
	}
	b := msgpack.AppendArrayHeader(nil, len(items))
	for _, it := range items {
		b = append(b, it...)
	}
	if _, err := msgpack.Unmarshal(b, result); err != nil {
		return fmt.Errorf("rpc: decode stream: %w", err)
	}
	return nil
}

// decodeRemoteError reads ERR's args: [name, message, traceback] from
// protocol v2+ peers, [message] from v1 peers.
func decodeRemoteError(args []byte) error {
	var parts []any
	if _, err := msgpack.Unmarshal(args, &parts); err != nil || len(parts) == 0 || len(parts) > 3 {
		return &RemoteError{Name: "RemoteError", Message: fmt.Sprintf("malformed ERR: %x", args)}
	}
	str := func(i int) string {
		if i >= len(parts) {
			return ""
		}
		switch v := parts[i].(type) {
		case string:
			return v
		case []byte:
			return string(v)
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	}
	if len(parts) == 1 {
		return &RemoteError{Name: "RemoteError", Message: str(0)}
	}
	return &RemoteError{Name: str(0), Message: str(1), Traceback: str(2)}
}
