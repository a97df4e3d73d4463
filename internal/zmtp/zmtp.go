// Package zmtp implements the ZeroMQ Message Transport Protocol, version 3.1
// (rfc.zeromq.org/spec/37), with the NULL security mechanism, over any
// net.Conn. It accepts ZMTP 3.0 peers (which lack PING/PONG) and rejects
// older ones.
//
// The package provides the handshake ([Handshake]), a message reader
// ([Conn.ReadMessage]) that enforces a maximum message size, and append-style
// encoders for frames and commands ([AppendMessage], [AppendCommand]). It
// knows nothing about sockets' routing: the rpc package builds ROUTER and
// DEALER behaviour on top of it and owns all writes after the handshake.
package zmtp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// Socket types this package's users speak.
const (
	Router = "ROUTER"
	Dealer = "DEALER"
)

// Frame flag bits.
const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
)

const (
	greetingLen = 64
	// MaxMessageSizeDefault bounds one message's total size when
	// Config.MaxMessageSize is zero.
	MaxMessageSizeDefault = 16 << 20
	minReadBuf            = 64 << 10
)

var (
	// ErrMessageTooLarge is returned by ReadMessage when a message exceeds
	// the configured maximum; the connection cannot be used afterwards.
	ErrMessageTooLarge = errors.New("zmtp: message too large")
	// ErrProtocol wraps every violation of the framing rules.
	ErrProtocol = errors.New("zmtp: protocol error")
)

// peerTypes lists, for each local socket type, the peer types ZMTP allows.
var peerTypes = map[string][]string{
	Router: {"DEALER", "REQ", "ROUTER"},
	Dealer: {"ROUTER", "REP", "DEALER"},
}

// Config describes the local end of a connection.
type Config struct {
	// SocketType is sent in READY and checked against the peer's. Required.
	SocketType string
	// Identity is the routing ID sent in READY. Defaults to none.
	Identity []byte
	// MaxMessageSize bounds a message's total body size. Defaults to
	// MaxMessageSizeDefault when zero or negative.
	MaxMessageSize int64
	// OnPing, if set, is called with the context of each PING command the
	// peer sends; the caller should answer with AppendPong. ReadMessage calls
	// it on its own goroutine.
	OnPing func(context []byte)
}

// Conn is a ZMTP connection after a successful handshake. ReadMessage may be
// called from one goroutine at a time; writes go straight to NetConn.
type Conn struct {
	NetConn net.Conn

	peerType     string
	peerIdentity []byte
	minor        byte
	maxSize      int64
	onPing       func([]byte)

	buf  []byte // unread input is buf[r:w]
	r, w int
	off  []int // scratch: part boundaries of the message being read
}

// PeerSocketType is the socket type the peer announced.
func (c *Conn) PeerSocketType() string { return c.peerType }

// PeerIdentity is the routing ID the peer announced, or nil.
func (c *Conn) PeerIdentity() []byte { return c.peerIdentity }

// PeerMinor is the peer's ZMTP minor version: 0 for 3.0, 1 for 3.1.
func (c *Conn) PeerMinor() byte { return c.minor }

// Greeting returns the 64-byte ZMTP 3.1 greeting for the NULL mechanism.
func Greeting(asServer bool) []byte {
	g := make([]byte, greetingLen)
	g[0] = 0xff
	g[8] = 0x01 // libzmq's padding: identity length+1 for ZMTP 1.0 peers
	g[9] = 0x7f
	g[10], g[11] = 3, 1
	copy(g[12:32], "NULL")
	if asServer {
		g[32] = 1
	}
	return g
}

// Handshake exchanges greetings and READY commands on nc. The caller bounds
// it with a deadline on nc. On error the caller closes nc.
func Handshake(nc net.Conn, cfg Config) (*Conn, error) {
	if _, ok := peerTypes[cfg.SocketType]; !ok {
		return nil, fmt.Errorf("zmtp: unsupported socket type %q", cfg.SocketType)
	}
	c := &Conn{NetConn: nc, maxSize: cfg.MaxMessageSize, onPing: cfg.OnPing}
	if c.maxSize <= 0 {
		c.maxSize = MaxMessageSizeDefault
	}
	out := Greeting(cfg.SocketType == Router)
	out = AppendCommand(out, "READY", AppendProperty(AppendProperty(nil, "Socket-Type", []byte(cfg.SocketType)), "Identity", cfg.Identity))
	if _, err := nc.Write(out); err != nil {
		return nil, fmt.Errorf("zmtp: send greeting: %w", err)
	}
	if err := c.readGreeting(); err != nil {
		return nil, err
	}
	if err := c.readReady(cfg.SocketType); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) readGreeting() error {
	// Read the signature first: a non-ZMTP peer may send fewer bytes and wait.
	if err := c.fill(11); err != nil {
		return fmt.Errorf("zmtp: read greeting: %w", err)
	}
	g := c.buf[c.r:]
	if g[0] != 0xff || g[9]&1 != 1 {
		return fmt.Errorf("%w: not a ZMTP peer", ErrProtocol)
	}
	if g[10] < 3 {
		return fmt.Errorf("%w: peer speaks ZMTP %d.x, need 3.x", ErrProtocol, g[10])
	}
	if err := c.fill(greetingLen); err != nil {
		return fmt.Errorf("zmtp: read greeting: %w", err)
	}
	g = c.buf[c.r : c.r+greetingLen]
	c.minor = g[11]
	if g[10] > 3 {
		c.minor = 1 // a newer major: speak 3.1, as the spec asks
	}
	mech := string(bytes.TrimRight(g[12:32], "\x00"))
	if mech != "NULL" {
		return fmt.Errorf("%w: peer wants mechanism %q, only NULL is supported", ErrProtocol, mech)
	}
	c.r += greetingLen
	return nil
}

func (c *Conn) readReady(local string) error {
	name, data, err := c.readCommand()
	if err != nil {
		return fmt.Errorf("zmtp: read READY: %w", err)
	}
	switch name {
	case "READY":
	case "ERROR":
		return fmt.Errorf("zmtp: peer refused handshake: %s", errorReason(data))
	default:
		return fmt.Errorf("%w: expected READY, got %q", ErrProtocol, name)
	}
	props, err := ParseProperties(data)
	if err != nil {
		return err
	}
	c.peerType = string(props["socket-type"])
	if id := props["identity"]; len(id) > 0 {
		c.peerIdentity = bytes.Clone(id)
	}
	for _, t := range peerTypes[local] {
		if c.peerType == t {
			return nil
		}
	}
	return fmt.Errorf("%w: %s cannot talk to peer socket type %q", ErrProtocol, local, c.peerType)
}

// readCommand reads one frame, which must be a command.
func (c *Conn) readCommand() (name string, data []byte, err error) {
	flags, body, err := c.readFrame()
	if err != nil {
		return "", nil, err
	}
	if flags&flagCommand == 0 {
		return "", nil, fmt.Errorf("%w: expected a command frame", ErrProtocol)
	}
	return parseCommand(body)
}

func parseCommand(body []byte) (name string, data []byte, err error) {
	if len(body) < 1 || int(body[0]) > len(body)-1 {
		return "", nil, fmt.Errorf("%w: malformed command", ErrProtocol)
	}
	n := int(body[0])
	return string(body[1 : 1+n]), body[1+n:], nil
}

func errorReason(data []byte) string {
	if len(data) < 1 || int(data[0]) > len(data)-1 {
		return "(no reason)"
	}
	return string(data[1 : 1+int(data[0])])
}

// ParseProperties decodes the metadata of a READY command. Names are
// case-insensitive and returned in lower case; values alias data.
func ParseProperties(data []byte) (map[string][]byte, error) {
	props := make(map[string][]byte)
	for len(data) > 0 {
		n := int(data[0])
		if len(data) < 1+n+4 {
			return nil, fmt.Errorf("%w: malformed property", ErrProtocol)
		}
		name := strings.ToLower(string(data[1 : 1+n]))
		data = data[1+n:]
		vlen := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(vlen) > uint64(len(data)) {
			return nil, fmt.Errorf("%w: malformed property value", ErrProtocol)
		}
		props[name] = data[:vlen]
		data = data[vlen:]
	}
	return props, nil
}

// ReadMessage reads the next message and returns its parts. The parts alias
// an internal buffer and are valid until the next call. PING commands are
// passed to Config.OnPing; other commands between messages are ignored; an
// ERROR command ends the connection.
func (c *Conn) ReadMessage(parts [][]byte) ([][]byte, error) {
	c.compact()
	start := c.r
	c.off = c.off[:0]
	var total int64
	for {
		flags, body, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		if flags&flagCommand != 0 {
			if len(c.off) > 0 {
				return nil, fmt.Errorf("%w: command inside a multipart message", ErrProtocol)
			}
			if err := c.handleCommand(body); err != nil {
				return nil, err
			}
			continue
		}
		total += int64(len(body))
		if total > c.maxSize {
			return nil, ErrMessageTooLarge
		}
		bodyEnd := c.r - start
		c.off = append(c.off, bodyEnd-len(body), bodyEnd)
		if flags&flagMore == 0 {
			break
		}
	}
	// Frames may have moved during reads (fill compacts from start), so
	// resolve offsets only now.
	base := c.buf[start:c.r]
	parts = parts[:0]
	for i := 0; i < len(c.off); i += 2 {
		parts = append(parts, base[c.off[i]:c.off[i+1]:c.off[i+1]])
	}
	return parts, nil
}

func (c *Conn) handleCommand(body []byte) error {
	name, data, err := parseCommand(body)
	if err != nil {
		return err
	}
	switch name {
	case "PING":
		if len(data) < 2 || len(data) > 18 {
			return fmt.Errorf("%w: malformed PING", ErrProtocol)
		}
		if c.onPing != nil {
			c.onPing(data[2:])
		}
	case "ERROR":
		return fmt.Errorf("zmtp: peer sent ERROR: %s", errorReason(data))
	}
	return nil
}

// readFrame reads one frame at c.r and advances past it. body aliases buf
// and stays valid until the next fill that compacts below the frame.
func (c *Conn) readFrame() (flags byte, body []byte, err error) {
	if err := c.fill(2); err != nil {
		return 0, nil, err
	}
	flags = c.buf[c.r]
	if flags&^(flagMore|flagLong|flagCommand) != 0 {
		return 0, nil, fmt.Errorf("%w: reserved frame flags %#x", ErrProtocol, flags)
	}
	if flags&flagCommand != 0 && flags&flagMore != 0 {
		return 0, nil, fmt.Errorf("%w: command frame with MORE", ErrProtocol)
	}
	hdr := 2
	size := uint64(c.buf[c.r+1])
	if flags&flagLong != 0 {
		hdr = 9
		if err := c.fill(hdr); err != nil {
			return 0, nil, err
		}
		size = binary.BigEndian.Uint64(c.buf[c.r+1:])
	}
	if limit := c.frameLimit(); size > limit {
		return 0, nil, ErrMessageTooLarge
	}
	n := hdr + int(size)
	if err := c.fill(n); err != nil {
		return 0, nil, err
	}
	body = c.buf[c.r+hdr : c.r+n]
	c.r += n
	return flags, body, nil
}

// frameLimit bounds one frame: the message limit, but at least 64 KiB so
// that commands (READY metadata) fit whatever the message limit.
func (c *Conn) frameLimit() uint64 {
	return uint64(max(c.maxSize, 64<<10))
}

// compact moves unread bytes to the start of buf, between messages.
func (c *Conn) compact() {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if cap(c.buf) > 4*minReadBuf {
			c.buf = nil // release a buffer grown for one large message
		}
		return
	}
	if c.r > len(c.buf)/2 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
}

// fill ensures at least n unread bytes, reading from the network.
func (c *Conn) fill(n int) error {
	for c.w-c.r < n {
		if c.r+n > len(c.buf) {
			c.grow(n)
		}
		m, err := c.NetConn.Read(c.buf[c.w:])
		c.w += m
		if err != nil {
			if c.w-c.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && c.w-c.r > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// grow makes room for n bytes from c.r, keeping the message being read
// (which starts at or before c.r) in place relative to c.r.
func (c *Conn) grow(n int) {
	size := max(len(c.buf), minReadBuf)
	for size < c.r+n {
		size *= 2
	}
	if size == len(c.buf) {
		return
	}
	nb := make([]byte, size)
	copy(nb, c.buf[:c.w])
	c.buf = nb
}

// AppendFrame appends one data frame carrying body.
func AppendFrame(b, body []byte, more bool) []byte {
	var flags byte
	if more {
		flags |= flagMore
	}
	return appendFrameHeader(b, flags, len(body), body)
}

func appendFrameHeader(b []byte, flags byte, n int, body []byte) []byte {
	if n > 255 {
		b = append(b, flags|flagLong)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	} else {
		b = append(b, flags, byte(n))
	}
	return append(b, body...)
}

// AppendMessage appends a message of one or more parts.
func AppendMessage(b []byte, parts ...[]byte) []byte {
	for i, p := range parts {
		b = AppendFrame(b, p, i < len(parts)-1)
	}
	return b
}

// AppendCommand appends a command frame.
func AppendCommand(b []byte, name string, data []byte) []byte {
	n := 1 + len(name) + len(data)
	if n > 255 {
		b = append(b, flagCommand|flagLong)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	} else {
		b = append(b, flagCommand, byte(n))
	}
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, data...)
}

// AppendProperty appends one READY metadata property. An empty value is
// still sent, as libzmq does for Identity.
func AppendProperty(b []byte, name string, value []byte) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(value)))
	return append(b, value...)
}

// AppendPong appends the PONG answering a PING with the given context.
func AppendPong(b, context []byte) []byte {
	return AppendCommand(b, "PONG", context)
}

// AppendPing appends a PING with a TTL in deciseconds and a context of at
// most 16 bytes.
func AppendPing(b []byte, ttl uint16, context []byte) []byte {
	data := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(context)), ttl)
	return AppendCommand(b, "PING", append(data, context...))
}

// BeginFrame reserves room for a data frame's header at the end of b, so
// that the body can be appended in place. Pass the returned mark to EndFrame.
func BeginFrame(b []byte) (_ []byte, mark int) {
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, 0), len(b)
}

// EndFrame writes the header of the frame begun at mark, whose body is
// everything appended after it, moving a short body down into place.
func EndFrame(b []byte, mark int, more bool) []byte {
	var flags byte
	if more {
		flags = flagMore
	}
	body := b[mark+9:]
	n := len(body)
	if n > 255 {
		b[mark] = flags | flagLong
		binary.BigEndian.PutUint64(b[mark+1:], uint64(n))
		return b
	}
	b[mark], b[mark+1] = flags, byte(n)
	copy(b[mark+2:], body)
	return b[:mark+2+n]
}

// SetPingHandler replaces Config.OnPing. Call it before ReadMessage.
func (c *Conn) SetPingHandler(f func(context []byte)) { c.onPing = f }

// Buffered reports whether input is already buffered past the last
// message read, so that the next ReadMessage may not need the network.
func (c *Conn) Buffered() bool { return c.w > c.r }
