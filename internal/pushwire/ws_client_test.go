package pushwire

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// wsServer starts a server whose handler upgrades with the package's
// server half and hands the hijacked conn to then; a nil then answers 403.
// It returns the server's address; cleanup waits for the handlers.
func wsServer(t *testing.T, then func(conn net.Conn, r *http.Request, key string)) string {
	t.Helper()
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := CheckUpgrade(r)
		if errors.Is(err, ErrBadVersion) {
			w.Header().Set("Sec-WebSocket-Version", "13")
			http.Error(w, err.Error(), http.StatusUpgradeRequired)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if then == nil {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		if n := brw.Reader.Buffered(); n > 0 {
			t.Errorf("client sent %d bytes before the handshake completed", n)
		}
		then(conn, r, key)
	}))
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
	})
	return srv.Listener.Addr().String()
}

// deadlineConn records the deadlines set on a conn.
type deadlineConn struct {
	net.Conn
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, t)
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

// lastDeadline returns the deadline set last, and whether any was.
func (c *deadlineConn) lastDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.deadlines) == 0 {
		return time.Time{}, false
	}
	return c.deadlines[len(c.deadlines)-1], true
}

// dial connects to addr; cleanup closes the conn, which ends the server's
// handler.
func dial(t *testing.T, addr string) *deadlineConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &deadlineConn{Conn: conn}
}

func wsURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// echo answers text messages on a server-side conn until the client
// closes.
func echo(conn net.Conn) {
	r := &WSReader{}
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		err = r.Feed(buf[:n], func(op Opcode, p []byte) error {
			if op == OpcodeClose {
				return io.EOF
			}
			_, err := conn.Write(AppendFrame(nil, op, p, true, nil))
			return err
		})
		if err != nil {
			return
		}
	}
}

func TestClientHandshake(t *testing.T) {
	t.Parallel()
	type seen struct{ uri, host, token, protocols string }
	requests := make(chan seen, 1)
	addr := wsServer(t, func(conn net.Conn, r *http.Request, key string) {
		requests <- seen{r.RequestURI, r.Host, r.Header.Get("X-Token"), r.Header.Get("Sec-WebSocket-Protocol")}
		resp := AppendUpgradeResponse(nil, key, SelectProtocol(r, "v2.mortar", "v1.mortar"))
		resp = AppendFrame(resp, OpcodeText, []byte("welcome"), true, nil) // before the client says anything
		if _, err := conn.Write(resp); err != nil {
			t.Error(err)
			return
		}
		echo(conn)
	})
	conn := dial(t, addr)
	u := wsURL(t, "ws://"+addr+"/push/v1?client=c1&x=%2F")
	header := http.Header{"X-Token": {"t0k"}}
	protocol, leftover, err := ClientHandshake(t.Context(), conn, u, []string{"v1.mortar", "v2.mortar"}, header)
	if err != nil || protocol != "v2.mortar" {
		t.Fatalf("ClientHandshake(%v) = %q, %q, %v; want v2.mortar", u, protocol, leftover, err)
	}
	want := seen{"/push/v1?client=c1&x=%2F", addr, "t0k", "v1.mortar, v2.mortar"}
	if got := <-requests; got != want {
		t.Errorf("server saw %+v, want %+v", got, want)
	}
	if d, ok := conn.lastDeadline(); ok && !d.IsZero() {
		t.Errorf("ClientHandshake left the deadline at %v", d)
	}

	r := &WSReader{FromServer: true}
	msgs, err := wsFeed(r, leftover)
	if err != nil || !slices.Equal(msgs, []wsMsg{{OpcodeText, "welcome"}}) {
		t.Fatalf("leftover % x decodes as %v, %v; want the welcome frame", leftover, msgs, err)
	}

	// The connection carries frames both ways.
	if _, err := conn.Write(cframe(OpcodeText, true, "ping me")); err != nil {
		t.Fatal(err)
	}
	var echoed []wsMsg
	buf := make([]byte, 64)
	for len(echoed) == 0 {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := wsFeed(r, buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		echoed = append(echoed, msgs...)
	}
	if !slices.Equal(echoed, []wsMsg{{OpcodeText, "ping me"}}) {
		t.Errorf("echo = %v, want [text \"ping me\"]", echoed)
	}
	conn.Write(AppendClose(nil, CloseNormal, "", &testMask))
}

// rawResponse makes a server that answers the upgrade with resp(key).
func rawResponse(resp func(key string) string) func(net.Conn, *http.Request, string) {
	return func(conn net.Conn, _ *http.Request, key string) {
		io.WriteString(conn, resp(key))
		io.Copy(io.Discard, conn)
	}
}

func TestClientHandshakeBadResponse(t *testing.T) {
	t.Parallel()
	good := func(key string) string { return string(AppendUpgradeResponse(nil, key, "")) }
	tests := []struct {
		name      string
		then      func(net.Conn, *http.Request, string)
		protocols []string
		errText   string
	}{
		{"forbidden", nil, nil, `status "403 Forbidden"`},
		{"wrong accept", rawResponse(func(key string) string { return string(AppendUpgradeResponse(nil, key+"x", "")) }), nil, "Sec-WebSocket-Accept"},
		{"no accept", rawResponse(func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		}), nil, "Sec-WebSocket-Accept"},
		{"200", rawResponse(func(key string) string {
			return strings.Replace(good(key), "101 Switching Protocols", "200 OK", 1)
		}), nil, `status "200 OK"`},
		{"no Upgrade", rawResponse(func(key string) string {
			return strings.Replace(good(key), "Upgrade: websocket\r\n", "", 1)
		}), nil, "Upgrade"},
		{"no Connection", rawResponse(func(key string) string {
			return strings.Replace(good(key), "Connection: Upgrade\r\n", "Connection: keep-alive\r\n", 1)
		}), nil, "Connection"},
		{"extension", rawResponse(func(key string) string {
			return strings.Replace(good(key), "\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n", 1)
		}), nil, "extensions"},
		{"protocol not offered", rawResponse(func(key string) string {
			return string(AppendUpgradeResponse(nil, key, "v3"))
		}), []string{"v1", "v2"}, `protocol "v3"`},
		{"protocol when none offered", rawResponse(func(key string) string {
			return string(AppendUpgradeResponse(nil, key, "v1"))
		}), nil, `protocol "v1"`},
		{"not HTTP", rawResponse(func(string) string { return "SSH-2.0-OpenSSH\r\n\r\n" }), nil, "malformed HTTP"},
		{"closed", func(net.Conn, *http.Request, string) {}, nil, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := wsServer(t, tt.then)
			conn := dial(t, addr)
			protocol, leftover, err := ClientHandshake(t.Context(), conn, wsURL(t, "ws://"+addr+"/"), tt.protocols, nil)
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("ClientHandshake = %q, %q, %v; want an error about %s", protocol, leftover, err, tt.errText)
			}
			if err != nil && tt.then != nil && tt.errText != "EOF" && tt.errText != "malformed HTTP" && !errors.Is(err, ErrBadHandshake) {
				t.Errorf("ClientHandshake error %v is not ErrBadHandshake", err)
			}
		})
	}
}

func TestClientHandshakeDeadline(t *testing.T) {
	t.Parallel()
	addr := wsServer(t, rawResponse(func(string) string { return "" })) // never answers
	conn := dial(t, addr)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, _, err := ClientHandshake(ctx, conn, wsURL(t, "ws://"+addr+"/"), nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ClientHandshake past its deadline = %v, want context.DeadlineExceeded", err)
	}
	if d, ok := conn.lastDeadline(); !ok || !d.IsZero() {
		t.Errorf("ClientHandshake left the deadline at %v (set: %t)", d, ok)
	}
}

func TestClientHandshakeCancel(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := ClientHandshake(ctx, client, wsURL(t, "wss://example.com/"), nil, nil)
		done <- err
	}()
	// Once the server has the request, the client waits for the response.
	req, err := http.ReadRequest(bufio.NewReader(server))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CheckUpgrade(req); err != nil || req.Host != "example.com" {
		t.Errorf("the client's request to %s fails CheckUpgrade: %v", req.Host, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("ClientHandshake cancelled = %v, want context.Canceled", err)
	}

	// A context already done fails at once.
	if _, _, err := ClientHandshake(ctx, client, wsURL(t, "ws://example.com/"), nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("ClientHandshake(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestClientHandshakeLeftoverOnPipe(t *testing.T) {
	t.Parallel()
	frames := cat(sframe(OpcodeText, true, "one"), sframe(OpcodeBinary, true, strings.Repeat("2", 300)))
	// A 101 response has no body whatever its headers say.
	for _, extra := range []string{"", "Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"} {
		client, server := net.Pipe()
		done := make(chan error, 1)
		go func() {
			req, err := http.ReadRequest(bufio.NewReader(server))
			if err != nil {
				done <- err
				return
			}
			key, err := CheckUpgrade(req)
			if err != nil {
				done <- err
				return
			}
			resp := AppendUpgradeResponse(nil, key, "")
			resp = append(resp[:len(resp)-2], extra+"\r\n"...)
			_, err = server.Write(append(resp, frames...))
			done <- err
		}()
		_, leftover, err := ClientHandshake(t.Context(), client, wsURL(t, "ws://example.com:8080/x"), nil, nil)
		if err != nil || !bytes.Equal(leftover, frames) {
			t.Errorf("ClientHandshake with %q = %q, %v; want leftover %q", extra, leftover, err, frames)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		client.Close()
		server.Close()
	}
}

func TestClientRequest(t *testing.T) {
	t.Parallel()
	u := wsURL(t, "wss://push.example.com:8443/ws?a=b")
	header := http.Header{
		"Host":       {"front.example.com"},
		"x-token":    {"abc"},
		"User-Agent": {"mortar\r\nEvil: yes"},
		"Origin":     {"https://app.example.com"},
	}
	b, key, err := appendClientRequest(nil, u, []string{"json", "msgpack"}, header)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatalf("request %q: %v", b, err)
	}
	if got, err := CheckUpgrade(r); err != nil || got != key {
		t.Errorf("CheckUpgrade(request) = %q, %v; want %q", got, err, key)
	}
	for name, want := range map[string]string{
		"Host":                   "",
		"X-Token":                "abc",
		"User-Agent":             "mortar  Evil: yes",
		"Origin":                 "https://app.example.com",
		"Sec-WebSocket-Protocol": "json, msgpack",
		"Evil":                   "",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("request header %s = %q, want %q", name, got, want)
		}
	}
	if r.Host != "front.example.com" || r.RequestURI != "/ws?a=b" {
		t.Errorf("request for %s %s, want front.example.com /ws?a=b", r.Host, r.RequestURI)
	}
}

func TestClientRequestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url       string
		protocols []string
		header    http.Header
		errText   string
	}{
		{"http://example.com/", nil, nil, "scheme"},
		{"ws:///path", nil, nil, "host"},
		{"ws://example.com/", []string{"a b"}, nil, "subprotocol"},
		{"ws://example.com/", nil, http.Header{"Sec-WebSocket-Key": {"x"}}, "Sec-Websocket-Key"},
		{"ws://example.com/", nil, http.Header{"upgrade": {"x"}}, "Upgrade"},
		{"ws://example.com/", nil, http.Header{"Sec-WebSocket-Protocol": {"x"}}, "Sec-Websocket-Protocol"},
		{"ws://example.com/", nil, http.Header{"Bad Name": {"x"}}, "header name"},
		{"ws://example.com/", nil, http.Header{"Host": {"a\r\nb"}}, "host"},
	}
	for _, tt := range tests {
		_, _, err := appendClientRequest(nil, wsURL(t, tt.url), tt.protocols, tt.header)
		if err == nil || !strings.Contains(err.Error(), tt.errText) {
			t.Errorf("appendClientRequest(%s, %q, %v) = %v; want an error about %s", tt.url, tt.protocols, tt.header, err, tt.errText)
		}
	}
}
