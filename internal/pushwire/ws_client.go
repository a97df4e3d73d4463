package pushwire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// ErrBadHandshake reports a server response that does not complete the
// WebSocket opening handshake.
var ErrBadHandshake = errors.New("pushwire: bad websocket handshake")

// maxResponseHeader bounds the server's handshake response.
const maxResponseHeader = 16 << 10

// reservedHeaders are set by ClientHandshake and may not be in its header
// argument.
var reservedHeaders = []string{
	"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version",
	"Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
}

// ClientHandshake performs the client side of the WebSocket opening
// handshake (RFC 6455 §4.1) over conn, an established connection (with TLS
// for wss) to u's host. It sends a GET for u's path and query with a
// random key, offering protocols in Sec-WebSocket-Protocol if any, and the
// extra header (in which "Host" overrides u.Host; the handshake's own
// headers are not allowed). It checks the response: 101, Upgrade and
// Connection, the accept key, and a protocol among those offered.
//
// It returns the protocol the server chose, "" if none, and the bytes read
// after the response's header, which may hold the server's first frames:
// feed them to the WSReader before reading conn again.
//
// ctx bounds the handshake: ClientHandshake sets conn's deadline from it
// and clears the deadline before returning, also on error.
func ClientHandshake(ctx context.Context, conn net.Conn, u *url.URL, protocols []string, header http.Header) (protocol string, leftover []byte, err error) {
	req, key, err := appendClientRequest(nil, u, protocols, header)
	if err != nil {
		return "", nil, err
	}
	stop, err := bindDeadline(ctx, conn)
	if err != nil {
		return "", nil, err
	}
	protocol, leftover, err = clientExchange(conn, req, key, protocols)
	stopErr := stop()
	switch {
	case err != nil && ctx.Err() != nil:
		return "", nil, fmt.Errorf("%w (%w)", err, ctx.Err())
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded) && pastDeadline(ctx):
		return "", nil, fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
	case err != nil:
		return "", nil, err
	case stopErr != nil:
		return "", nil, stopErr
	}
	return protocol, leftover, nil
}

// pastDeadline reports whether ctx's deadline has passed; the deadline it
// set on the conn may fire before ctx notices.
func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// bindDeadline sets conn's deadline from ctx and interrupts conn when ctx
// is cancelled. The function it returns undoes both.
func bindDeadline(ctx context.Context, conn net.Conn) (stop func() error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pushwire: websocket handshake: %w", err)
	}
	d, _ := ctx.Deadline()
	if err := conn.SetDeadline(d); err != nil {
		return nil, fmt.Errorf("pushwire: websocket handshake: %w", err)
	}
	interrupted := make(chan struct{})
	stopFunc := context.AfterFunc(ctx, func() {
		defer close(interrupted)
		conn.SetDeadline(time.Unix(1, 0))
	})
	return func() error {
		if !stopFunc() {
			<-interrupted // let it finish before clearing the deadline
		}
		if err := conn.SetDeadline(time.Time{}); err != nil {
			return fmt.Errorf("pushwire: websocket handshake: %w", err)
		}
		return nil
	}, nil
}

func clientExchange(conn net.Conn, req []byte, key string, protocols []string) (string, []byte, error) {
	if _, err := conn.Write(req); err != nil {
		return "", nil, fmt.Errorf("pushwire: websocket handshake: %w", err)
	}
	br := bufio.NewReader(io.LimitReader(conn, maxResponseHeader))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", nil, fmt.Errorf("pushwire: websocket handshake: reading response: %w", err)
	}
	resp.Body.Close()
	protocol, err := checkResponse(resp, key, protocols)
	if err != nil {
		return "", nil, err
	}
	var leftover []byte
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		leftover = bytes.Clone(b)
	}
	return protocol, leftover, nil
}

func checkResponse(resp *http.Response, key string, protocols []string) (string, error) {
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return "", fmt.Errorf("%w: status %q", ErrBadHandshake, resp.Status)
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return "", fmt.Errorf(`%w: Upgrade header lacks "websocket"`, ErrBadHandshake)
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return "", fmt.Errorf(`%w: Connection header lacks "upgrade"`, ErrBadHandshake)
	case resp.Header.Get("Sec-Websocket-Accept") != AcceptKey(key):
		return "", fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrBadHandshake)
	case resp.Header.Get("Sec-Websocket-Extensions") != "":
		return "", fmt.Errorf("%w: extensions %q were not offered", ErrBadHandshake, resp.Header.Get("Sec-Websocket-Extensions"))
	}
	p := resp.Header.Values("Sec-Websocket-Protocol")
	switch {
	case len(p) == 0:
		return "", nil
	case len(p) > 1 || !slices.Contains(protocols, p[0]):
		return "", fmt.Errorf("%w: protocol %q was not offered", ErrBadHandshake, strings.Join(p, ", "))
	}
	return p[0], nil
}

// appendClientRequest appends the upgrade request for u and returns it
// with its key.
func appendClientRequest(dst []byte, u *url.URL, protocols []string, header http.Header) ([]byte, string, error) {
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, "", fmt.Errorf("pushwire: websocket handshake: scheme %q, want ws or wss", u.Scheme)
	}
	host := u.Host
	for name, v := range header {
		name = http.CanonicalHeaderKey(name)
		if slices.Contains(reservedHeaders, name) {
			return nil, "", fmt.Errorf("pushwire: websocket handshake: header %s is set by the handshake", name)
		}
		if !validHeaderName(name) {
			return nil, "", fmt.Errorf("pushwire: websocket handshake: bad header name %q", name)
		}
		if name == "Host" && len(v) > 0 {
			host = v[0]
		}
	}
	if host == "" || strings.ContainsAny(host, "\r\n") {
		return nil, "", fmt.Errorf("pushwire: websocket handshake: bad host %q", host)
	}
	for _, p := range protocols {
		if !validHeaderName(p) { // a subprotocol is an HTTP token
			return nil, "", fmt.Errorf("pushwire: websocket handshake: bad subprotocol %q", p)
		}
	}
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])

	dst = append(dst, "GET "...)
	dst = append(dst, u.RequestURI()...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\n"...)
	if len(protocols) > 0 {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, strings.Join(protocols, ", ")...)
		dst = append(dst, "\r\n"...)
	}
	for _, name := range slices.Sorted(maps.Keys(header)) {
		canon := http.CanonicalHeaderKey(name)
		if canon == "Host" {
			continue
		}
		for _, v := range header[name] {
			dst = append(dst, canon...)
			dst = append(dst, ": "...)
			dst = append(dst, strings.TrimSpace(headerValueReplacer.Replace(v))...)
			dst = append(dst, "\r\n"...)
		}
	}
	return append(dst, "\r\n"...), key, nil
}

// headerValueReplacer keeps a header value on its line.
var headerValueReplacer = strings.NewReplacer("\r", " ", "\n", " ")

// validHeaderName reports whether s is an HTTP token (RFC 9110 §5.6.2).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
