package push

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/pushwire"
)

// session is one connection of a Device: a reader goroutine, writes
// under a mutex, and a heartbeat goroutine.
type session struct {
	d   *Device
	nc  net.Conn
	ws  bool
	enc pushwire.Encoding

	wmu       sync.Mutex // guards writes and lastWrite
	lastWrite time.Time

	mu      sync.Mutex // guards the fields below
	nextID  uint64
	pending map[uint64]chan *pushwire.Message
	subIDs  map[uint64]subCmd // subscribe commands in flight, by ID
	closed  bool
	disc    Disconnect

	ping        time.Duration // set at connect, before the heartbeat starts
	readTimeout atomic.Int64  // the node's ping + 2 pongs: silence this long means it is gone
}

// subCmd is a subscribe in flight: its channel, and whether it recovers
// (a resubscribe after a reconnect, which nobody waits for).
type subCmd struct {
	channel string
	recover bool
}

// session dials, connects, resubscribes and serves one connection. It
// reports whether the connect succeeded and why the connection ended.
func (d *Device) session(ctx context.Context) (connected bool, disc Disconnect) {
	s, err := d.dial(ctx)
	if err != nil {
		return false, Disconnect{Err: err}
	}
	stop := context.AfterFunc(ctx, func() { s.nc.Close() })
	defer stop()

	msgs := make(chan *pushwire.Message)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { readErr <- s.read(msgs, done) })
	defer func() {
		close(done)
		s.nc.Close()
		wg.Wait()
	}()

	info, err := s.connect(ctx, msgs, readErr)
	if err != nil {
		return false, s.ended(err)
	}
	s.ping = time.Duration(info.Ping) * time.Second
	s.readTimeout.Store(int64(s.ping + 2*time.Duration(info.Pong)*time.Second))
	d.mu.Lock()
	d.sess = s
	chans := make(map[string]channelPos, len(d.channels))
	for ch, p := range d.channels {
		chans[ch] = *p
	}
	close(d.ready)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.sess = nil
		d.ready = make(chan struct{})
		d.mu.Unlock()
		s.failPending()
	}()
	for _, sub := range info.Subs {
		d.track(sub.Channel, sub.Offset, sub.Epoch, joinToken)
	}
	if d.cfg.OnConnect != nil {
		d.cfg.OnConnect(info)
	}
	for ch, p := range chans {
		if p.server {
			continue // the node rejoins these itself (at the current position)
		}
		sc := subCmd{channel: ch, recover: p.epoch != ""}
		s.send(&pushwire.Message{Op: pushwire.OpSubscribe, ID: s.register(sc), Channel: ch, Recover: sc.recover, Offset: p.offset, Epoch: p.epoch})
	}
	wg.Go(func() { s.heartbeat(done) })
	for {
		select {
		case m := <-msgs:
			s.dispatch(m)
		case err := <-readErr:
			return true, s.ended(err)
		}
	}
}

// dial opens the transport and, for WebSocket, does the handshake.
func (d *Device) dial(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	defer cancel()
	host := d.u.Host
	if d.u.Port() == "" {
		host = net.JoinHostPort(d.u.Hostname(), map[string]string{"ws": "80", "wss": "443"}[d.u.Scheme])
	}
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if d.u.Scheme == "wss" {
		cfg := d.cfg.TLS.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = d.u.Hostname()
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	s := &session{d: d, nc: nc, ws: d.u.Scheme != "tcp", enc: pushwire.JSON, pending: map[uint64]chan *pushwire.Message{}, subIDs: map[uint64]subCmd{}}
	if d.cfg.Msgpack {
		s.enc = pushwire.Msgpack
	}
	if s.ws {
		proto := "mortar.json"
		if d.cfg.Msgpack {
			proto = "mortar.msgpack"
		}
		_, leftover, err := pushwire.ClientHandshake(ctx, nc, d.u, []string{proto}, nil)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if len(leftover) > 0 {
			s.nc = &prefixConn{Conn: nc, prefix: leftover}
		}
	}
	return s, nil
}

// connect sends connect and waits for its reply.
func (s *session) connect(ctx context.Context, msgs <-chan *pushwire.Message, readErr <-chan error) (pushwire.ConnectResult, error) {
	var info pushwire.ConnectResult
	tok := s.d.cfg.Token
	if f := s.d.cfg.TokenFunc; f != nil {
		var err error
		if tok, err = f(ctx); err != nil {
			return info, fmt.Errorf("push: token: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.d.cfg.DialTimeout)
	defer cancel()
	s.send(&pushwire.Message{Op: pushwire.OpConnect, ID: 1, Token: tok, Client: s.d.cfg.Client})
	for {
		select {
		case m := <-msgs:
			if m.Op != pushwire.OpReply || m.ID != 1 {
				s.dispatch(m)
				continue
			}
			if m.Error != nil {
				return info, mortar.Errorf(mortar.Code(m.Error.Code), "%s", m.Error.Message)
			}
			err := json.Unmarshal(m.Result, &info)
			return info, err
		case err := <-readErr:
			return info, err
		case <-ctx.Done():
			return info, fmt.Errorf("push: connect: %w", ctx.Err())
		}
	}
}

// register allocates a command ID and, for subscribes, records the
// command so that the reply's recovered messages are delivered.
func (s *session) register(sc subCmd) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := s.nextID + 1 // 1 is connect's
	if sc.channel != "" {
		s.subIDs[id] = sc
	}
	return id
}

// call sends a command and waits for its reply.
func (s *session) call(ctx context.Context, m *pushwire.Message) (*pushwire.Message, error) {
	var sc subCmd
	if m.Op == pushwire.OpSubscribe {
		sc.channel = m.Channel
	}
	m.ID = s.register(sc)
	done := make(chan *pushwire.Message, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, mortar.Errorf(mortar.CodeUnavailable, "connection closed")
	}
	s.pending[m.ID] = done
	s.mu.Unlock()
	if err := s.send(m); err != nil {
		s.forget(m.ID)
		return nil, mortar.Errorf(mortar.CodeUnavailable, "%v", err)
	}
	select {
	case rep := <-done:
		if rep == nil {
			return nil, mortar.Errorf(mortar.CodeUnavailable, "connection closed")
		}
		if rep.Error != nil {
			return nil, mortar.Errorf(mortar.Code(rep.Error.Code), "%s", rep.Error.Message)
		}
		return rep, nil
	case <-ctx.Done():
		s.forget(m.ID)
		return nil, ctx.Err()
	}
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

// failPending wakes every caller still waiting for a reply.
func (s *session) failPending() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for id, ch := range s.pending {
		close(ch)
		delete(s.pending, id)
	}
}

// send frames and writes one message.
func (s *session) send(m *pushwire.Message) error {
	body, err := pushwire.Append(nil, s.enc, m)
	if err != nil {
		return err
	}
	var frame []byte
	if s.ws {
		op := pushwire.OpcodeText
		if s.enc == pushwire.Msgpack {
			op = pushwire.OpcodeBinary
		}
		frame = pushwire.AppendFrame(nil, op, body, true, newMask())
	} else {
		frame = pushwire.AppendLenFrame(nil, body)
	}
	return s.write(frame)
}

func (s *session) write(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.nc.SetWriteDeadline(time.Now().Add(s.d.cfg.DialTimeout))
	_, err := s.nc.Write(frame)
	s.lastWrite = time.Now()
	return err
}

// read decodes frames into msgs until the connection fails. WebSocket
// pings are answered here; close frames end the read with their code.
func (s *session) read(msgs chan<- *pushwire.Message, done <-chan struct{}) error {
	var wr pushwire.WSReader
	wr.FromServer = true
	wr.MaxMessage = 16 << 20
	var fr pushwire.FrameReader
	fr.Max = 16 << 20
	buf := make([]byte, 32<<10)
	deliver := func(payload []byte) error {
		m, err := pushwire.Decode(s.enc, payload)
		if err != nil {
			return err
		}
		select {
		case msgs <- m:
			return nil
		case <-done:
			return net.ErrClosed
		}
	}
	for {
		if d := time.Duration(s.readTimeout.Load()); d > 0 {
			s.nc.SetReadDeadline(time.Now().Add(d))
		}
		n, err := s.nc.Read(buf)
		if n > 0 {
			var ferr error
			if s.ws {
				ferr = wr.Feed(buf[:n], func(op pushwire.Opcode, p []byte) error {
					switch op {
					case pushwire.OpcodeText, pushwire.OpcodeBinary:
						return deliver(p)
					case pushwire.OpcodePing:
						return s.write(pushwire.AppendFrame(nil, pushwire.OpcodePong, p, true, newMask()))
					case pushwire.OpcodeClose:
						code, reason, _ := pushwire.ParseClose(p)
						s.write(pushwire.AppendClose(nil, code, "", newMask()))
						return &closeError{code: int(code), reason: reason}
					}
					return nil
				})
			} else {
				ferr = fr.Feed(buf[:n], deliver)
			}
			if ferr != nil {
				return ferr
			}
		}
		if err != nil {
			return err
		}
	}
}

// closeError is a WebSocket close frame from the node.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string { return fmt.Sprintf("closed %d %s", e.code, e.reason) }

// dispatch handles one message from the node.
func (s *session) dispatch(m *pushwire.Message) {
	switch m.Op {
	case pushwire.OpReply:
		s.onReply(m)
	case pushwire.OpPush:
		s.onPush(Push{Channel: m.Channel, Offset: m.Offset, Data: m.Data})
		if m.Ack != "" {
			s.send(&pushwire.Message{Op: pushwire.OpAck, Ack: m.Ack})
		}
	case pushwire.OpPing:
		s.send(&pushwire.Message{Op: pushwire.OpPong})
	case pushwire.OpSub:
		s.d.track(m.Channel, m.Offset, m.Epoch, joinClient) // push.subscribe lasts one connection: rejoin it
	case pushwire.OpUnsub:
		s.d.mu.Lock()
		delete(s.d.channels, m.Channel)
		s.d.mu.Unlock()
	case pushwire.OpDisconnect:
		s.mu.Lock()
		s.disc = Disconnect{Code: m.Code, Reason: m.Reason, Reconnect: m.Reconnect}
		s.mu.Unlock()
	}
}

// onReply delivers a subscribe's recovered messages first, then wakes
// the caller.
func (s *session) onReply(m *pushwire.Message) {
	s.mu.Lock()
	sc, isSub := s.subIDs[m.ID]
	delete(s.subIDs, m.ID)
	done := s.pending[m.ID]
	delete(s.pending, m.ID)
	s.mu.Unlock()
	if isSub && m.Error == nil {
		var r SubResult
		if json.Unmarshal(m.Result, &r) == nil {
			for _, p := range r.Pubs {
				s.onPush(Push{Channel: sc.channel, Offset: p.Offset, Data: p.Data})
			}
			s.d.track(sc.channel, r.Last(), r.Epoch, joinClient)
			if sc.recover && s.d.cfg.OnRecovery != nil {
				s.d.cfg.OnRecovery(sc.channel, r.Recovered)
			}
		}
	}
	if done != nil {
		done <- m
	}
}

// onPush records the channel position and hands p to OnPush.
func (s *session) onPush(p Push) {
	if p.Channel != "" && p.Offset != 0 {
		s.d.track(p.Channel, p.Offset, "", joinNone)
	}
	if f := s.d.cfg.OnPush; f != nil {
		f(p)
	}
}

// How a position update came: with a push (the channel must already be
// remembered: a late push after Unsubscribe must not bring it back); with
// a subscription the device rejoins after a reconnect (its own, and the
// node's push.subscribe, which lasts one connection); or with one the node
// rejoins at every connect (the token's channels).
const (
	joinNone = iota
	joinClient
	joinToken
)

// track remembers the newest position seen on a subscribed channel.
func (d *Device) track(ch string, offset uint64, epoch string, join int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.channels[ch]
	if p == nil {
		if join == joinNone {
			return
		}
		p = &channelPos{}
		d.channels[ch] = p
	}
	if join != joinNone {
		p.server = join == joinToken
	}
	if epoch != "" && epoch != p.epoch {
		p.epoch, p.offset = epoch, offset
	}
	p.offset = max(p.offset, offset)
}

// heartbeat pings the node after ping of write silence. The read
// deadline catches a node that stopped answering.
func (s *session) heartbeat(done <-chan struct{}) {
	if s.ping <= 0 {
		return
	}
	t := time.NewTicker(s.ping / 4)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			s.wmu.Lock()
			quiet := time.Since(s.lastWrite)
			s.wmu.Unlock()
			if quiet >= s.ping {
				if err := s.send(&pushwire.Message{Op: pushwire.OpPing}); err != nil {
					return
				}
			}
		}
	}
}

// ended turns the read error into a Disconnect, preferring what the node
// said.
func (s *session) ended(err error) Disconnect {
	s.mu.Lock()
	disc := s.disc
	s.mu.Unlock()
	var ce *closeError
	if errors.As(err, &ce) && disc.Code == 0 {
		disc = Disconnect{Code: ce.code, Reason: ce.reason, Reconnect: reconnects(ce.code)}
	}
	if mortar.ErrorCode(err) == mortar.CodeUnauthenticated {
		disc = Disconnect{Code: 4001, Reason: err.Error()}
	}
	disc.Err = err
	return disc
}

// reconnects reports whether a close code invites a reconnect (the
// table in docs/push.md).
func reconnects(code int) bool {
	switch code {
	case 1000, 1002, 1003, 1007, 1009, 4000, 4001, 4003, 4007:
		return false
	}
	return true
}

// prefixConn reads prefix before the connection: bytes the handshake
// read past the response.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
