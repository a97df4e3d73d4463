package rpc

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar/internal/zmtp"
)

// maxSpareBuf is the largest write buffer kept for reuse.
const maxSpareBuf = 1 << 20

// hbArgs is the encoding of a heartbeat's args, (0,), as zerorpc sends it
// for compatibility with protocol v2.
var hbArgs = []byte{0x91, 0x00}

// conn is one ZMTP connection shared by a client's or a server's channels.
//
// Writes use flat combining: a sender appends its framed event to pending
// and, if nobody is writing, becomes the writer and flushes everything
// queued meanwhile in one write. Concurrent calls thus share syscalls, no
// goroutine hand-off adds latency, and the lock is never held across a
// network write. A sender blocks only while pending exceeds maxPending
// (backpressure from a peer that reads slowly), and a write that cannot
// finish within writeTimeout kills the connection.
type conn struct {
	nc           net.Conn
	zc           *zmtp.Conn
	writeTimeout time.Duration
	maxPending   int

	idPrefix [8]byte
	idSeq    atomic.Uint64

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending drains or err is set
	pending []byte
	spare   []byte
	writing bool
	err     error // set once; every later send fails with it
}

func newConn(zc *zmtp.Conn, writeTimeout time.Duration, maxPending int) *conn {
	c := &conn{nc: zc.NetConn, zc: zc, writeTimeout: writeTimeout, maxPending: maxPending}
	c.cond.L = &c.mu
	rand.Read(c.idPrefix[:])
	return c
}

// newID returns a fresh message ID: a per-connection random prefix and a
// counter, 16 bytes, sent as bin like zerorpc-python's IDs.
func (c *conn) newID(id *[16]byte) {
	copy(id[:8], c.idPrefix[:])
	binary.BigEndian.PutUint64(id[8:], c.idSeq.Add(1))
}

// sendEvent frames one event behind envelope and sends it. respTo is the
// exact encoding of the channel ID (nil for a channel's first event).
func (c *conn) sendEvent(envelope [][]byte, respTo []byte, extra *Header, name string, args []byte) error {
	var id [16]byte
	c.newID(&id)
	return c.sendEventID(envelope, id[:], respTo, extra, name, args)
}

// sendEventID is sendEvent with the event's message_id given.
func (c *conn) sendEventID(envelope [][]byte, id, respTo []byte, extra *Header, name string, args []byte) error {
	c.mu.Lock()
	if err := c.waitRoomLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	b := c.pending
	for _, e := range envelope {
		b = zmtp.AppendFrame(b, e, true)
	}
	b, mark := zmtp.BeginFrame(b)
	b = appendEvent(b, id, respTo, extra, name, args)
	c.pending = zmtp.EndFrame(b, mark, false)
	return c.flushLocked()
}

// sendRaw sends already framed bytes, such as a PONG command.
func (c *conn) sendRaw(frames []byte) error {
	c.mu.Lock()
	if err := c.waitRoomLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.pending = append(c.pending, frames...)
	return c.flushLocked()
}

func (c *conn) waitRoomLocked() error {
	for c.err == nil && len(c.pending) >= c.maxPending {
		c.cond.Wait()
	}
	return c.err
}

// flushLocked is called with mu held and returns with it released. It
// writes pending unless another sender is already doing so.
func (c *conn) flushLocked() error {
	if c.writing {
		c.mu.Unlock()
		return nil
	}
	c.writing = true
	for len(c.pending) > 0 && c.err == nil {
		buf := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()
		err := c.write(buf)
		c.mu.Lock()
		if cap(buf) <= maxSpareBuf {
			c.spare = buf[:0]
		} else {
			c.spare = nil
		}
		if err != nil && c.err == nil {
			c.err = fmt.Errorf("%w: write: %w", ErrConnLost, err)
			c.nc.Close() // wakes the reader, which fails the channels
		}
		c.cond.Broadcast()
	}
	c.writing = false
	err := c.err
	c.mu.Unlock()
	return err
}

func (c *conn) write(buf []byte) error {
	if c.writeTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	_, err := c.nc.Write(buf)
	return err
}

// close fails every later send with err and closes the socket.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
}

// onPing answers a ZMTP 3.1 PING.
func (c *conn) onPing(context []byte) {
	c.sendRaw(zmtp.AppendPong(nil, context))
}

// readMessages reads messages until the connection fails, passing each
// one's envelope and payload to handle. Both alias a buffer that is reused
// after handle returns.
func (c *conn) readMessages(handle func(envelope [][]byte, payload []byte)) error {
	var parts [][]byte
	for {
		var err error
		parts, err = c.zc.ReadMessage(parts)
		if err != nil {
			return err
		}
		if len(parts) == 0 {
			continue
		}
		handle(parts[:len(parts)-1], parts[len(parts)-1])
	}
}

// isClosedErr reports whether err only says that the connection ended.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
