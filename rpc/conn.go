package rpc

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
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
// Senders append framed events to pending under mu and wake the writer
// goroutine, which yields once so that every sender already runnable can
// append too, then writes all of pending in one syscall. Concurrent calls
// thus share syscalls, and mu is never held across a network write. A
// sender blocks only while pending exceeds maxPending (backpressure from a
// peer that reads slowly), and a write that cannot finish within
// writeTimeout kills the connection.
type conn struct {
	nc           net.Conn
	zc           *zmtp.Conn
	writeTimeout time.Duration
	maxPending   int
	wake         chan struct{} // cap 1: pending has data for the writer

	idPrefix [8]byte
	idSeq    atomic.Uint64
	active   atomic.Int32 // calls open on the connection

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending drains or err is set
	pending []byte
	spare   []byte // the last written buffer, for reuse
	woken   bool   // the writer goroutine has been woken and not yet run
	busy    bool   // a write is in progress, by a sender or the writer
	err     error  // set once; every later send fails with it
}

func newConn(zc *zmtp.Conn, writeTimeout time.Duration, maxPending int) *conn {
	c := &conn{nc: zc.NetConn, zc: zc, writeTimeout: writeTimeout, maxPending: maxPending, wake: make(chan struct{}, 1)}
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
	c.wakeLocked()
	return nil
}

// sendRaw sends already framed bytes, such as a PONG command.
func (c *conn) sendRaw(frames []byte) error {
	c.mu.Lock()
	if err := c.waitRoomLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.pending = append(c.pending, frames...)
	c.wakeLocked()
	return nil
}

func (c *conn) waitRoomLocked() error {
	for c.err == nil && len(c.pending) >= c.maxPending {
		c.cond.Wait()
	}
	return c.err
}

// wakeLocked is called with mu held and releases it. When the connection
// carries a single call and no write is in progress or pending, the sender
// writes pending itself: a lone caller pays no goroutine hand-off. With
// concurrent calls it leaves pending to the writer goroutine, waking it,
// so that their events share writes.
func (c *conn) wakeLocked() {
	if !c.busy && !c.woken && c.active.Load() <= 1 {
		c.writePendingLocked()
		if len(c.pending) == 0 || c.woken || c.err != nil {
			c.mu.Unlock()
			return
		}
	}
	wake := !c.woken
	c.woken = true
	c.mu.Unlock()
	if wake {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// writePendingLocked writes pending, releasing mu during the write. The
// written buffer becomes the spare one, and a write error kills the
// connection.
func (c *conn) writePendingLocked() {
	buf := c.pending
	c.pending, c.spare, c.busy = c.spare[:0], nil, true
	c.mu.Unlock()
	err := c.write(buf)
	c.mu.Lock()
	c.busy = false
	if cap(buf) <= maxSpareBuf {
		c.spare = buf[:0]
	}
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("%w: write: %w", ErrConnLost, err)
		c.nc.Close() // wakes the reader, which fails the channels
	}
	c.cond.Broadcast()
}

// writeLoop writes what senders leave pending, until the connection fails
// or closes. Its owner runs it in a goroutine and waits for it.
func (c *conn) writeLoop() {
	for range c.wake {
		// Let senders that are already runnable append first: one
		// syscall then carries all their events.
		runtime.Gosched()
		c.mu.Lock()
		for c.busy && c.err == nil {
			c.cond.Wait() // a sender is writing directly
		}
		c.woken = false
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		if len(c.pending) == 0 {
			c.mu.Unlock()
			continue
		}
		c.writePendingLocked()
		c.mu.Unlock()
	}
}

func (c *conn) write(buf []byte) error {
	if c.writeTimeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	_, err := c.nc.Write(buf)
	return err
}

// flush waits until everything sent so far is written, or the connection
// fails, or ctx ends.
func (c *conn) flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && (c.busy || len(c.pending) > 0) && ctx.Err() == nil {
		c.cond.Wait()
	}
	return cmp.Or(c.err, ctx.Err())
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
	select { // wake the writer so it sees err and exits
	case c.wake <- struct{}{}:
	default:
	}
}

// onPing answers a ZMTP 3.1 PING.
func (c *conn) onPing(context []byte) {
	c.sendRaw(zmtp.AppendPong(nil, context))
}

// errHandedOff ends a read loop whose handler gave reading to another
// goroutine.
var errHandedOff = errors.New("rpc: reading handed off")

// readMessages reads messages until the connection fails, passing each
// one's envelope and payload to handle. Both alias a buffer that is reused
// after handle returns. If handle returns true, another goroutine has
// taken over reading: readMessages returns errHandedOff at once.
func (c *conn) readMessages(handle func(envelope [][]byte, payload []byte) (handedOff bool)) error {
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
		if handle(parts[:len(parts)-1], parts[len(parts)-1]) {
			return errHandedOff
		}
		if !c.zc.Buffered() {
			// Let the goroutine handle woke (a caller, a worker) run now,
			// ahead of this reader's next read, which would only find the
			// socket empty and park.
			runtime.Gosched()
		}
	}
}

// isClosedErr reports whether err only says that the connection ended.
func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF)
}
