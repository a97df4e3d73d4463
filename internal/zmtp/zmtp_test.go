package zmtp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair runs a handshake on both ends of a loopback TCP connection.
func pair(t *testing.T, a, b Config) (*Conn, *Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			done <- result{nil, err}
			return
		}
		c, err := Handshake(nc, a)
		if err != nil {
			nc.Close()
		}
		done <- result{c, err}
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb, errB := Handshake(nc, b)
	r := <-done
	if errB != nil || r.err != nil {
		nc.Close()
		if r.c != nil {
			r.c.NetConn.Close()
		}
		t.Fatalf("handshake: %v / %v", r.err, errB)
	}
	t.Cleanup(func() { r.c.NetConn.Close(); cb.NetConn.Close() })
	return r.c, cb
}

func TestHandshakeAndMessages(t *testing.T) {
	var pinged []byte
	router, dealer := pair(t, Config{SocketType: Router, OnPing: func(c []byte) { pinged = bytes.Clone(c) }},
		Config{SocketType: Dealer, Identity: []byte("me")})
	if got := router.PeerSocketType(); got != Dealer {
		t.Errorf("PeerSocketType() = %q, want DEALER", got)
	}
	if got := string(router.PeerIdentity()); got != "me" {
		t.Errorf("PeerIdentity() = %q, want me", got)
	}
	if router.PeerMinor() != 1 {
		t.Errorf("PeerMinor() = %d, want 1", router.PeerMinor())
	}
	big := bytes.Repeat([]byte("x"), 300) // long frame
	var out []byte
	out = AppendPing(out, 10, []byte("ctx"))
	out = AppendMessage(out, []byte{}, []byte("hello"))
	out = AppendMessage(out, big)
	if _, err := dealer.NetConn.Write(out); err != nil {
		t.Fatal(err)
	}
	parts, err := router.ReadMessage(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || len(parts[0]) != 0 || string(parts[1]) != "hello" {
		t.Errorf("ReadMessage() = %q, want [\"\" hello]", parts)
	}
	if string(pinged) != "ctx" {
		t.Errorf("OnPing got %q, want ctx", pinged)
	}
	parts, err = router.ReadMessage(parts)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || !bytes.Equal(parts[0], big) {
		t.Errorf("ReadMessage() long frame mismatch: %d parts", len(parts))
	}
}

func TestHandshakeRejects(t *testing.T) {
	tests := []struct {
		name string
		peer []byte // what the peer sends
		want string
	}{
		{"http", []byte("GET / HTTP/1.1\r\n\r\n" + strings.Repeat(" ", 64)), "not a ZMTP peer"},
		{"zmtp2", append([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 1}, make([]byte, 60)...), "ZMTP 1.x"},
		{"plain", func() []byte { g := Greeting(false); copy(g[12:32], "PLAIN\x00\x00\x00"); return g }(), "PLAIN"},
		{"wrong type", AppendCommand(Greeting(false), "READY", AppendProperty(nil, "Socket-Type", []byte("PUB"))), "PUB"},
		{"error", AppendCommand(Greeting(false), "ERROR", append([]byte{3}, "bad"...)), "bad"},
		{"not command", AppendFrame(Greeting(false), []byte("x"), false), "expected a command"},
		{"bad property", AppendCommand(Greeting(false), "READY", []byte{20, 'a'}), "malformed property"},
		{"eof", Greeting(false)[:30], "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() {
				io.Copy(io.Discard, b) // drain our greeting
			}()
			go func() {
				b.Write(tt.peer)
				b.Close()
			}()
			a.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := Handshake(a, Config{SocketType: Router})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Handshake() error = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestMessageTooLarge(t *testing.T) {
	router, dealer := pair(t, Config{SocketType: Router, MaxMessageSize: 100}, Config{SocketType: Dealer})
	msg := AppendMessage(nil, make([]byte, 60), make([]byte, 60)) // 120 > 100 in two parts
	go dealer.NetConn.Write(msg)
	if _, err := router.ReadMessage(nil); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("ReadMessage() error = %v, want ErrMessageTooLarge", err)
	}
}

func TestMalformedFrames(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"reserved flags", []byte{0x80, 0}},
		{"command with more", []byte{flagCommand | flagMore, 1, 0}},
		{"command mid message", append(AppendFrame(nil, []byte("a"), true), AppendCommand(nil, "PING", []byte{0, 1})...)},
		{"bad ping", AppendCommand(nil, "PING", []byte{0})},
		{"bad command", []byte{flagCommand, 1, 9}},
		{"huge long size", []byte{flagLong, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"truncated", []byte{0, 10, 'a'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Conn{NetConn: fakeConn{bytes.NewReader(tt.in)}, maxSize: 1 << 20}
			if _, err := c.ReadMessage(nil); err == nil {
				t.Errorf("ReadMessage(%x) succeeded, want error", tt.in)
			}
		})
	}
}

// fakeConn is a net.Conn reading from r, for decoder tests and fuzzing.
type fakeConn struct{ r io.Reader }

func (f fakeConn) Read(p []byte) (int, error)       { return f.r.Read(p) }
func (f fakeConn) Write(p []byte) (int, error)      { return len(p), nil }
func (f fakeConn) Close() error                     { return nil }
func (f fakeConn) LocalAddr() net.Addr              { return nil }
func (f fakeConn) RemoteAddr() net.Addr             { return nil }
func (f fakeConn) SetDeadline(time.Time) error      { return nil }
func (f fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f fakeConn) SetWriteDeadline(time.Time) error { return nil }

func FuzzReadMessage(f *testing.F) {
	f.Add(AppendMessage(nil, []byte{}, []byte("\x93\x82\xaamessage_id\xc4\x02ab\xa1v\x03\xa4echo\x91\x01")))
	f.Add(AppendPing(AppendMessage(nil, bytes.Repeat([]byte("y"), 300)), 1, []byte("c")))
	f.Add(AppendCommand(nil, "ERROR", []byte{1, 'x'}))
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &Conn{NetConn: fakeConn{bytes.NewReader(in)}, maxSize: 1 << 16, onPing: func([]byte) {}}
		var parts [][]byte
		var err error
		for err == nil {
			parts, err = c.ReadMessage(parts)
			if err == nil {
				// Re-encoding what was read must read back the same.
				again := &Conn{NetConn: fakeConn{bytes.NewReader(AppendMessage(nil, parts...))}, maxSize: 1 << 16}
				got, err2 := again.ReadMessage(nil)
				if err2 != nil || len(got) != len(parts) {
					t.Fatalf("round trip: %v, %d parts want %d", err2, len(got), len(parts))
				}
				for i := range got {
					if !bytes.Equal(got[i], parts[i]) {
						t.Fatalf("round trip part %d differs", i)
					}
				}
			}
		}
	})
}

func FuzzHandshake(f *testing.F) {
	f.Add(AppendCommand(Greeting(true), "READY", AppendProperty(nil, "Socket-Type", []byte("DEALER"))))
	f.Add(Greeting(false))
	f.Fuzz(func(t *testing.T, in []byte) {
		Handshake(fakeConn{bytes.NewReader(in)}, Config{SocketType: Router})
	})
}

func TestBeginEndFrame(t *testing.T) {
	for _, n := range []int{0, 1, 255, 256, 70000} {
		for _, more := range []bool{false, true} {
			body := bytes.Repeat([]byte{'z'}, n)
			b, mark := BeginFrame([]byte("pre"))
			b = EndFrame(append(b, body...), mark, more)
			want := AppendFrame([]byte("pre"), body, more)
			if !bytes.Equal(b, want) {
				t.Errorf("BeginFrame/EndFrame(%d bytes, more=%v) differs from AppendFrame", n, more)
			}
		}
	}
}
