//go:build linux && !netpoll_portable

package netpoll

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pendingSettles reports whether pendingLen is exact once the peer has read
// everything, as it is when the loop writes.
const pendingSettles = true

// pendingLen returns the bytes queued for c.
func pendingLen(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

func TestConnSize(t *testing.T) {
	size := unsafe.Sizeof(Conn{})
	t.Logf("Conn is %d bytes", size)
	if size > 128 {
		t.Errorf("Conn is %d bytes, want at most 128", size)
	}
}

// TestPendingReleased checks that a drained queue gives its buffer back and
// stops watching for writability.
func TestPendingReleased(t *testing.T) {
	t.Parallel()
	b := setup(t, &Config{MaxPending: 4 << 20}, &handler{})
	client, server := b.dial(t)
	server.SetWriteBuffer(256 << 10)
	c, err := b.p.Add(server, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(make([]byte, 2<<20)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for read := 0; read < 2<<20; {
		n, err := client.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		read += n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != nil || c.out {
		t.Errorf("after draining: pending = %d bytes (cap %d), EPOLLOUT armed %v; want nil, false", len(c.pending), cap(c.pending), c.out)
	}
}

func TestAddRejectsDatagram(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, &handler{})
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.p.Add(uc, nil, nil); err == nil {
		t.Error("Add(UDP conn) succeeded, want an error")
	}
}

// TestMemoryPerConn measures the Go heap that idle Conns cost: the Conn and
// its entry in the loop's table. The clients are raw sockets so that they
// take no Go heap; kernel socket buffers are not counted.
func TestMemoryPerConn(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const n = 2000
	var seen atomic.Int64
	all := make(chan struct{})
	h := &handler{data: func(c *Conn, b []byte) {
		if seen.Add(1) == n+1 {
			close(all)
		}
	}}
	p, err := New(&Config{Loops: 2}, h)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := recv(t, done); err != nil {
			t.Error(err)
		}
	}()

	sa := &unix.SockaddrInet4{Port: ln.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
	fds := make([]int, 0, n+1)
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	connect := func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		server, err := ln.AcceptTCP()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Add(server, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// One warm-up connection makes sure the loops and their buffers exist.
	connect()
	before := heapInuse()
	for range n {
		connect()
	}
	// A byte from each client proves every Conn is registered.
	for _, fd := range fds {
		if _, err := unix.Write(fd, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	recv(t, all)
	after := heapInuse()
	perConn := float64(int64(after)-int64(before)) / n
	t.Logf("%d idle conns: heap in use grew %d bytes, %.0f bytes per conn (Conn struct %d bytes)", n, after-before, perConn, unsafe.Sizeof(Conn{}))
	if perConn > 512 {
		t.Errorf("%.0f bytes per idle conn, want at most 512", perConn)
	}
	if got := p.Len(); got != n+1 {
		t.Errorf("Len() = %d, want %d", got, n+1)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestWriteError writes to a connection the peer has reset, before Run so
// that the loop cannot notice the reset first: Write returns the socket's
// error and OnClose later receives the same one.
func TestWriteError(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil, &handler{})
	client, server := b.dial(t)
	c, err := b.p.Add(server, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	client.SetLinger(0)
	client.Close() // RST
	var werr error
	for range 3 { // the first write may still succeed and draw the RST
		if werr = c.Write([]byte("x")); werr != nil {
			break
		}
	}
	if !errors.Is(werr, unix.ECONNRESET) && !errors.Is(werr, unix.EPIPE) {
		t.Fatalf("Write to a reset connection = %v, want ECONNRESET or EPIPE", werr)
	}
	if err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after a failed write = %v, want ErrClosed", err)
	}
	b.run(t)
	if err := b.waitClose(t, c); err != werr {
		t.Errorf("OnClose error = %v, want the write error %v", err, werr)
	}
}

func TestWriteDoesNotAllocate(t *testing.T) {
	b := setup(t, nil, &handler{})
	_, c := b.pair(t)
	msg := []byte("0123456789")
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.Writev(msg, msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Write and Writev to an idle Conn allocate %v times, want 0", allocs)
	}
}
