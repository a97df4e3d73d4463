package pushwire

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Opcode is a WebSocket frame's opcode (RFC 6455 §5.2).
type Opcode byte

// Opcodes defined by RFC 6455. Close, ping and pong are control frames.
const (
	OpcodeContinuation Opcode = 0
	OpcodeText         Opcode = 1
	OpcodeBinary       Opcode = 2
	OpcodeClose        Opcode = 8
	OpcodePing         Opcode = 9
	OpcodePong         Opcode = 10
)

// IsControl reports whether op is a control opcode (close, ping, pong or
// one of the reserved ones).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

func (op Opcode) String() string {
	switch op {
	case OpcodeContinuation:
		return "continuation"
	case OpcodeText:
		return "text"
	case OpcodeBinary:
		return "binary"
	case OpcodeClose:
		return "close"
	case OpcodePing:
		return "ping"
	case OpcodePong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%d)", byte(op))
}

// Close status codes (RFC 6455 §7.4.1).
const (
	CloseNormal         uint16 = 1000
	CloseGoingAway      uint16 = 1001
	CloseProtocolError  uint16 = 1002
	CloseUnsupported    uint16 = 1003
	CloseNoStatus       uint16 = 1005 // reported for an empty close frame; never sent
	CloseInvalidPayload uint16 = 1007
	ClosePolicy         uint16 = 1008
	CloseTooBig         uint16 = 1009
	CloseInternal       uint16 = 1011
)

// MaxControlPayload is the largest payload of a control frame.
const MaxControlPayload = 125

// WSError is a violation of the WebSocket protocol by the peer: the
// connection must be closed with Code (see [AppendClose]).
type WSError struct {
	Code   uint16
	Reason string
}

func (e *WSError) Error() string {
	return fmt.Sprintf("pushwire: websocket: %s (close %d)", e.Reason, e.Code)
}

func protocolError(format string, args ...any) *WSError {
	return &WSError{Code: CloseProtocolError, Reason: fmt.Sprintf(format, args...)}
}

// AppendFrame appends one frame to dst. A server passes a nil mask; a
// client passes a fresh random mask for every frame (RFC 6455 §5.3). The
// caller keeps to the protocol: control frames are final and carry at most
// [MaxControlPayload] bytes, and fragments after the first use
// OpcodeContinuation.
func AppendFrame(dst []byte, op Opcode, payload []byte, fin bool, mask *[4]byte) []byte {
	dst = appendHeader(dst, op, fin, len(payload), mask)
	start := len(dst)
	dst = append(dst, payload...)
	if mask != nil {
		maskBytes(*mask, 0, dst[start:])
	}
	return dst
}

// AppendClose appends a close frame carrying code and reason. The reason
// is truncated on a UTF-8 boundary to fit the 125-byte control payload, and
// invalid UTF-8 in it is replaced. A code of 0 or [CloseNoStatus] appends a
// close frame with an empty payload, which is how a close without a status
// is sent.
func AppendClose(dst []byte, code uint16, reason string, mask *[4]byte) []byte {
	if code == 0 || code == CloseNoStatus {
		return AppendFrame(dst, OpcodeClose, nil, true, mask)
	}
	if !utf8.ValidString(reason) {
		reason = strings.ToValidUTF8(reason, "\uFFFD")
	}
	if n := MaxControlPayload - 2; len(reason) > n {
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	dst = appendHeader(dst, OpcodeClose, true, 2+len(reason), mask)
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, code)
	dst = append(dst, reason...)
	if mask != nil {
		maskBytes(*mask, 0, dst[start:])
	}
	return dst
}

// ParseClose decodes the payload of a close frame. An empty payload
// reports [CloseNoStatus]. A malformed payload (one byte, a code that may
// not be sent, a reason that is not UTF-8) is a *[WSError] with
// [CloseProtocolError].
func ParseClose(payload []byte) (code uint16, reason string, err error) {
	code, err = checkClose(payload)
	if err != nil || len(payload) < 2 {
		return code, "", err
	}
	return code, string(payload[2:]), nil
}

// checkClose validates a close payload without allocating on success.
func checkClose(p []byte) (uint16, error) {
	switch len(p) {
	case 0:
		return CloseNoStatus, nil
	case 1:
		return 0, protocolError("close payload of 1 byte")
	}
	code := binary.BigEndian.Uint16(p)
	if !validCloseCode(code) {
		return 0, protocolError("invalid close code %d", code)
	}
	if !utf8.Valid(p[2:]) {
		return 0, protocolError("close reason is not UTF-8")
	}
	return code, nil
}

// validCloseCode reports whether a peer may send code in a close frame:
// the codes RFC 6455 and the IANA registry assign (1000–1003, 1007–1014)
// and the ranges for libraries and applications (3000–4999).
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003,
		code >= 1007 && code <= 1014,
		code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func appendHeader(dst []byte, op Opcode, fin bool, n int, mask *[4]byte) []byte {
	b0 := byte(op) & 0x0f
	if fin {
		b0 |= 0x80
	}
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, m|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if mask != nil {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// maskBytes XORs b in place with key, starting at key position pos, and
// returns the key position following b.
func maskBytes(key [4]byte, pos int, b []byte) int {
	if len(b) >= 16 {
		// Rotate the key to start at pos and mask eight bytes at a time;
		// eight is a multiple of four, so pos is unchanged by each step.
		var k [8]byte
		for i := range k {
			k[i] = key[(pos+i)&3]
		}
		k64 := binary.LittleEndian.Uint64(k[:])
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}
