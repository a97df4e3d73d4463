package pushwire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// FrameHeaderLen is the length of a length-prefixed frame's header: the
// payload's length as a big-endian uint32. The payload follows.
const FrameHeaderLen = 4

// FrameMaxDefault is the default of [FrameReader.Max].
const FrameMaxDefault = 64 << 10

// ErrFrameTooLarge reports a length-prefixed frame over [FrameReader.Max].
// It is wrapped with the announced size.
var ErrFrameTooLarge = errors.New("pushwire: frame too large")

// FrameReader splits a byte stream into length-prefixed frames (see
// [AppendLenFrame]). Its zero value is ready to use. Like [WSReader], it
// holds a buffer only while a frame is incomplete.
type FrameReader struct {
	// Max is the largest payload accepted; a larger one is an error
	// wrapping ErrFrameTooLarge, reported from the header before the
	// payload is buffered. Defaults to FrameMaxDefault.
	Max int

	hdr    [FrameHeaderLen]byte // the incomplete header of the next frame
	hdrN   uint8                // bytes of it in hdr
	remain int                  // payload bytes of the current frame still to come
	buf    []byte               // its payload so far, while remain > 0
	err    error                // the error that stopped the reader
}

// Feed consumes b, which may hold any number of whole or partial frames,
// and calls fn with the payload of each complete frame. The payload may
// alias b or the reader's buffer and is valid only during fn.
//
// An error from fn stops Feed and is returned. After it or a frame over
// Max, the reader must not be used again: later calls return the same
// error.
func (r *FrameReader) Feed(b []byte, fn func(payload []byte) error) error {
	if r.err != nil {
		return r.err
	}
	if err := r.feed(b, fn); err != nil {
		r.err = err
		r.buf = nil
		return err
	}
	if r.remain == 0 && r.hdrN == 0 {
		r.buf = nil // kept only while a frame is incomplete
	}
	return nil
}

func (r *FrameReader) feed(b []byte, fn func([]byte) error) error {
	for len(b) > 0 {
		if r.remain > 0 {
			n := min(r.remain, len(b))
			r.buf = append(r.buf, b[:n]...)
			b = b[n:]
			if r.remain -= n; r.remain > 0 {
				return nil
			}
			p := r.buf
			r.buf = r.buf[:0]
			if err := fn(p); err != nil {
				return err
			}
			continue
		}
		var size uint32
		if r.hdrN == 0 && len(b) >= FrameHeaderLen {
			size = binary.BigEndian.Uint32(b)
			b = b[FrameHeaderLen:]
		} else {
			n := copy(r.hdr[r.hdrN:], b)
			b = b[n:]
			if r.hdrN += uint8(n); r.hdrN < FrameHeaderLen {
				return nil
			}
			r.hdrN = 0
			size = binary.BigEndian.Uint32(r.hdr[:])
		}
		limit := r.Max
		if limit <= 0 {
			limit = FrameMaxDefault
		}
		if uint64(size) > uint64(limit) {
			return fmt.Errorf("%w: %d bytes, max %d", ErrFrameTooLarge, size, limit)
		}
		if int(size) <= len(b) {
			p := b[:size]
			b = b[size:]
			if err := fn(p); err != nil {
				return err
			}
			continue
		}
		r.remain = int(size)
		r.buf = slices.Grow(r.buf[:0], min(int(size), reserveMax)) // grows as the bytes come
	}
	return nil
}

// AppendLenFrame appends payload to dst as a length-prefixed frame. The
// payload must be shorter than 4 GiB.
func AppendLenFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}
