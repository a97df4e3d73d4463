package pushserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/push"
)

// waitTimeout bounds every wait of these tests for something the node
// should do promptly.
const waitTimeout = 10 * time.Second

// rawConn is a deliberately small push client over a real socket: a
// WebSocket (masked frames, read with pushwire.WSReader) or a
// length-prefixed TCP connection. Unlike package push it sends whatever a
// test asks, including what no well-behaved client would. It is used from
// the test goroutine only: its methods fail the test.
type rawConn struct {
	t   testing.TB
	nc  net.Conn
	ws  bool
	enc pushwire.Encoding // how send encodes messages

	wr     pushwire.WSReader
	fr     pushwire.FrameReader
	buf    []byte
	queue  []rawFrame // received, not yet taken
	err    error      // the read error that ended the stream
	nextID uint64
}

// rawFrame is one thing the node sent: a WebSocket message or control
// frame, or a TCP frame (op is OpcodeText for JSON, OpcodeBinary for
// msgpack).
type rawFrame struct {
	op      pushwire.Opcode
	payload []byte
}

func (f rawFrame) String() string {
	if f.op.IsControl() {
		return fmt.Sprintf("%s frame %q", f.op, f.payload)
	}
	return fmt.Sprintf("%s message %q", f.op, f.payload)
}

// dialWS opens a WebSocket to the node's /push/ws, offering protocols.
// Messages are sent as JSON, or msgpack when the node picks
// mortar.msgpack.
func dialWS(t testing.TB, n *mortartest.Node, protocols ...string) *rawConn {
	t.Helper()
	u, err := url.Parse(n.PushURL())
	if err != nil {
		t.Fatal(err)
	}
	nc := dialTCPAddr(t, u.Host)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	proto, leftover, err := pushwire.ClientHandshake(ctx, nc, u, protocols, nil)
	if err != nil {
		t.Fatalf("ClientHandshake(%s) = %v", u, err)
	}
	c := newRawConn(t, nc, true)
	if proto == "mortar.msgpack" {
		c.enc = pushwire.Msgpack
	}
	c.feed(leftover)
	return c
}

// dialTCP opens a length-prefixed TCP connection to the node's push port.
func dialTCP(t testing.TB, n *mortartest.Node) *rawConn {
	t.Helper()
	return newRawConn(t, dialTCPAddr(t, strings.TrimPrefix(n.PushTCPURL(), "tcp://")), false)
}

// dial opens a connection of the named transport: "ws" or "tcp".
func dial(t testing.TB, n *mortartest.Node, transport string) *rawConn {
	t.Helper()
	switch transport {
	case "ws":
		return dialWS(t, n)
	case "tcp":
		return dialTCP(t, n)
	}
	t.Fatalf("unknown transport %q", transport)
	return nil
}

func dialTCPAddr(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: waitTimeout}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func newRawConn(t testing.TB, nc net.Conn, ws bool) *rawConn {
	c := &rawConn{t: t, nc: nc, ws: ws, enc: pushwire.JSON, buf: make([]byte, 64<<10)}
	c.wr.FromServer = true
	c.wr.MaxMessage = 16 << 20
	c.fr.Max = 16 << 20
	return c
}

// msgpack switches the encoding of what c sends to msgpack.
func (c *rawConn) msgpack() *rawConn {
	c.enc = pushwire.Msgpack
	return c
}

// write sends raw bytes.
func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// frame returns one masked client WebSocket frame.
func frame(op pushwire.Opcode, payload []byte, fin bool) []byte {
	var mask [4]byte
	rand.Read(mask[:])
	return pushwire.AppendFrame(nil, op, payload, fin, &mask)
}

// writeFrame sends one masked WebSocket frame.
func (c *rawConn) writeFrame(op pushwire.Opcode, payload []byte) {
	c.t.Helper()
	c.write(frame(op, payload, true))
}

// framed wraps an encoded message for c's transport.
func (c *rawConn) framed(payload []byte) []byte {
	if !c.ws {
		return pushwire.AppendLenFrame(nil, payload)
	}
	op := pushwire.OpcodeText
	if c.enc == pushwire.Msgpack {
		op = pushwire.OpcodeBinary
	}
	return frame(op, payload, true)
}

// encode returns m encoded and framed for c.
func (c *rawConn) encode(m *pushwire.Message) []byte {
	c.t.Helper()
	b, err := pushwire.Append(nil, c.enc, m)
	if err != nil {
		c.t.Fatalf("Append(%+v) = %v", m, err)
	}
	return c.framed(b)
}

// send sends one message.
func (c *rawConn) send(m *pushwire.Message) {
	c.t.Helper()
	c.write(c.encode(m))
}

// sendRaw sends payload as one message (WebSocket data frame or TCP frame).
func (c *rawConn) sendRaw(payload []byte) {
	c.t.Helper()
	c.write(c.framed(payload))
}

// feed parses bytes from the node into frames.
func (c *rawConn) feed(b []byte) {
	c.t.Helper()
	var err error
	if c.ws {
		err = c.wr.Feed(b, func(op pushwire.Opcode, p []byte) error {
			c.queue = append(c.queue, rawFrame{op, bytes.Clone(p)})
			return nil
		})
	} else {
		err = c.fr.Feed(b, func(p []byte) error {
			op := pushwire.OpcodeText
			if pushwire.DetectEncoding(p) == pushwire.Msgpack {
				op = pushwire.OpcodeBinary
			}
			c.queue = append(c.queue, rawFrame{op, bytes.Clone(p)})
			return nil
		})
	}
	if err != nil {
		c.t.Fatalf("the node sent a bad stream: %v", err)
	}
}

// tryNext returns the next frame, reading until deadline. It returns the
// read's error (a timeout, or io.EOF once the node closed) when no frame
// came.
func (c *rawConn) tryNext(deadline time.Time) (rawFrame, error) {
	c.t.Helper()
	for len(c.queue) == 0 {
		if c.err != nil {
			return rawFrame{}, c.err
		}
		c.nc.SetReadDeadline(deadline)
		n, err := c.nc.Read(c.buf)
		c.feed(c.buf[:n])
		if err != nil && len(c.queue) == 0 {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				c.err = err
			}
			return rawFrame{}, err
		}
	}
	f := c.queue[0]
	c.queue = c.queue[1:]
	return f, nil
}

// next returns the next frame, failing the test if none comes in time.
func (c *rawConn) next() rawFrame {
	c.t.Helper()
	f, err := c.tryNext(time.Now().Add(waitTimeout))
	if err != nil {
		c.t.Fatalf("waiting for a frame: %v", err)
	}
	return f
}

// decode decodes a data frame.
func (c *rawConn) decode(f rawFrame) *pushwire.Message {
	c.t.Helper()
	enc := pushwire.JSON
	if f.op == pushwire.OpcodeBinary {
		enc = pushwire.Msgpack
	}
	m, err := pushwire.Decode(enc, f.payload)
	if err != nil {
		c.t.Fatalf("Decode(%s) = %v", f, err)
	}
	return m
}

// nextMsg returns the next message, failing on a close frame. It skips
// WebSocket pings and pongs.
func (c *rawConn) nextMsg() *pushwire.Message {
	c.t.Helper()
	for {
		f := c.next()
		switch f.op {
		case pushwire.OpcodePing, pushwire.OpcodePong:
			continue
		case pushwire.OpcodeClose:
			code, reason, _ := pushwire.ParseClose(f.payload)
			c.t.Fatalf("got close %d %q, want a message", code, reason)
		}
		return c.decode(f)
	}
}

// nextPush returns the next message and checks that it is a push.
func (c *rawConn) nextPush() *pushwire.Message {
	c.t.Helper()
	m := c.nextMsg()
	if m.Op != pushwire.OpPush {
		c.t.Fatalf("got %s, want a push", jsonString(m))
	}
	return m
}

// call sends m with a fresh ID and returns the reply; anything else
// arriving first fails the test.
func (c *rawConn) call(m *pushwire.Message) *pushwire.Message {
	c.t.Helper()
	c.nextID++
	m.ID = c.nextID
	c.send(m)
	r := c.nextMsg()
	if r.Op != pushwire.OpReply || r.ID != m.ID {
		c.t.Fatalf("got %s, want the reply to %s", jsonString(r), jsonString(m))
	}
	return r
}

// connect connects with tok and returns the result.
func (c *rawConn) connect(tok string) pushwire.ConnectResult {
	c.t.Helper()
	return c.connectAs(tok, "")
}

// connectAs connects with tok, naming client in the connect message.
func (c *rawConn) connectAs(tok, client string) pushwire.ConnectResult {
	c.t.Helper()
	r := c.call(&pushwire.Message{Op: pushwire.OpConnect, Token: tok, Client: client})
	if r.Error != nil {
		c.t.Fatalf("connect: %v", r.Error)
	}
	var res pushwire.ConnectResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		c.t.Fatalf("connect result %s: %v", r.Result, err)
	}
	return res
}

// subscribe subscribes and returns the result.
func (c *rawConn) subscribe(m *pushwire.Message) pushwire.SubResult {
	c.t.Helper()
	m.Op = pushwire.OpSubscribe
	r := c.call(m)
	if r.Error != nil {
		c.t.Fatalf("subscribe %s: %v", m.Channel, r.Error)
	}
	var res pushwire.SubResult
	if err := json.Unmarshal(r.Result, &res); err != nil {
		c.t.Fatalf("subscribe result %s: %v", r.Result, err)
	}
	return res
}

// closed is how the node ended a connection: the WebSocket close frame,
// or the TCP disconnect message.
type closed struct {
	code      int
	reason    string
	reconnect bool // TCP only
}

// expectClose reads until the node ends the connection and checks the
// close code: a WebSocket close frame (answered with a close frame) or a
// TCP disconnect message, then the end of the stream. Heartbeats are
// skipped; any other message fails the test.
func (c *rawConn) expectClose(code int) closed {
	c.t.Helper()
	got := c.awaitClose()
	if got.code != code {
		c.t.Fatalf("closed with %d %q, want %d", got.code, got.reason, code)
	}
	return got
}

func (c *rawConn) awaitClose() closed {
	c.t.Helper()
	for {
		f := c.next()
		switch f.op {
		case pushwire.OpcodePing, pushwire.OpcodePong:
			continue
		case pushwire.OpcodeClose:
			code, reason, err := pushwire.ParseClose(f.payload)
			if err != nil {
				c.t.Fatalf("ParseClose(%q) = %v", f.payload, err)
			}
			c.write(pushwire.AppendClose(nil, code, "", &[4]byte{1, 2, 3, 4}))
			c.expectEOF()
			return closed{code: int(code), reason: reason}
		}
		m := c.decode(f)
		switch m.Op {
		case pushwire.OpPing:
			continue
		case pushwire.OpDisconnect:
			if c.ws {
				c.t.Fatalf("got a disconnect message on a WebSocket: %s", jsonString(m))
			}
			c.expectEOF()
			return closed{code: m.Code, reason: m.Reason, reconnect: m.Reconnect}
		}
		c.t.Fatalf("got %s, want the connection closed", jsonString(m))
	}
}

// expectEOF checks that the node closes the stream without sending more.
func (c *rawConn) expectEOF() {
	c.t.Helper()
	f, err := c.tryNext(time.Now().Add(waitTimeout))
	switch {
	case err == nil:
		c.t.Fatalf("got %s, want the end of the stream", f)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), isReset(err):
		c.nc.Close() // as a client does once the node is done
	default:
		c.t.Fatalf("waiting for the end of the stream: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// jsonString renders v for messages.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

type pushOpts = mortartest.PushOptions

// startNode starts a node with the given push options.
func startNode(t testing.TB, po pushOpts) *mortartest.Node {
	t.Helper()
	return mortartest.Start(t, &mortartest.Options{Push: po})
}

// token signs a connect token with the node's secret.
func token(t testing.TB, n *mortartest.Node, c pushwire.Claims) string {
	t.Helper()
	tok, err := pushwire.SignToken(n.PushSecret(), c)
	if err != nil {
		t.Fatalf("SignToken(%+v) = %v", c, err)
	}
	return tok
}

// connected dials transport ("ws" or "tcp") and connects as client.
func connected(t testing.TB, n *mortartest.Node, transport, client string) *rawConn {
	t.Helper()
	c := dial(t, n, transport)
	c.connect(token(t, n, pushwire.Claims{Client: client}))
	return c
}

// pushClient returns a backend push client on the node.
func pushClient(t testing.TB, n *mortartest.Node) *push.Client {
	t.Helper()
	pc, err := push.New(n.Dial(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

// ctx returns a context bounded by waitTimeout.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// send pushes data to a target and fails the test on error.
func send(t testing.TB, pc *push.Client, to push.Target, data any) *push.SendResult {
	t.Helper()
	res, err := pc.Send(ctx(t), to, data, nil)
	if err != nil {
		t.Fatalf("Send(%s) = %v", to, err)
	}
	return res
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", waitTimeout, what)
		}
		<-tick.C
	}
}

// httpGet sends a GET with extra header lines over a fresh connection
// and returns the response with its body read. No net/http client is
// involved, so no transport goroutines outlive the test.
func httpGet(t testing.TB, base, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	resp := httpOpen(t, base, path, header...)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, body
}

// httpOpen sends a GET and returns the response with an unread,
// streaming body. The connection must answer within waitTimeout.
func httpOpen(t testing.TB, base, path string, header ...string) *http.Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	nc := dialTCPAddr(t, u.Host)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	nc.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp
}
