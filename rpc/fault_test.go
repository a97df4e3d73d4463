package rpc_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/msgpack"
	"github.com/mortarhq/mortar/internal/zmtp"
	"github.com/mortarhq/mortar/rpc"
)

// rawPeer is a hand-driven ZMTP connection for feeding a server or client
// whatever bytes a test needs.
type rawPeer struct {
	t  *testing.T
	zc *zmtp.Conn
}

func dialRaw(t *testing.T, endpoint string) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	zc, err := zmtp.Handshake(nc, zmtp.Config{SocketType: zmtp.Dealer})
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, zc: zc}
}

func (p *rawPeer) send(parts ...[]byte) {
	p.t.Helper()
	if _, err := p.zc.NetConn.Write(zmtp.AppendMessage(nil, parts...)); err != nil {
		p.t.Fatal(err)
	}
}

// request encodes a zerorpc request event.
func request(id, method string, args ...any) []byte {
	b := msgpack.AppendArrayHeader(nil, 3)
	b = msgpack.AppendMapHeader(b, 2)
	b = msgpack.AppendString(b, "message_id")
	b = msgpack.AppendBytes(b, []byte(id))
	b = msgpack.AppendString(b, "v")
	b = msgpack.AppendInt(b, 3)
	b = msgpack.AppendString(b, method)
	b = msgpack.AppendArrayHeader(b, len(args))
	for _, a := range args {
		b, _ = msgpack.Append(b, a)
	}
	return b
}

// recvEvent reads one event and returns its name and decoded args.
func (p *rawPeer) recvEvent() (name string, args any, header map[string]any) {
	p.t.Helper()
	parts, err := p.zc.ReadMessage(nil)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	v, _, err := msgpack.ReadAny(parts[len(parts)-1])
	if err != nil {
		p.t.Fatalf("decode: %v", err)
	}
	ev := v.([]any)
	return ev[1].(string), ev[2], ev[0].(map[string]any)
}

// TestBadInputIsDropped feeds a server malformed events; each is dropped,
// the connection stays usable, and other clients are unaffected.
func TestBadInputIsDropped(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, nil)
	p := dialRaw(t, ep)
	noID := msgpack.AppendArrayHeader(nil, 3)
	noID = msgpack.AppendMapHeader(noID, 1)
	noID = msgpack.AppendString(noID, "v")
	noID = msgpack.AppendInt(noID, 3)
	noID = msgpack.AppendString(noID, "hello")
	noID = msgpack.AppendArrayHeader(noID, 0)
	bad := [][]byte{
		{},                                  // empty payload
		[]byte("garbage"),                   // not msgpack
		{0x92, 0x80, 0xa1, 'x'},             // array of 2
		{0x93, 0x80, 0x01, 0x90},            // name not a string
		{0x93, 0x80, 0xa1, 'x'},             // truncated
		{0xdd, 0xff, 0xff, 0xff, 0xff},      // huge array header
		noID,                                // missing message_id
		append(request("a", "hello"), 0x00), // trailing bytes
	}
	for _, payload := range bad {
		p.send([]byte{}, payload)
	}
	p.send([]byte{}, request("ok-1", "hello"))
	name, args, hdr := p.recvEvent()
	if name != "OK" || args.([]any)[0] != "hello" || !bytes.Equal(hdr["response_to"].([]byte), []byte("ok-1")) {
		t.Errorf("after bad input: got %s %v %v", name, args, hdr)
	}
	c := dial(t, ep, nil)
	if err := c.Call(t.Context(), "hello", nil); err != nil {
		t.Error(err)
	}
}

// TestReplyMirrorsMessageID checks response_to repeats message_id with the
// same msgpack type and bytes, str or bin, and that the envelope is kept.
func TestReplyMirrorsMessageID(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, nil)
	p := dialRaw(t, ep)
	strReq := msgpack.AppendArrayHeader(nil, 3)
	strReq = msgpack.AppendMapHeader(strReq, 2)
	strReq = msgpack.AppendString(strReq, "message_id")
	strReq = msgpack.AppendString(strReq, "str-id")
	strReq = msgpack.AppendString(strReq, "v")
	strReq = msgpack.AppendInt(strReq, 3)
	strReq = msgpack.AppendString(strReq, "hello")
	strReq = msgpack.AppendArrayHeader(strReq, 0)
	p.send([]byte{}, strReq)
	_, _, hdr := p.recvEvent()
	if got, ok := hdr["response_to"].(string); !ok || got != "str-id" {
		t.Errorf("response_to = %#v, want the str \"str-id\"", hdr["response_to"])
	}
	// Without the delimiter frame, as some REQ-less peers send.
	p.send(request("bin-id", "hello"))
	parts, err := p.zc.ReadMessage(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 {
		t.Errorf("reply to a message without envelope has %d parts, want 1", len(parts))
	}
}

func TestOversizedMessageDropsPeer(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, &rpc.ServerConfig{MaxMessageSize: 1024}, nil)
	p := dialRaw(t, ep)
	p.send([]byte{}, request("big", "echo", strings.Repeat("x", 4096)))
	if _, err := p.zc.ReadMessage(nil); err == nil {
		t.Fatal("server answered an oversized message, want disconnect")
	}
	c := dial(t, ep, nil)
	if err := c.Call(t.Context(), "echo", nil, strings.Repeat("x", 512)); err != nil {
		t.Errorf("small call after oversized peer: %v", err)
	}
}

// TestLostClientCancelsCall: a client that stops heartbeating is lost and
// its call's context is cancelled, as zerorpc's LostRemote.
func TestLostClientCancelsCall(t *testing.T) {
	t.Parallel()
	cause := make(chan error, 1)
	_, ep := startServer(t, &rpc.ServerConfig{HeartbeatInterval: 100 * time.Millisecond}, func(s *rpc.Server) {
		s.Handle("wait", func(ctx context.Context) error {
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return nil
		}, nil)
	})
	p := dialRaw(t, ep)
	p.send([]byte{}, request("w", "wait"))
	// The server heartbeats the channel; the raw peer never answers.
	if name, _, _ := p.recvEvent(); name != "_zpc_hb" {
		t.Errorf("first event = %s, want _zpc_hb", name)
	}
	select {
	case err := <-cause:
		if !errors.Is(err, rpc.ErrLostRemote) {
			t.Errorf("cause = %v, want ErrLostRemote", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call not cancelled after the client went silent")
	}
}

// silentServer accepts ZMTP connections and reads requests without ever
// replying or heartbeating.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		zc, err := zmtp.Handshake(nc, zmtp.Config{SocketType: zmtp.Router})
		if err != nil {
			return
		}
		for {
			if _, err := zc.ReadMessage(nil); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return "tcp://" + l.Addr().String()
}

func TestLostServerFailsCall(t *testing.T) {
	t.Parallel()
	ep := silentServer(t)
	c := dial(t, ep, &rpc.ClientConfig{HeartbeatInterval: 100 * time.Millisecond})
	start := time.Now()
	err := c.Call(t.Context(), "hello", nil)
	if !errors.Is(err, rpc.ErrLostRemote) {
		t.Errorf("Call() error = %v, want ErrLostRemote", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("lost after %v, want about 2-3 heartbeat intervals", d)
	}
	c.Close() // closing the client ends the silent server's read loop
}

// TestSlowPeerDoesNotStallOthers: a peer that never reads its replies
// fills its socket; the server keeps serving everyone else, then drops it.
func TestSlowPeerDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, &rpc.ServerConfig{WriteTimeout: 500 * time.Millisecond, MaxPending: 1 << 20}, nil)
	p := dialRaw(t, ep)
	big := strings.Repeat("y", 256<<10)
	for i := range 64 {
		// The server drops this peer once a write to it times out; from
		// then on our writes fail, which is expected.
		msg := zmtp.AppendMessage(nil, []byte{}, request(fmt.Sprint("slow-", i), "echo", big))
		if _, err := p.zc.NetConn.Write(msg); err != nil {
			break
		}
	}
	c := dial(t, ep, nil)
	for range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err := c.Call(ctx, "hello", nil)
		cancel()
		if err != nil {
			t.Fatalf("call while a slow peer is stuck: %v", err)
		}
	}
}

func TestShutdownCompletesInFlight(t *testing.T) {
	t.Parallel()
	srv, ep := startServer(t, nil, nil)
	c := dial(t, ep, nil)
	res := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		var got float64
		err := c.Call(t.Context(), "sleep", &got, 0.3)
		if err == nil && got != 0.3 {
			err = errors.New("wrong result")
		}
		res <- err
	}()
	<-started
	// Wait until the server has the call, by seeing a second call's reply
	// arrive after the first was sent on the same connection.
	if err := c.Call(t.Context(), "hello", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown() = %v", err)
	}
	if err := <-res; err != nil {
		t.Errorf("in-flight call during shutdown: %v", err)
	}
}

func TestConnLossAndRedial(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	srv := rpc.NewServer(&rpc.ServerConfig{Logger: testLogger(t)})
	srv.Handle("wait", func(ctx context.Context) error { <-ctx.Done(); return nil }, nil)
	srv.Handle("hello", func() string { return "hello" }, nil)
	go srv.Serve(l)
	c := dial(t, "tcp://"+addr, nil)
	res := make(chan error, 1)
	go func() { res <- c.Call(t.Context(), "wait", nil) }()
	if err := c.Call(t.Context(), "hello", nil); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := <-res; !errors.Is(err, rpc.ErrConnLost) {
		t.Errorf("in-flight call when server died: %v, want ErrConnLost", err)
	}
	// A new server on the same address: the next call redials.
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	srv2 := rpc.NewServer(&rpc.ServerConfig{Logger: testLogger(t)})
	srv2.Handle("hello", func() string { return "again" }, nil)
	go srv2.Serve(l2)
	defer srv2.Close()
	var s string
	if err := c.Call(t.Context(), "hello", &s); err != nil || s != "again" {
		t.Errorf("call after redial = %q, %v", s, err)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	_, ep := startServer(t, &rpc.ServerConfig{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, nil)
	c := dial(t, ep, &rpc.ClientConfig{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	var sum int
	if err := c.Call(t.Context(), "add", &sum, 2, 2); err != nil || sum != 4 {
		t.Errorf("add over TLS = %d, %v", sum, err)
	}
	// A plaintext client cannot talk to it.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := rpc.Dial(ctx, ep, &rpc.ClientConfig{Logger: testLogger(t), HandshakeTimeout: time.Second}); err == nil {
		t.Error("plaintext Dial to a TLS server succeeded")
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mortar test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestMaxCallsPerConn: calls beyond the limit on one connection are
// refused at once with ServerBusy; other connections are unaffected.
func TestMaxCallsPerConn(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	_, ep := startServer(t, &rpc.ServerConfig{MaxCallsPerConn: 2}, func(s *rpc.Server) {
		s.Handle("park", func(ctx context.Context) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, nil)
	})
	defer close(release)
	p := dialRaw(t, ep)
	p.send([]byte{}, request("p1", "park"))
	p.send([]byte{}, request("p2", "park"))
	p.send([]byte{}, request("p3", "park"))
	name, args, hdr := p.recvEvent()
	if name != "ERR" || args.([]any)[0] != "ServerBusy" || string(hdr["response_to"].([]byte)) != "p3" {
		t.Errorf("third call: %s %v %v, want ERR ServerBusy for p3", name, args, hdr)
	}
	c := dial(t, ep, nil)
	if err := c.Call(t.Context(), "hello", nil); err != nil {
		t.Errorf("another connection: %v", err)
	}
}
