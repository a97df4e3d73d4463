package netpoll

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// These tests run against the epoll implementation by default on Linux,
// and against the portable one with -tags netpoll_portable.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watchdog bounds every wait so a bug fails the test instead of hanging it.
const watchdog = 10 * time.Second

// handler adapts funcs to Handler.
type handler struct {
	data  func(c *Conn, b []byte)
	close func(c *Conn, err error)
}

func (h *handler) OnData(c *Conn, b []byte) {
	if h.data != nil {
		h.data(c, b)
	}
}

func (h *handler) OnClose(c *Conn, err error) {
	if h.close != nil {
		h.close(c, err)
	}
}

type closeEvent struct {
	c   *Conn
	err error
}

type bundle struct {
	p      *Poller
	ln     *net.TCPListener
	closed chan closeEvent // every OnClose

	dialMu sync.Mutex // pairs a Dial with its Accept

	mu     sync.Mutex
	inData map[*Conn]bool
	closes map[*Conn]int
}

// setup starts a Poller on h and a loopback listener, and checks the
// Handler contract throughout: OnData is never concurrent for a Conn and
// never follows OnClose, and when Run has returned every Conn has been
// closed exactly once.
func setup(t *testing.T, cfg *Config, h *handler) *bundle {
	t.Helper()
	b := newBundle(t, cfg, h)
	b.run(t)
	return b
}

// newBundle is setup without starting Run.
func newBundle(t *testing.T, cfg *Config, h *handler) *bundle {
	t.Helper()
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	b := &bundle{
		closed: make(chan closeEvent, 4096),
		inData: map[*Conn]bool{},
		closes: map[*Conn]int{},
	}
	wrapped := &handler{
		data: func(c *Conn, p []byte) {
			b.mu.Lock()
			if b.inData[c] {
				t.Errorf("concurrent OnData for %v", c.RemoteAddr())
			}
			if b.closes[c] > 0 {
				t.Errorf("OnData after OnClose for %v", c.RemoteAddr())
			}
			b.inData[c] = true
			b.mu.Unlock()
			if h.data != nil {
				h.data(c, p)
			}
			b.mu.Lock()
			b.inData[c] = false
			b.mu.Unlock()
		},
		close: func(c *Conn, err error) {
			b.mu.Lock()
			b.closes[c]++
			delete(b.inData, c)
			b.mu.Unlock()
			if h.close != nil {
				h.close(c, err)
			}
			select {
			case b.closed <- closeEvent{c, err}:
			default:
				t.Error("closed channel full")
			}
		},
	}
	p, err := New(&c, wrapped)
	if err != nil {
		t.Fatal(err)
	}
	b.p = p
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b.ln = ln
	return b
}

// run starts Run; cleanup stops it and checks the close accounting.
func (b *bundle) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := recv(t, done); err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
		if n := b.p.Len(); n != 0 {
			t.Errorf("Len() = %d after Run, want 0", n)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for c, n := range b.closes {
			if n != 1 {
				t.Errorf("OnClose called %d times for %v", n, c.RemoteAddr())
			}
		}
	})
}

// dial returns both ends of a new loopback connection; the client is
// closed at cleanup.
func (b *bundle) dial(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	b.dialMu.Lock()
	defer b.dialMu.Unlock()
	client, err := net.DialTCP("tcp", nil, b.ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	client.SetDeadline(time.Now().Add(watchdog))
	server, err = b.ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	return client, server
}

// pair returns a client and the server's Conn for it.
func (b *bundle) pair(t *testing.T) (*net.TCPConn, *Conn) {
	t.Helper()
	client, server := b.dial(t)
	c, err := b.p.Add(server, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return client, c
}

// waitClose waits for OnClose of c and returns its error.
func (b *bundle) waitClose(t *testing.T, c *Conn) error {
	t.Helper()
	for {
		ev := recv(t, b.closed)
		if ev.c == c {
			return ev.err
		}
	}
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(watchdog):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// pattern returns n bytes that differ by seed and position.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func echo(t *testing.T) *handler {
	return &handler{data: func(c *Conn, b []byte) {
		if err := c.Write(b); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("echo Write: %v", err)
		}
	}}
}

func TestNew(t *testing.T) {
	h := &handler{}
	tests := []struct {
		name    string
		cfg     *Config
		h       Handler
		wantErr bool
		want    Config // Logger is not compared
	}{
		{"nil config", nil, h, false, Config{Loops: -1, ReadBuffer: ReadBufferDefault, MaxPending: MaxPendingDefault, CloseTimeout: CloseTimeoutDefault}},
		{"custom", &Config{Loops: 3, ReadBuffer: 10, MaxPending: 20, CloseTimeout: time.Millisecond}, h, false, Config{Loops: 3, ReadBuffer: 10, MaxPending: 20, CloseTimeout: time.Millisecond}},
		{"nil handler", nil, nil, true, Config{}},
		{"negative loops", &Config{Loops: -1}, h, true, Config{}},
		{"negative read buffer", &Config{ReadBuffer: -1}, h, true, Config{}},
		{"negative max pending", &Config{MaxPending: -1}, h, true, Config{}},
		{"negative close timeout", &Config{CloseTimeout: -1}, h, true, Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.cfg, tt.h)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, want error %v", tt.cfg, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got := p.cfg
			got.Logger = nil
			if tt.want.Loops == -1 {
				tt.want.Loops = got.Loops // GOMAXPROCS
				if got.Loops < 1 {
					t.Errorf("default Loops = %d", got.Loops)
				}
			}
			if got != tt.want {
				t.Errorf("New(%+v) config = %+v, want %+v", tt.cfg, got, tt.want)
			}
			if p.log == nil {
				t.Error("no default logger")
			}
		})
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	b := setup(t, &Config{Loops: 2}, echo(t))
	const conns, msgs = 32, 100
	var wg sync.WaitGroup
	for i := range conns {
		client, _ := b.pair(t)
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			var sent bytes.Buffer
			for range msgs {
				sent.Write(pattern(r.Uint64(), 1+r.IntN(4096)))
			}
			want := sent.Bytes()
			var wwg sync.WaitGroup
			wwg.Go(func() {
				if _, err := client.Write(want); err != nil {
					t.Errorf("client write: %v", err)
				}
			})
			got := make([]byte, len(want))
			if _, err := io.ReadFull(client, got); err != nil {
				t.Errorf("client read: %v", err)
			}
			wwg.Wait()
			if !bytes.Equal(got, want) {
				t.Errorf("conn %d: echo differs", i)
			}
		})
	}
	wg.Wait()
	if n := b.p.Len(); n != conns {
		t.Errorf("Len() = %d, want %d", n, conns)
	}
}

// TestLargeWriteSlowReader queues far more than the socket buffers hold, so
// the output waits in the pending queue and drains as the client reads.
func TestLargeWriteSlowReader(t *testing.T) {
	t.Parallel()
	b := setup(t, &Config{MaxPending: 16 << 20}, &handler{})
	client, server := b.dial(t)
	server.SetWriteBuffer(256 << 10)
	c, err := b.p.Add(server, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := pattern(1, 8<<20)
	if err := c.Write(payload); err != nil {
		t.Fatalf("Write(8 MiB) = %v", err)
	}
	if n := pendingLen(c); n == 0 {
		t.Error("nothing pending after writing 8 MiB to a client that has not read")
	}
	if err := c.Write([]byte("tail")); err != nil {
		t.Fatalf("Write(tail) = %v", err)
	}
	got := make([]byte, 0, len(payload)+4)
	chunk := make([]byte, 4<<10)
	for len(got) < cap(got) {
		n, err := client.Read(chunk)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, chunk[:n]...)
	}
	if !bytes.Equal(got[:len(payload)], payload) || string(got[len(payload):]) != "tail" {
		t.Fatal("received data differs")
	}
	if n := pendingLen(c); n != 0 && pendingSettles {
		t.Errorf("%d bytes pending after the client read everything", n)
	}
	if err := c.Write([]byte("more")); err != nil {
		t.Fatalf("Write after drain = %v", err)
	}
	if _, err := io.ReadFull(client, chunk[:4]); err != nil || string(chunk[:4]) != "more" {
		t.Fatalf("read %q, %v; want \"more\"", chunk[:4], err)
	}
}

// TestErrSlow fills a Conn's queue to MaxPending and checks that ErrSlow
// writes nothing, so the client receives exactly the accepted writes.
func TestErrSlow(t *testing.T) {
	t.Parallel()
	const maxPending, chunk = 64 << 10, 8 << 10
	b := setup(t, &Config{MaxPending: maxPending}, &handler{})
	client, server := b.dial(t)
	server.SetWriteBuffer(16 << 10)
	c, err := b.p.Add(server, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; ; i++ {
		if i == 10000 {
			t.Fatal("no ErrSlow after 80 MiB")
		}
		msg := pattern(uint64(i), chunk)
		err := c.Write(msg)
		if errors.Is(err, ErrSlow) {
			break
		}
		if err != nil {
			t.Fatalf("Write #%d = %v", i, err)
		}
		want.Write(msg)
	}
	if n := pendingLen(c); n > maxPending {
		t.Errorf("%d bytes pending, more than MaxPending %d", n, maxPending)
	}
	if err := c.Writev(make([]byte, maxPending/2), make([]byte, maxPending/2+1)); !errors.Is(err, ErrSlow) {
		t.Errorf("Writev(MaxPending+1 bytes) = %v, want ErrSlow", err)
	}
	c.CloseAfter(nil)
	got, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("client received %d bytes, want the %d accepted", len(got), want.Len())
	}
	client.Close()
	if err := b.waitClose(t, c); err != nil {
		t.Errorf("OnClose error = %v, want nil", err)
	}
}

func TestCloseAfter(t *testing.T) {
	t.Parallel()
	t.Run("peer closes", func(t *testing.T) {
		t.Parallel()
		var afterClose atomic.Int32
		b := setup(t, &Config{CloseTimeout: watchdog}, &handler{data: func(c *Conn, p []byte) {
			afterClose.Add(1)
		}})
		client, c := b.pair(t)
		c.CloseAfter([]byte("bye"))
		if err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after CloseAfter = %v, want ErrClosed", err)
		}
		c.CloseAfter([]byte("again")) // ignored
		client.Write([]byte("ignored"))
		got, err := io.ReadAll(client)
		if err != nil || string(got) != "bye" {
			t.Fatalf("client read %q, %v; want \"bye\" then EOF", got, err)
		}
		client.Close()
		if err := b.waitClose(t, c); err != nil {
			t.Errorf("OnClose error = %v, want nil", err)
		}
		if n := afterClose.Load(); n != 0 {
			t.Errorf("%d OnData calls after CloseAfter", n)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Config{CloseTimeout: 50 * time.Millisecond}, &handler{})
		client, c := b.pair(t)
		c.CloseAfter([]byte("bye"))
		// The client keeps its end open; the deadline closes the Conn.
		if err := b.waitClose(t, c); err != nil {
			t.Errorf("OnClose error = %v, want nil", err)
		}
		got, err := io.ReadAll(client)
		if err != nil || string(got) != "bye" {
			t.Fatalf("client read %q, %v; want \"bye\" then EOF", got, err)
		}
	})
	t.Run("after queued output", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Config{CloseTimeout: watchdog, MaxPending: 8 << 20}, &handler{})
		client, server := b.dial(t)
		server.SetWriteBuffer(256 << 10)
		c, err := b.p.Add(server, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		payload := pattern(3, 4<<20)
		if err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		c.CloseAfter([]byte("final"))
		got, err := io.ReadAll(client)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(payload, "final"...)) {
			t.Errorf("client received %d bytes, want payload and final", len(got))
		}
		client.Close()
		if err := b.waitClose(t, c); err != nil {
			t.Errorf("OnClose error = %v, want nil", err)
		}
	})
}

func TestPeerClose(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, &handler{})
	client, c := b.pair(t)
	client.Close()
	if err := b.waitClose(t, c); err != io.EOF {
		t.Errorf("OnClose error = %v, want io.EOF", err)
	}
	if err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after close = %v, want ErrClosed", err)
	}
	if n := b.p.Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}

func TestPeerReset(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, &handler{})
	client, c := b.pair(t)
	client.SetLinger(0) // close sends RST
	client.Close()
	if err := b.waitClose(t, c); err == nil || err == io.EOF {
		t.Errorf("OnClose error = %v, want a connection reset", err)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	t.Run("concurrent and idempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil, &handler{})
		client, c := b.pair(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := c.Close(); err != nil {
					t.Errorf("Close() = %v", err)
				}
			})
		}
		wg.Wait()
		if err := b.waitClose(t, c); err != nil {
			t.Errorf("OnClose error = %v, want nil", err)
		}
		c.Close()
		c.CloseAfter(nil)
		if err := c.Write([]byte("x")); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close = %v, want ErrClosed", err)
		}
		if _, err := client.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("client read = %v, want EOF", err)
		}
	})
	t.Run("from OnData", func(t *testing.T) {
		t.Parallel()
		writeErr := make(chan error, 1)
		b := setup(t, nil, &handler{data: func(c *Conn, p []byte) {
			c.Close()
			writeErr <- c.Write(p)
		}})
		client, c := b.pair(t)
		client.Write([]byte("x"))
		if err := recv(t, writeErr); !errors.Is(err, ErrClosed) {
			t.Errorf("Write after Close in OnData = %v, want ErrClosed", err)
		}
		if err := b.waitClose(t, c); err != nil {
			t.Errorf("OnClose error = %v, want nil", err)
		}
	})
}

// TestRunEnd checks that ending Run closes every Conn, whatever its state,
// and that Add then fails.
func TestRunEnd(t *testing.T) {
	t.Parallel()
	b := newBundle(t, &Config{CloseTimeout: watchdog}, echo(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.p.Run(ctx) }()

	const n = 20
	clients := make([]*net.TCPConn, n)
	conns := make(map[*Conn]int)
	for i := range n {
		client, server := b.dial(t)
		if i%4 == 1 {
			server.SetWriteBuffer(16 << 10)
		}
		c, err := b.p.Add(server, nil, i)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 1: // output queued
			if err := c.Write(make([]byte, 512<<10)); err != nil {
				t.Fatal(err)
			}
		case 2: // draining: the client never closes
			c.CloseAfter([]byte("bye"))
		case 3: // closed by the application already
			c.Close()
		}
		clients[i], conns[c] = client, i
	}
	// Make sure every Conn is registered with a round trip.
	for i, client := range clients {
		if i%4 != 0 {
			continue
		}
		client.Write([]byte("ping"))
		if _, err := io.ReadFull(client, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
	}

	cancel()
	if err := recv(t, done); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if got := b.p.Len(); got != 0 {
		t.Errorf("Len() = %d after Run, want 0", got)
	}
	for range n {
		ev := recv(t, b.closed)
		i, ok := conns[ev.c]
		if !ok {
			t.Fatal("OnClose for an unknown or already closed Conn")
		}
		delete(conns, ev.c)
		if ev.c.Data() != i {
			t.Errorf("Data() = %v, want %d", ev.c.Data(), i)
		}
		want := ErrClosed
		if i%4 >= 2 {
			want = nil // CloseAfter and Close report nil
		}
		if ev.err != want {
			t.Errorf("conn %d: OnClose error = %v, want %v", i, ev.err, want)
		}
	}
	for i, client := range clients { // every server end sent FIN
		if _, err := io.Copy(io.Discard, client); err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}

	client, server := b.dial(t)
	if _, err := b.p.Add(server, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Run = %v, want ErrClosed", err)
	}
	if _, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client of a refused Add read %v, want EOF", err)
	}
	if err := b.p.Run(context.Background()); err == nil {
		t.Error("second Run returned nil, want an error")
	}
}

// TestBuffered checks that bytes read before Add come first, even when the
// socket already has more.
func TestBuffered(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var calls []string
	var datas []any
	got := make(chan struct{})
	b := setup(t, nil, &handler{data: func(c *Conn, p []byte) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, string(p))
		datas = append(datas, c.Data())
		if len(strings.Join(calls, "")) == len("hello world") {
			close(got)
		}
	}})
	client, server := b.dial(t)
	if _, err := client.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	hello := []byte("hello ")
	if _, err := b.p.Add(server, hello, "my data"); err != nil {
		t.Fatal(err)
	}
	copy(hello, "XXXXXX") // Add copied it
	recv(t, got)
	mu.Lock()
	defer mu.Unlock()
	if calls[0] != "hello " {
		t.Errorf("first OnData = %q, want \"hello \"", calls[0])
	}
	if all := strings.Join(calls, ""); all != "hello world" {
		t.Errorf("OnData delivered %q, want \"hello world\"", all)
	}
	for _, d := range datas {
		if d != "my data" {
			t.Errorf("Data() = %v in OnData, want \"my data\"", d)
		}
	}
}

func TestAddBeforeRun(t *testing.T) {
	t.Parallel()
	b := newBundle(t, nil, echo(t))
	client, server := b.dial(t)
	client.Write([]byte(" there"))
	c, err := b.p.Add(server, []byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write([]byte("early:")); err != nil { // before Run
		t.Fatal(err)
	}
	if got := b.p.Len(); got != 1 {
		t.Errorf("Len() = %d before Run, want 1", got)
	}
	b.run(t)
	want := "early:hi there"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != want {
		t.Fatalf("client read %q, %v; want %q", got, err, want)
	}
}

func TestAddRejects(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, &handler{})
	a, z := net.Pipe()
	defer z.Close()
	if _, err := b.p.Add(a, nil, nil); err == nil {
		t.Fatal("Add(net.Pipe) succeeded, want an error")
	}
	if _, err := z.Write([]byte("x")); err == nil {
		t.Error("Add did not close the rejected conn")
	}
	if n := b.p.Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}

func TestRemoteAddr(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, &handler{})
	client, c := b.pair(t)
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr() = %s, want %s", got, want)
	}
	if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
		t.Errorf("RemoteAddr() is a %T, want *net.TCPAddr", c.RemoteAddr())
	}
}

// TestConcurrentWriters writes framed records from several goroutines, half
// with Writev, and checks every record arrives whole and in per-writer
// order.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers, records = 8, 300
	b := setup(t, &Config{MaxPending: 64 << 20}, &handler{})
	client, server := b.dial(t)
	server.SetWriteBuffer(256 << 10)
	c, err := b.p.Add(server, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 5))
			for seq := range records {
				n := 1 + r.IntN(3000)
				hdr := make([]byte, 7)
				hdr[0] = byte(w)
				binary.BigEndian.PutUint32(hdr[1:], uint32(seq))
				binary.BigEndian.PutUint16(hdr[5:], uint16(n))
				body := bytes.Repeat([]byte{byte(w)}, n)
				var err error
				if seq%2 == 0 {
					err = c.Writev(hdr, body)
				} else {
					err = c.Write(append(hdr, body...))
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				total.Add(int64(7 + n))
			}
		})
	}
	next := make([]uint32, writers)
	hdr := make([]byte, 7)
	body := make([]byte, 1<<16)
	for done := 0; done < writers*records; done++ {
		if _, err := io.ReadFull(client, hdr); err != nil {
			t.Fatalf("record %d: %v", done, err)
		}
		w, seq, n := hdr[0], binary.BigEndian.Uint32(hdr[1:]), binary.BigEndian.Uint16(hdr[5:])
		if int(w) >= writers || seq != next[w] {
			t.Fatalf("record %d: writer %d seq %d, want seq %d", done, w, seq, next[w])
		}
		next[w]++
		if _, err := io.ReadFull(client, body[:n]); err != nil {
			t.Fatal(err)
		}
		if i := bytes.IndexFunc(body[:n], func(r rune) bool { return r != rune(w) }); i >= 0 {
			t.Fatalf("record %d from writer %d is interleaved at byte %d", done, w, i)
		}
	}
	wg.Wait()
}

// TestChurn opens, uses and closes connections from several goroutines so
// descriptor numbers are reused while events are in flight; a stale event
// or table entry would send data to the wrong Conn. Connections end in each
// of three ways: the client closes, the server replies with CloseAfter, or
// the server closes without replying.
func TestChurn(t *testing.T) {
	t.Parallel()
	b := setup(t, &Config{Loops: 2}, &handler{data: func(c *Conn, p []byte) {
		tag := c.Data().(string)
		switch p[0] {
		case 'w':
			if err := c.Write([]byte(tag)); err != nil {
				t.Errorf("Write: %v", err)
			}
		case 'a':
			c.CloseAfter([]byte(tag))
		case 'c':
			c.Close()
		}
	}})
	const goroutines, iterations = 4, 60
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range iterations {
				tag := fmt.Sprintf("%d-%02d", g, i)
				client, server := b.dial(t)
				if _, err := b.p.Add(server, nil, tag); err != nil {
					t.Error(err)
					continue
				}
				mode := "wac"[i%3]
				client.Write([]byte{mode})
				got, err := io.ReadAll(io.LimitReader(client, int64(len(tag))))
				switch {
				case err != nil:
					t.Errorf("%s: %v", tag, err)
				case mode == 'c' && len(got) != 0:
					t.Errorf("%s: got %q from a Conn closed without a reply", tag, got)
				case mode != 'c' && string(got) != tag:
					t.Errorf("got %q, want %q", got, tag)
				}
				if mode == 'a' || mode == 'c' {
					if n, err := client.Read(make([]byte, 1)); err != io.EOF {
						t.Errorf("%s: read %d, %v after the server closed; want EOF", tag, n, err)
					}
				}
				client.Close()
			}
		})
	}
	wg.Wait()
	for range goroutines * iterations {
		recv(t, b.closed)
	}
	if n := b.p.Len(); n != 0 {
		t.Errorf("Len() = %d after every connection ended, want 0", n)
	}
}
