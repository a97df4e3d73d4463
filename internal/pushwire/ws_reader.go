package pushwire

import (
	"encoding/binary"
	"slices"
	"unicode/utf8"
)

// MaxMessageDefault is the default of [WSReader.MaxMessage].
const MaxMessageDefault = 64 << 10

// maxWSHeader is the longest frame header: 2 bytes, a 64-bit length and a
// masking key.
const maxWSHeader = 14

// WSReader reassembles WebSocket messages from a byte stream. Its zero
// value reads on the server side with the default message limit.
//
// A reader holds no buffer between messages: it keeps the incomplete tail
// of the stream (a partial frame or a fragmented message) only until the
// bytes that complete it arrive.
type WSReader struct {
	// MaxMessage is the largest message accepted, after reassembly of
	// fragments; a larger one is a *WSError with CloseTooBig, reported
	// from the frame header before its payload is buffered. Defaults to
	// MaxMessageDefault.
	MaxMessage int
	// FromServer is true on the client side, where frames must arrive
	// unmasked, and false on the server side, where they must be masked.
	FromServer bool

	hdr  [maxWSHeader]byte // the incomplete header of the next frame
	hdrN uint8             // bytes of it in hdr

	// The frame whose payload is being read, while remain > 0.
	frameOp  Opcode
	frameFin bool
	maskPos  uint8
	mask     [4]byte
	remain   int

	msgOp Opcode // the data message in progress, fragmented or partial; 0 if none
	msg   []byte // its payload so far; empty while none is in progress
	valid int    // length of the prefix of msg checked to be UTF-8 (text only)
	ctl   []byte // the payload so far of a partial control frame

	err error // the error that stopped the reader
}

// Feed consumes b, which may hold any number of whole or partial frames,
// and calls fn for each complete message: data messages reassembled from
// their fragments (op is OpcodeText or OpcodeBinary), and control frames
// as they arrive, also between the fragments of a data message. The payload passed
// to fn may alias b or the reader's buffer and is valid only during fn;
// Feed may unmask b in place. A close frame's payload has been checked
// (see [ParseClose]); the caller answers it and stops feeding.
//
// An error from fn stops Feed and is returned. A protocol violation is a
// *[WSError] naming the close code to send. After either, the reader must
// not be used again: later calls return the same error.
func (r *WSReader) Feed(b []byte, fn func(op Opcode, payload []byte) error) error {
	if r.err != nil {
		return r.err
	}
	if err := r.feed(b, fn); err != nil {
		r.err = err
		r.msg, r.ctl = nil, nil
		return err
	}
	// Within feed, a consumed buffer is kept empty for the next partial
	// frame; between calls, only while a frame is incomplete.
	idle := r.remain == 0 && r.hdrN == 0
	if r.msgOp == 0 && idle {
		r.msg = nil
	}
	if idle || !r.frameOp.IsControl() {
		r.ctl = nil
	}
	return nil
}

func (r *WSReader) feed(b []byte, fn func(Opcode, []byte) error) error {
	for len(b) > 0 {
		if r.remain > 0 {
			var err error
			if b, err = r.payload(b, fn); err != nil {
				return err
			}
			continue
		}
		var h wsHeader
		if r.hdrN == 0 {
			n := parseWSHeader(b, &h)
			if n == 0 {
				r.hdrN = uint8(copy(r.hdr[:], b))
				return nil
			}
			b = b[n:]
		} else {
			var ok bool
			if b, ok = r.fillHeader(b); !ok {
				return nil
			}
			parseWSHeader(r.hdr[:r.hdrN], &h)
			r.hdrN = 0
		}
		if err := r.check(&h); err != nil {
			return err
		}
		if h.length <= uint64(len(b)) {
			p := b[:h.length]
			b = b[h.length:]
			if h.masked {
				maskBytes(h.mask, 0, p)
			}
			if err := r.frame(h.op, h.fin, p, fn); err != nil {
				return err
			}
			continue
		}
		r.start(&h)
	}
	return nil
}

// wsHeader is a decoded frame header.
type wsHeader struct {
	fin    bool
	rsv    byte
	op     Opcode
	masked bool
	mask   [4]byte
	ext    int // bytes of extended length: 0, 2 or 8
	length uint64
}

// wsHeaderLen returns the length of a header given its second byte.
func wsHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4
	}
	return n
}

// parseWSHeader decodes the header at the start of b into h and returns
// its length, or 0 if b holds only part of it.
func parseWSHeader(b []byte, h *wsHeader) int {
	if len(b) < 2 {
		return 0
	}
	n := wsHeaderLen(b[1])
	if len(b) < n {
		return 0
	}
	h.fin = b[0]&0x80 != 0
	h.rsv = b[0] & 0x70
	h.op = Opcode(b[0] & 0x0f)
	h.masked = b[1]&0x80 != 0
	i := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		h.ext, h.length = 2, uint64(binary.BigEndian.Uint16(b[2:]))
		i += 2
	case 127:
		h.ext, h.length = 8, binary.BigEndian.Uint64(b[2:])
		i += 8
	default:
		h.length = uint64(l)
	}
	if h.masked {
		copy(h.mask[:], b[i:])
	}
	return n
}

// fillHeader moves bytes from b to the incomplete header until it is
// whole, and reports whether it is.
func (r *WSReader) fillHeader(b []byte) ([]byte, bool) {
	for {
		want := 2
		if r.hdrN >= 2 {
			want = wsHeaderLen(r.hdr[1])
		}
		if int(r.hdrN) == want {
			return b, true
		}
		if len(b) == 0 {
			return b, false
		}
		n := copy(r.hdr[r.hdrN:want], b)
		r.hdrN += uint8(n)
		b = b[n:]
	}
}

// check validates a header against RFC 6455 §5 and the reader's state.
func (r *WSReader) check(h *wsHeader) error {
	if h.rsv != 0 {
		return protocolError("reserved bits set")
	}
	switch h.op {
	case OpcodeContinuation:
		if r.msgOp == 0 {
			return protocolError("continuation frame with no message in progress")
		}
	case OpcodeText, OpcodeBinary:
		if r.msgOp != 0 {
			return protocolError("new %v frame while a fragmented message is in progress", h.op)
		}
	case OpcodeClose, OpcodePing, OpcodePong:
		if !h.fin {
			return protocolError("fragmented %v frame", h.op)
		}
		if h.length > MaxControlPayload {
			return protocolError("%v frame of %d bytes", h.op, h.length)
		}
	default:
		return protocolError("unknown opcode %d", byte(h.op))
	}
	if h.masked == r.FromServer {
		if h.masked {
			return protocolError("masked frame from the server")
		}
		return protocolError("unmasked frame from the client")
	}
	switch {
	case h.ext == 8 && h.length>>63 != 0:
		return protocolError("frame length has the top bit set")
	case h.ext == 8 && h.length <= 0xffff, h.ext == 2 && h.length < 126:
		return protocolError("frame length %d not minimally encoded", h.length)
	}
	if !h.op.IsControl() {
		limit := r.MaxMessage
		if limit <= 0 {
			limit = MaxMessageDefault
		}
		if len(r.msg) > limit || h.length > uint64(limit-len(r.msg)) {
			return &WSError{Code: CloseTooBig, Reason: "message too big"}
		}
	}
	return nil
}

// frame handles a frame whose whole payload, unmasked, is p.
func (r *WSReader) frame(op Opcode, fin bool, p []byte, fn func(Opcode, []byte) error) error {
	if op.IsControl() {
		return r.control(op, p, fn)
	}
	if r.msgOp == 0 && fin {
		if op == OpcodeText && !utf8.Valid(p) {
			return errInvalidUTF8()
		}
		return fn(op, p)
	}
	if r.msgOp == 0 {
		r.msgOp = op
	}
	r.msg = append(r.msg, p...)
	return r.progress(fin, fn)
}

// start begins a frame whose payload is not all in hand.
func (r *WSReader) start(h *wsHeader) {
	r.frameOp, r.frameFin = h.op, h.fin
	r.mask, r.maskPos = h.mask, 0
	r.remain = int(h.length)
	if h.op.IsControl() {
		r.ctl = slices.Grow(r.ctl[:0], r.remain)
		return
	}
	if r.msgOp == 0 {
		r.msgOp = h.op
	}
	// Reserve at most a few KiB up front: a peer that announces a large
	// frame and sends it slowly (or never) holds only what it sent.
	r.msg = slices.Grow(r.msg, min(r.remain, reserveMax))
}

// reserveMax bounds what start reserves for a frame's payload before its
// bytes arrive.
const reserveMax = 4 << 10

// payload consumes bytes of a frame begun by start.
func (r *WSReader) payload(b []byte, fn func(Opcode, []byte) error) ([]byte, error) {
	n := min(r.remain, len(b))
	p := b[:n]
	b = b[n:]
	r.remain -= n
	if !r.FromServer {
		r.maskPos = uint8(maskBytes(r.mask, int(r.maskPos), p))
	}
	if r.frameOp.IsControl() {
		r.ctl = append(r.ctl, p...)
		if r.remain > 0 {
			return b, nil
		}
		p, r.ctl = r.ctl, r.ctl[:0]
		return b, r.control(r.frameOp, p, fn)
	}
	r.msg = append(r.msg, p...)
	return b, r.progress(r.remain == 0 && r.frameFin, fn)
}

// progress validates the data message in progress after its payload
// grew, and delivers it if done.
func (r *WSReader) progress(done bool, fn func(Opcode, []byte) error) error {
	if r.msgOp == OpcodeText {
		rest := r.msg[r.valid:]
		if done {
			if !utf8.Valid(rest) {
				return errInvalidUTF8()
			}
		} else {
			n, ok := utf8Prefix(rest)
			if !ok {
				return errInvalidUTF8()
			}
			r.valid += n
		}
	}
	if !done {
		return nil
	}
	op, p := r.msgOp, r.msg
	r.msgOp, r.msg, r.valid = 0, r.msg[:0], 0
	return fn(op, p)
}

func (r *WSReader) control(op Opcode, p []byte, fn func(Opcode, []byte) error) error {
	if op == OpcodeClose {
		if _, err := checkClose(p); err != nil {
			return err
		}
	}
	return fn(op, p)
}

func errInvalidUTF8() error {
	return &WSError{Code: CloseInvalidPayload, Reason: "text message is not UTF-8"}
}

// utf8Prefix reports whether p is valid UTF-8 up to an incomplete
// sequence at its end that more bytes could complete, and returns the
// length of the part before that sequence.
func utf8Prefix(p []byte) (n int, ok bool) {
	n = len(p)
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(p[i]) {
			if !utf8.FullRune(p[i:]) {
				n = i
			}
			break
		}
	}
	return n, utf8.Valid(p[:n])
}
