package pushwire

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// wsGUID is appended to the client's key to make the accept key (RFC 6455
// §1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ErrBadVersion reports an upgrade request for a WebSocket version other
// than 13. The server answers 426 Upgrade Required with the header
// "Sec-WebSocket-Version: 13" (RFC 6455 §4.4); other errors of
// [CheckUpgrade] are answered 400.
var ErrBadVersion = errors.New("pushwire: websocket upgrade: Sec-WebSocket-Version must be 13")

// AcceptKey returns the Sec-WebSocket-Accept value for a client's
// Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
func AcceptKey(key string) string {
	return string(appendAcceptKey(nil, key))
}

func appendAcceptKey(dst []byte, key string) []byte {
	var buf [64]byte
	sum := sha1.Sum(append(append(buf[:0], key...), wsGUID...))
	return base64.StdEncoding.AppendEncode(dst, sum[:])
}

// CheckUpgrade validates a WebSocket upgrade request (RFC 6455 §4.2.1) and
// returns its Sec-WebSocket-Key. The error says what is wrong; it is
// ErrBadVersion, possibly wrapped, for a version other than 13.
func CheckUpgrade(r *http.Request) (key string, err error) {
	switch {
	case r.Method != http.MethodGet:
		return "", upgradeError("method %s, want GET", r.Method)
	case !r.ProtoAtLeast(1, 1):
		return "", upgradeError("%s, want HTTP/1.1 or later", r.Proto)
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "", upgradeError(`Connection header lacks "upgrade"`)
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return "", upgradeError(`Upgrade header lacks "websocket"`)
	}
	if v := r.Header.Values("Sec-Websocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return "", fmt.Errorf("%w, got %q", ErrBadVersion, strings.Join(v, ", "))
	}
	keys := r.Header.Values("Sec-Websocket-Key")
	if len(keys) != 1 {
		return "", upgradeError("want one Sec-WebSocket-Key header, got %d", len(keys))
	}
	key = strings.TrimSpace(keys[0])
	if !validKey(key) {
		return "", upgradeError("Sec-WebSocket-Key %q is not the base64 of 16 bytes", key)
	}
	return key, nil
}

func upgradeError(format string, args ...any) error {
	return fmt.Errorf("pushwire: websocket upgrade: "+format, args...)
}

// validKey reports whether key is the base64 of 16 bytes.
func validKey(key string) bool {
	if len(key) != 24 {
		return false
	}
	var b [18]byte
	n, err := base64.StdEncoding.Decode(b[:], []byte(key))
	return err == nil && n == 16
}

// SelectProtocol returns the first of the server's supported subprotocols
// that the client offered in Sec-WebSocket-Protocol, or "" if none was.
func SelectProtocol(r *http.Request, supported ...string) string {
	offered := r.Header.Values("Sec-Websocket-Protocol")
	for _, s := range supported {
		for _, v := range offered {
			for p := range strings.SplitSeq(v, ",") {
				if strings.TrimSpace(p) == s {
					return s
				}
			}
		}
	}
	return ""
}

// AppendUpgradeResponse appends the server's answer to a valid upgrade
// request: "HTTP/1.1 101 Switching Protocols" with the Upgrade, Connection
// and Sec-WebSocket-Accept headers and, if protocol is not empty,
// Sec-WebSocket-Protocol, up to and including the blank line. The server
// writes it to the hijacked connection.
func AppendUpgradeResponse(dst []byte, key, protocol string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\n"+
		"Connection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "...)
	dst = appendAcceptKey(dst, key)
	if protocol != "" {
		dst = append(dst, "\r\nSec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
	}
	return append(dst, "\r\n\r\n"...)
}

// headerHasToken reports whether a comma-separated header of h holds
// token, compared without case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
