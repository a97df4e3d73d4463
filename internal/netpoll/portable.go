//go:build !linux || netpoll_portable

package netpoll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The portable implementation gives each Conn a reader goroutine, which
// alone calls the Handler for it, and a writer goroutine while output is
// queued. All of them are started through pollerSys.wg, which Run waits for.
//
// Lock order: pollerSys.mu, then Conn.mu. Neither is held while calling the
// Handler or blocking on the network.
//
// A goroutine is added to wg only while the count is positive or before Run
// waits: readers start under pollerSys.mu while Run is running, and writers
// start under Conn.mu while the Conn's reader is alive (its state is not
// stateClosed).

// Poller states.
const (
	pollerIdle uint8 = iota
	pollerRunning
	pollerStopped
)

type pollerSys struct {
	wg sync.WaitGroup

	mu    sync.Mutex
	state uint8
	conns map[*Conn]struct{}
}

type connSys struct {
	p  *Poller
	nc net.Conn

	mu       sync.Mutex
	state    uint8
	started  bool   // the reader has been started
	writing  bool   // a writer goroutine is running
	pending  []byte // output not yet taken by the writer
	inflight int    // bytes the writer is writing
	err      error  // reason for OnClose, set when closing starts
	buffered []byte // bytes read before Add; the reader takes them
}

func (p *Poller) init() { p.conns = make(map[*Conn]struct{}) }

func (p *Poller) add(c *Conn, nc net.Conn, buffered []byte) error {
	c.p, c.nc = p, nc
	if len(buffered) > 0 {
		c.buffered = bytes.Clone(buffered)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == pollerStopped {
		nc.Close()
		return ErrClosed
	}
	p.conns[c] = struct{}{}
	p.n.Add(1)
	if p.state == pollerRunning {
		c.start()
	}
	return nil
}

func (p *Poller) run(ctx context.Context) error {
	p.mu.Lock()
	if p.state != pollerIdle {
		p.mu.Unlock()
		return errors.New("netpoll: Run called more than once")
	}
	p.state = pollerRunning
	for c := range p.conns {
		c.start()
	}
	p.mu.Unlock()
	p.log.Debug("netpoll running", "implementation", "portable")

	<-ctx.Done()

	p.mu.Lock()
	p.state = pollerStopped
	conns := make([]*Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.failLocked(ErrClosed)
		c.mu.Unlock()
	}
	p.wg.Wait()
	return nil
}

// start starts c's reader, and its writer if output is queued. p.mu must
// be held.
func (c *Conn) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = true
	c.p.wg.Go(c.readLoop)
	c.kickLocked()
}

func (c *Conn) readLoop() {
	h := c.p.h
	if b := c.buffered; b != nil {
		c.buffered = nil
		if c.isOpen() {
			h.OnData(c, b)
		}
	}
	buf := make([]byte, c.p.cfg.ReadBuffer)
	var rerr error
	for rerr == nil {
		var n int
		n, rerr = c.nc.Read(buf)
		if n > 0 && c.isOpen() {
			h.OnData(c, buf[:n])
		}
	}

	c.mu.Lock()
	err := c.err
	switch c.state {
	case stateOpen:
		err = rerr
		if rerr != io.EOF {
			err = fmt.Errorf("netpoll: read: %w", rerr)
		}
	case stateDraining:
		err = nil
	}
	c.state = stateClosed
	c.pending = nil
	c.mu.Unlock()
	c.nc.Close()

	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	c.p.n.Add(-1)
	h.OnClose(c, err)
}

func (c *Conn) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateOpen
}

// kickLocked starts a writer if output is queued and none runs, or
// half-closes a draining Conn whose output has all been written. c.mu must
// be held.
func (c *Conn) kickLocked() {
	if !c.started || c.writing || c.state >= stateClosing {
		return
	}
	if len(c.pending) > 0 {
		c.writing = true
		c.p.wg.Go(c.writeLoop)
		return
	}
	if c.state == stateDraining {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
}

func (c *Conn) writeLoop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) > 0 && c.state < stateClosing {
		b := c.pending
		c.pending, c.inflight = nil, len(b)
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		c.inflight = 0
		if err != nil {
			c.failLocked(fmt.Errorf("netpoll: write: %w", err))
		}
	}
	c.writing = false
	c.kickLocked() // half-close if draining
}

func (c *Conn) send(b []byte, bufs [][]byte) error {
	total := len(b)
	for _, x := range bufs {
		total += len(x)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return ErrClosed
	}
	if total == 0 {
		return nil
	}
	if len(c.pending)+c.inflight+total > c.p.cfg.MaxPending {
		return ErrSlow
	}
	c.pending = appendSkip(c.pending, 0, b, bufs)
	c.kickLocked()
	return nil
}

// failLocked starts closing c with err as OnClose's reason. Closing nc ends
// the reader and any writer. c.mu must be held.
func (c *Conn) failLocked(err error) {
	if c.state >= stateClosing {
		return
	}
	if c.state == stateDraining {
		err = nil
	}
	c.state, c.err = stateClosing, err
	c.nc.Close()
}

func (c *Conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(nil)
}

func (c *Conn) closeAfter(final []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return
	}
	c.state = stateDraining
	c.nc.SetDeadline(time.Now().Add(c.p.cfg.CloseTimeout))
	c.pending = append(c.pending, final...)
	c.kickLocked()
}
