package pushserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/netpoll"
	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/internal/timerwheel"
)

// transport is how a connection frames messages.
type transport uint8

const (
	transportWS transport = iota
	transportTCP
	transportSSE
	numTransports
)

func (t transport) String() string {
	return [...]string{"websocket", "tcp", "sse"}[t]
}

// conn is one client connection. It is kept small: tens of thousands of
// them sit idle on a node.
//
// Goroutines: the event loop runs OnData (the readers, the rate bucket,
// enc before connect); the wheel runs onTimer; NATS delivery and async
// commands write. Fields set before the connection enters the hub (at
// connect) are read-only afterwards; the hub's lock orders the hand-over.
// Lock order: hub.mu before conn.mu.
type conn struct {
	s      *Server
	nc     atomic.Pointer[netpoll.Conn]
	remote net.Addr
	serial uint64
	since  int64 // Unix nanoseconds at accept

	tr     transport
	enc    atomic.Uint32 // a pushwire.Encoding, 0 until the first message decides
	authed atomic.Bool
	closed atomic.Bool

	client, user string        // set at connect
	subject      *auth.Subject // what the connection may do; set at connect
	indexed      bool          // in the hub; guarded by hub.mu

	lastRead  atomic.Int64 // s.now stamps
	lastWrite atomic.Int64
	lastData  atomic.Int64 // data (not heartbeats) in either direction, for all-idle
	lastPing  atomic.Int64 // the last heartbeat the node sent

	timer timerwheel.Entry[*conn]

	// The event loop's reader state.
	ws     pushwire.WSReader
	frames pushwire.FrameReader
	tokens float64 // rate bucket
	tokAt  int64
	debt   int // messages refused since the bucket emptied

	mu         sync.Mutex          // guards the fields below
	subs       []string            // subscribed channels
	recovering map[string][]*frame // per channel being recovered: pushes held until the reply is out
}

func (s *Server) newConn(tr transport, enc pushwire.Encoding, remote net.Addr) *conn {
	now := s.now.Load()
	c := &conn{s: s, tr: tr, remote: remote, serial: s.serial.Add(1), since: time.Now().UnixNano()}
	c.setEncoding(enc)
	c.lastRead.Store(now)
	c.lastWrite.Store(now)
	c.lastData.Store(now)
	c.timer.Value = c
	c.ws.MaxMessage = s.cfg.MaxFrame
	c.frames.Max = s.cfg.MaxFrame
	c.tokens = float64(s.cfg.Burst)
	c.tokAt = now
	return c
}

// encoding is the connection's encoding, 0 until decided. The event loop
// sets it once; writers on other goroutines read it.
func (c *conn) encoding() pushwire.Encoding { return pushwire.Encoding(c.enc.Load()) }

func (c *conn) setEncoding(e pushwire.Encoding) { c.enc.Store(uint32(e)) }

// attach records the event loop's handle and arms the connect deadline.
func (c *conn) attach(pc *netpoll.Conn) {
	c.nc.Store(pc)
	if c.tr != transportSSE && !c.authed.Load() {
		c.s.wheel.Schedule(&c.timer, c.s.cfg.ConnectTimeout)
	}
}

// id is the connection's cluster-unique name.
func (c *conn) id() string {
	return c.s.cfg.NodeName + "-" + strconv.FormatUint(c.serial, 10)
}

// write queues b; a connection whose queue overflows is closed as slow.
func (c *conn) write(b []byte) {
	pc := c.nc.Load()
	if pc == nil || c.closed.Load() {
		return
	}
	err := pc.Write(b)
	if err == nil {
		c.lastWrite.Store(c.s.now.Load())
		return
	}
	if errors.Is(err, netpoll.ErrSlow) {
		c.s.metrics.slow.Inc()
		c.close(disconnectSlow)
	}
}

// send encodes m for this connection and writes it.
func (c *conn) send(m *pushwire.Message) {
	b, err := c.s.encode(c.tr, c.encoding(), m)
	if err != nil {
		c.s.log.Warn("push encode", "op", m.Op, "err", err)
		return
	}
	c.write(b)
}

// sendFrame writes a pre-encoded push, holding it back while its channel
// is being recovered so that recovered messages come first.
func (c *conn) sendFrame(f *frame) {
	if f.channel != "" {
		c.mu.Lock()
		if held, ok := c.recovering[f.channel]; ok {
			c.recovering[f.channel] = append(held, f)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	b, err := f.bytes(c.s, c.tr, c.encoding())
	if err != nil {
		c.s.log.Warn("push encode", "err", err)
		return
	}
	c.lastData.Store(c.s.now.Load())
	c.write(b)
}

// close tells the client why and closes the connection once that is
// written. Later calls do nothing.
func (c *conn) close(d disconnect) {
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	pc := c.nc.Load()
	if pc == nil {
		return
	}
	c.s.metrics.disconnects.WithLabelValues(d.label).Inc()
	if c.s.log.Enabled(context.Background(), slog.LevelDebug) {
		client := "" // written by connect until authed is set
		if c.authed.Load() {
			client = c.client
		}
		c.s.log.Debug("push disconnect", "conn", c.id(), "client", client, "code", d.Code, "reason", d.Reason)
	}
	var final []byte
	switch c.tr {
	case transportWS:
		final = pushwire.AppendClose(nil, d.Code, d.Reason, nil)
	default:
		m := &pushwire.Message{Op: pushwire.OpDisconnect, Code: int(d.Code), Reason: d.Reason, Reconnect: d.Reconnect}
		final, _ = c.s.encode(c.tr, c.encoding(), m)
	}
	pc.CloseAfter(final)
}

// cmpEnc is enc, or JSON before a connection picked one.
func cmpEnc(enc pushwire.Encoding) pushwire.Encoding {
	if enc == 0 {
		return pushwire.JSON
	}
	return enc
}

// disconnect is a reason to close a connection: a close code, the
// reason sent to the client, whether it should reconnect, and the
// metric label.
type disconnect struct {
	Code      uint16
	Reason    string
	Reconnect bool
	label     string
}

// The reasons, with the codes of docs/push.md.
var (
	disconnectShutdown  = disconnect{1001, "node shutting down", true, "shutdown"}
	disconnectTooBig    = disconnect{1009, "frame too large", false, "too_big"}
	disconnectBad       = disconnect{4000, "bad request", false, "bad_request"}
	disconnectAuth      = disconnect{4001, "unauthorized", false, "unauthorized"}
	disconnectNoConnect = disconnect{4002, "no connect in time", true, "connect_timeout"}
	disconnectReplaced  = disconnect{4003, "replaced", false, "replaced"}
	disconnectSlow      = disconnect{4004, "slow: send queue full", true, "slow"}
	disconnectFlood     = disconnect{4005, "flood: message rate exceeded", true, "flood"}
	disconnectIdle      = disconnect{4006, "idle", true, "idle"}
	disconnectKicked    = disconnect{4007, "disconnected by an operator", false, "kicked"}
)

// badRequest is disconnectBad with a specific reason.
func badRequest(reason string) disconnect {
	d := disconnectBad
	if len(reason) > 100 {
		reason = reason[:100]
	}
	d.Reason = "bad request: " + reason
	return d
}
