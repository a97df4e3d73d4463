package pushwire

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// appendFragmented appends a data message in fragments of at most size
// bytes, from the server.
func appendFragmented(dst []byte, op Opcode, p []byte, size int) []byte {
	for first := true; ; first = false {
		n := min(size, len(p))
		fop := OpcodeContinuation
		if first {
			fop = op
		}
		dst = AppendFrame(dst, fop, p[:n], n == len(p), nil)
		if p = p[n:]; len(p) == 0 {
			return dst
		}
	}
}

var errPeerClosed = errors.New("peer closed")

// ourServer serves WebSocket with this package's server half: it pings
// the client on connect, echoes data messages in 1000-byte fragments,
// answers pings, and echoes the close. It reports the pongs and the close
// it receives.
func ourServer(t *testing.T) (addr string, pongs, closes <-chan string) {
	pongc, closec := make(chan string, 4), make(chan string, 1)
	addr = wsServer(t, func(conn net.Conn, req *http.Request, key string) {
		resp := AppendUpgradeResponse(nil, key, SelectProtocol(req, "json"))
		if _, err := conn.Write(AppendFrame(resp, OpcodePing, []byte("hello?"), true, nil)); err != nil {
			t.Error(err)
			return
		}
		r := &WSReader{MaxMessage: 1 << 20}
		buf := make([]byte, 4096)
		var out []byte
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			out = out[:0]
			err = r.Feed(buf[:n], func(op Opcode, p []byte) error {
				switch op {
				case OpcodeText, OpcodeBinary:
					out = appendFragmented(out, op, p, 1000)
				case OpcodePing:
					out = AppendFrame(out, OpcodePong, p, true, nil)
				case OpcodePong:
					pongc <- string(p)
				case OpcodeClose:
					code, reason, _ := ParseClose(p)
					closec <- fmt.Sprintf("%d %s", code, reason)
					out = AppendClose(out, code, reason, nil)
					return errPeerClosed
				}
				return nil
			})
			var e *WSError
			if errors.As(err, &e) {
				t.Errorf("server reader: %v", err)
				out = AppendClose(out, e.Code, e.Reason, nil)
			}
			if _, werr := conn.Write(out); werr != nil || err != nil {
				return
			}
		}
	})
	return addr, pongc, closec
}

func TestGorillaClient(t *testing.T) {
	t.Parallel()
	addr, pongs, closes := ourServer(t)
	d := websocket.Dialer{Subprotocols: []string{"msgpack", "json"}, WriteBufferSize: 512}
	c, _, err := d.DialContext(t.Context(), "ws://"+addr+"/push", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Subprotocol() != "json" {
		t.Errorf("subprotocol = %q, want json", c.Subprotocol())
	}
	var pong string
	c.SetPongHandler(func(s string) error { pong = s; return nil })

	roundTrip := func(typ int, p []byte) {
		t.Helper()
		w, err := c.NextWriter(typ) // gorilla fragments at its 512-byte buffer
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		gotType, got, err := c.ReadMessage()
		if err != nil || gotType != typ || !bytes.Equal(got, p) {
			t.Fatalf("echo of %d bytes of type %d = %d bytes of type %d, %v", len(p), typ, len(got), gotType, err)
		}
	}
	roundTrip(websocket.TextMessage, []byte("hello"))
	if got := <-pongs; got != "hello?" {
		t.Errorf("server's ping answered with %q, want hello?", got)
	}
	roundTrip(websocket.BinaryMessage, bytes.Repeat([]byte{0xfe}, 300))
	roundTrip(websocket.TextMessage, []byte(strings.Repeat("€uro", 2500)))
	roundTrip(websocket.BinaryMessage, bytes.Repeat([]byte{1, 2, 3}, 70000/3)) // 64-bit length
	roundTrip(websocket.TextMessage, nil)

	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	roundTrip(websocket.TextMessage, []byte("after ping"))
	if pong != "are you there" {
		t.Errorf("pong = %q, want the ping's payload", pong)
	}

	if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 || ce.Text != "bye" {
		t.Errorf("ReadMessage after close = %v, want close 4000 bye", err)
	}
	if got := <-closes; got != "4000 bye" {
		t.Errorf("server got close %q, want 4000 bye", got)
	}
}

// gorillaClient is this package's client half over a conn.
type gorillaClient struct {
	t       *testing.T
	conn    net.Conn
	r       *WSReader
	pending []wsMsg
}

func (c *gorillaClient) send(frames ...[]byte) {
	c.t.Helper()
	if _, err := c.conn.Write(cat(frames...)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *gorillaClient) next() wsMsg {
	c.t.Helper()
	buf := make([]byte, 4096)
	for len(c.pending) == 0 {
		n, err := c.conn.Read(buf)
		if err != nil {
			c.t.Fatal(err)
		}
		msgs, err := wsFeed(c.r, buf[:n])
		if err != nil {
			c.t.Fatal(err)
		}
		c.pending = msgs
	}
	m := c.pending[0]
	c.pending = c.pending[1:]
	return m
}

// randomMask returns a fresh masking key, as a client must use.
func randomMask() *[4]byte {
	var m [4]byte
	rand.Read(m[:])
	return &m
}

func TestGorillaServer(t *testing.T) {
	t.Parallel()
	closes, pongs := make(chan error, 1), make(chan string, 1)
	up := websocket.Upgrader{Subprotocols: []string{"json"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade answered
		}
		defer c.Close()
		c.SetPongHandler(func(s string) error { pongs <- s; return nil })
		c.WriteMessage(websocket.TextMessage, []byte("welcome"))
		c.WriteControl(websocket.PingMessage, []byte("srv"), time.Now().Add(10*time.Second))
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				closes <- err
				return
			}
			if err := c.WriteMessage(typ, p); err != nil {
				closes <- err
				return
			}
		}
	}))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	u := wsURL(t, "ws://"+srv.Listener.Addr().String()+"/")
	protocol, leftover, err := ClientHandshake(t.Context(), conn, u, []string{"msgpack", "json"}, nil)
	if err != nil || protocol != "json" {
		t.Fatalf("ClientHandshake = %q, %v; want json", protocol, err)
	}
	c := &gorillaClient{t: t, conn: conn, r: &WSReader{FromServer: true, MaxMessage: 1 << 20}}
	c.pending, err = wsFeed(c.r, leftover)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(want wsMsg) {
		t.Helper()
		if got := c.next(); got.op != want.op || got.payload != want.payload {
			t.Fatalf("got %.60v, want %.60v", got, want)
		}
	}
	expect(wsMsg{OpcodeText, "welcome"})
	expect(wsMsg{OpcodePing, "srv"})
	c.send(AppendFrame(nil, OpcodePong, []byte("srv"), true, randomMask()))

	c.send(AppendFrame(nil, OpcodeText, []byte("hello"), true, randomMask()))
	expect(wsMsg{OpcodeText, "hello"})

	big := strings.Repeat("0123456789", 7000) // 64-bit length
	c.send(
		AppendFrame(nil, OpcodeBinary, []byte(big[:100]), false, randomMask()),
		AppendFrame(nil, OpcodePing, []byte("mid"), true, randomMask()),
		AppendFrame(nil, OpcodeContinuation, []byte(big[100:]), true, randomMask()),
	)
	expect(wsMsg{OpcodePong, "mid"})
	expect(wsMsg{OpcodeBinary, big})
	if got := <-pongs; got != "srv" {
		t.Errorf("gorilla got pong %q, want srv", got)
	}

	c.send(AppendClose(nil, 4001, "done", randomMask()))
	m := c.next()
	code, _, err := ParseClose([]byte(m.payload))
	if m.op != OpcodeClose || code != 4001 || err != nil {
		t.Errorf("close answered with %v (%d, %v), want close 4001", m, code, err)
	}
	var ce *websocket.CloseError
	if err := <-closes; !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "done" {
		t.Errorf("gorilla got %v, want close 4001 done", err)
	}
}
