//go:build linux && !netpoll_portable

package netpoll

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Locking and ownership on Linux.
//
// Lock order: Conn.mu, then loop.mu. Neither is held while calling the
// Handler.
//
// Each Conn belongs to one loop. Only that loop's goroutine registers the
// descriptor with epoll, reads from it, and closes it, always through
// closeConn, which marks the Conn closed under Conn.mu and removes it from
// epoll and the loop's table before close(2). Other goroutines use the
// descriptor (write, writev, shutdown, epoll_ctl MOD) only while holding
// Conn.mu and seeing a state other than stateClosed, so no system call can
// reach a descriptor number after it has been closed and possibly reused.
// Requests from other goroutines (add, close, drain) reach the loop as tasks
// queued under loop.mu, with an eventfd write to wake epoll_wait.

const (
	// iovMax is the most buffers one writev(2) accepts (UIO_MAXIOV).
	iovMax = 1024
	// maxEvents is how many events one epoll_wait returns at most.
	maxEvents = 256

	readEvents = unix.EPOLLIN | unix.EPOLLRDHUP
)

type pollerSys struct {
	loops []*loop
	next  atomic.Uint32 // round-robin loop choice

	mu  sync.Mutex
	ran bool // Run has been called
}

// connSys is the Linux part of a Conn: about 48 bytes, no buffers while idle.
type connSys struct {
	mu         sync.Mutex
	state      uint8
	registered bool   // in the loop's epoll set and table
	out        bool   // EPOLLOUT is armed
	fd         int32  // immutable after Add
	pending    []byte // unwritten output; nil when empty
	l          *loop  // immutable after Add
}

type taskKind uint8

const (
	taskAdd   taskKind = iota // register the Conn, then deliver buf
	taskClose                 // close the Conn with err
	taskDrain                 // CloseAfter: start the linger deadline
)

type task struct {
	c    *Conn
	kind taskKind
	err  error
	buf  []byte
}

type lingerer struct {
	c        *Conn
	deadline time.Time
}

// loop is one epoll instance and the goroutine that waits on it.
type loop struct {
	p    *Poller
	epfd int // set by open before the loop starts; closed by shutdown

	// Owned by the loop goroutine.
	buf       []byte
	events    []unix.EpollEvent
	conns     map[int32]*Conn // registered Conns by descriptor
	lingering []lingerer      // draining Conns, in deadline order
	spare     []task

	mu       sync.Mutex
	tasks    []task
	evfd     int  // eventfd that wakes epoll_wait; -1 before open and after shutdown
	woken    bool // evfd has been written since the loop last took tasks
	stopping bool // Run is ending
	closed   bool // shut down; tasks are no longer accepted
}

func (p *Poller) init() {
	p.loops = make([]*loop, p.cfg.Loops)
	for i := range p.loops {
		p.loops[i] = &loop{p: p, epfd: -1, evfd: -1}
	}
}

func (p *Poller) add(c *Conn, nc net.Conn, buffered []byte) error {
	fd, err := takeFD(nc)
	if err != nil {
		return err
	}
	c.fd = int32(fd)
	c.l = p.loops[p.next.Add(1)%uint32(len(p.loops))]
	t := task{c: c, kind: taskAdd}
	if len(buffered) > 0 {
		t.buf = bytes.Clone(buffered)
	}
	p.n.Add(1)
	if !c.l.enqueue(t) {
		p.n.Add(-1)
		unix.Close(fd)
		return ErrClosed
	}
	return nil
}

// takeFD returns a non-blocking duplicate of nc's socket and closes nc, so
// that the Go runtime's poller forgets the socket while the duplicate keeps
// it open.
func takeFD(nc net.Conn) (int, error) {
	defer nc.Close()
	rc, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("netpoll: add: %w", err)
	}
	fd, typ := -1, 0
	var derr error
	err = rc.Control(func(s uintptr) {
		if typ, derr = unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_TYPE); derr != nil {
			return
		}
		if typ == unix.SOCK_STREAM {
			fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
		}
	})
	if err = cmp.Or(err, derr); err != nil {
		return -1, fmt.Errorf("netpoll: add: %w", err)
	}
	if typ != unix.SOCK_STREAM {
		return -1, errors.New("netpoll: add: not a stream socket")
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("netpoll: add: %w", err)
	}
	return fd, nil
}

func (p *Poller) run(ctx context.Context) error {
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return errors.New("netpoll: Run called more than once")
	}
	p.ran = true
	p.mu.Unlock()

	for _, l := range p.loops {
		if err := l.open(); err != nil {
			for _, l := range p.loops {
				l.shutdown()
			}
			return err
		}
	}
	p.log.Debug("netpoll running", "loops", len(p.loops))
	errc := make(chan error, len(p.loops))
	var wg sync.WaitGroup
	for _, l := range p.loops {
		wg.Go(func() {
			err := l.run()
			l.shutdown()
			if err != nil {
				errc <- err
			}
		})
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, l := range p.loops {
		l.stop()
	}
	wg.Wait()
	return err
}

// open creates the loop's epoll instance and eventfd.
func (l *loop) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return fmt.Errorf("netpoll: epoll_ctl: %w", err)
	}
	l.epfd = epfd
	l.buf = make([]byte, l.p.cfg.ReadBuffer)
	l.events = make([]unix.EpollEvent, maxEvents)
	l.conns = make(map[int32]*Conn)
	l.mu.Lock()
	l.evfd = evfd
	l.mu.Unlock()
	return nil
}

// run serves events until the loop is stopped or epoll_wait fails.
func (l *loop) run() error {
	for {
		if l.runTasks() {
			return nil
		}
		l.expire(time.Now())
		n, err := unix.EpollWait(l.epfd, l.events, l.timeout())
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("netpoll: epoll_wait: %w", err)
		}
		for _, ev := range l.events[:n] {
			if int(ev.Fd) == l.evfd {
				var b [8]byte
				unix.Read(l.evfd, b[:]) // reset the counter; EAGAIN is fine
				continue
			}
			if c := l.conns[ev.Fd]; c != nil {
				l.handle(c, ev.Events)
			}
		}
	}
}

// enqueue hands t to the loop and reports whether the loop accepted it.
func (l *loop) enqueue(t task) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.tasks = append(l.tasks, t)
	l.wakeLocked()
	return true
}

// stop makes the loop return from run.
func (l *loop) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopping = true
	l.wakeLocked()
}

// wakeLocked interrupts epoll_wait once per batch of tasks. Writing under
// l.mu keeps the write from racing with shutdown closing evfd. l.mu must be
// held.
func (l *loop) wakeLocked() {
	if l.woken || l.evfd < 0 {
		return // already woken, or not running: run takes tasks when it starts
	}
	l.woken = true
	one := [8]byte{1} // any non-zero count, whatever the byte order
	for {
		_, err := unix.Write(l.evfd, one[:])
		if err != unix.EINTR {
			if err != nil {
				l.p.log.Warn("netpoll wake failed", "err", err)
			}
			return
		}
	}
}

// runTasks performs queued requests and reports whether the loop must stop.
func (l *loop) runTasks() (stop bool) {
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		return true // shutdown takes the remaining tasks
	}
	tasks := l.tasks
	l.tasks = l.spare
	l.woken = false
	l.mu.Unlock()

	for i := range tasks {
		switch t := &tasks[i]; t.kind {
		case taskAdd:
			l.register(t.c, t.buf)
		case taskClose:
			l.closeConn(t.c, t.err)
		case taskDrain:
			l.linger(t.c)
		}
	}
	clear(tasks)
	if cap(tasks) > 4096 {
		tasks = nil // do not keep the array of a burst of adds
	}
	l.spare = tasks[:0]
	return false
}

// register adds c to the epoll set and the table, then delivers the bytes
// buffered before Add.
func (l *loop) register(c *Conn, buffered []byte) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	ev := unix.EpollEvent{Events: readEvents, Fd: c.fd}
	if len(c.pending) > 0 {
		ev.Events |= unix.EPOLLOUT // written to before registration
	}
	err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev)
	if err == nil {
		c.registered = true
		c.out = ev.Events&unix.EPOLLOUT != 0
	}
	st := c.state
	c.mu.Unlock()
	if err != nil {
		l.closeConn(c, fmt.Errorf("netpoll: epoll_ctl: %w", err))
		return
	}
	l.conns[c.fd] = c
	if len(buffered) > 0 && st == stateOpen {
		l.p.h.OnData(c, buffered)
	}
}

// handle processes one epoll event for c.
func (l *loop) handle(c *Conn, events uint32) {
	if events&unix.EPOLLOUT != 0 {
		l.flush(c)
	}
	if events&(readEvents|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.read(c, events)
	}
}

// read performs one read from c and delivers it. Level triggering brings
// the loop back for the rest, which keeps one busy Conn from starving the
// others.
func (l *loop) read(c *Conn, events uint32) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st >= stateClosing {
		return // a close task is queued or done
	}
	n, err := ignoringEINTR(func() (int, error) { return unix.Read(int(c.fd), l.buf) })
	switch {
	case err == nil && n > 0:
		if st == stateOpen { // a draining Conn's input is discarded
			l.p.h.OnData(c, l.buf[:n])
		}
	case err == nil:
		l.closeConn(c, io.EOF)
	case err == unix.EAGAIN:
		if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.closeConn(c, socketError(int(c.fd)))
		}
	default:
		l.closeConn(c, fmt.Errorf("netpoll: read: %w", err))
	}
}

// socketError returns the pending error of a socket that reported
// EPOLLERR or EPOLLHUP but had nothing to read.
func socketError(fd int) error {
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && v != 0 {
		return fmt.Errorf("netpoll: read: %w", syscall.Errno(v))
	}
	return errors.New("netpoll: read: connection hung up")
}

// flush writes queued output after EPOLLOUT.
func (l *loop) flush(c *Conn) {
	c.mu.Lock()
	if c.state >= stateClosing {
		c.mu.Unlock()
		return
	}
	if len(c.pending) > 0 {
		n, err := ignoringEINTR(func() (int, error) { return unix.Write(int(c.fd), c.pending) })
		if err != nil && err != unix.EAGAIN {
			c.mu.Unlock()
			l.closeConn(c, fmt.Errorf("netpoll: write: %w", err))
			return
		}
		c.pending = c.pending[n:]
	}
	if len(c.pending) == 0 {
		c.drainedLocked()
	}
	c.mu.Unlock()
}

// linger starts the CloseTimeout deadline of a draining Conn.
func (l *loop) linger(c *Conn) {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	if st == stateDraining {
		l.lingering = append(l.lingering, lingerer{c, time.Now().Add(l.p.cfg.CloseTimeout)})
	}
}

// expire closes draining Conns whose deadline has passed. Conns that closed
// earlier stay queued until their deadline, when closeConn ignores them.
func (l *loop) expire(now time.Time) {
	i := 0
	for ; i < len(l.lingering) && !now.Before(l.lingering[i].deadline); i++ {
		l.closeConn(l.lingering[i].c, nil)
	}
	clear(l.lingering[:i])
	if l.lingering = l.lingering[i:]; len(l.lingering) == 0 {
		l.lingering = nil
	}
}

// timeout returns the epoll_wait timeout in milliseconds: until the first
// linger deadline, or -1 for none.
func (l *loop) timeout() int {
	if len(l.lingering) == 0 {
		return -1
	}
	d := time.Until(l.lingering[0].deadline)
	return int(max(d+time.Millisecond-1, 0) / time.Millisecond)
}

// closeConn closes c once: it marks c closed, removes it from epoll and the
// table, closes the descriptor, and calls OnClose. Only the loop calls it.
func (l *loop) closeConn(c *Conn, err error) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if c.state == stateDraining {
		err = nil // CloseAfter asked for this close
	}
	c.state = stateClosed
	c.pending = nil
	registered := c.registered
	c.registered = false
	c.mu.Unlock()

	if registered {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil); err != nil {
			l.p.log.Warn("netpoll epoll_ctl del failed", "fd", c.fd, "err", err)
		}
		delete(l.conns, c.fd)
	}
	unix.Close(int(c.fd)) // never retried: Linux closes the descriptor even on EINTR
	l.p.n.Add(-1)
	l.p.h.OnClose(c, err)
}

// shutdown closes every Conn of the loop, then the loop's descriptors. It
// runs on the loop goroutine after run returns, or on Run's goroutine if
// the loops never started.
func (l *loop) shutdown() {
	l.mu.Lock()
	l.closed = true
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()

	for _, t := range tasks { // requested closes first, with their reasons
		if t.kind == taskClose {
			l.closeConn(t.c, t.err)
		}
	}
	for _, t := range tasks {
		l.closeConn(t.c, ErrClosed) // not yet registered, or draining
	}
	for _, c := range l.conns {
		l.closeConn(c, ErrClosed)
	}
	l.lingering = nil

	l.mu.Lock()
	evfd := l.evfd
	l.evfd = -1
	l.mu.Unlock()
	if evfd >= 0 {
		unix.Close(evfd)
	}
	if l.epfd >= 0 {
		unix.Close(l.epfd)
	}
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
	if len(c.pending)+total > c.l.p.cfg.MaxPending {
		return ErrSlow
	}
	return c.writeLocked(b, bufs, total)
}

// writeLocked writes b, or else bufs, directly if nothing is queued and
// queues whatever the socket does not take. c.mu must be held.
func (c *Conn) writeLocked(b []byte, bufs [][]byte, total int) error {
	if len(c.pending) > 0 {
		c.pending = appendSkip(c.pending, 0, b, bufs)
		return nil
	}
	n, err := ignoringEINTR(func() (int, error) {
		if bufs == nil {
			return unix.Write(int(c.fd), b)
		}
		return unix.Writev(int(c.fd), bufs[:min(len(bufs), iovMax)])
	})
	if err != nil && err != unix.EAGAIN {
		err = fmt.Errorf("netpoll: write: %w", err)
		c.failLocked(err)
		return err
	}
	if n < total {
		c.pending = appendSkip(make([]byte, 0, total-n), n, b, bufs)
		c.watchOutLocked(true)
	}
	return nil
}

// drainedLocked runs when the queue has emptied. c.mu must be held.
func (c *Conn) drainedLocked() {
	c.pending = nil // release the buffer: idle Conns hold none
	c.watchOutLocked(false)
	if c.state == stateDraining {
		// Send FIN after the final bytes; the loop closes the Conn when the
		// peer's FIN arrives (read EOF) or at the deadline.
		unix.Shutdown(int(c.fd), unix.SHUT_WR)
	}
}

// watchOutLocked arms or disarms EPOLLOUT. Before registration it does
// nothing: register arms EPOLLOUT itself if output is queued. c.mu must be
// held.
func (c *Conn) watchOutLocked(on bool) {
	if c.out == on || !c.registered {
		return
	}
	ev := unix.EpollEvent{Events: readEvents, Fd: c.fd}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := unix.EpollCtl(c.l.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev); err != nil {
		c.failLocked(fmt.Errorf("netpoll: epoll_ctl: %w", err))
		return
	}
	c.out = on
}

// failLocked starts closing c because of err. c.mu must be held.
func (c *Conn) failLocked(err error) {
	if c.state >= stateClosing {
		return
	}
	if c.state == stateDraining {
		err = nil
	}
	c.state = stateClosing
	c.l.enqueue(task{c: c, kind: taskClose, err: err}) // refused only after shutdown closed c
}

func (c *Conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state >= stateClosing {
		return
	}
	c.state = stateClosing
	c.l.enqueue(task{c: c, kind: taskClose})
}

func (c *Conn) closeAfter(final []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return
	}
	c.state = stateDraining
	if len(final) > 0 && c.writeLocked(final, nil, len(final)) != nil {
		return // failLocked queued the close
	}
	if len(c.pending) == 0 {
		c.drainedLocked()
	}
	c.l.enqueue(task{c: c, kind: taskDrain})
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return max(n, 0), err
		}
	}
}
