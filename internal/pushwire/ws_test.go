package pushwire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// wsMsg is a message as fn received it.
type wsMsg struct {
	op      Opcode
	payload string
}

func (m wsMsg) String() string { return fmt.Sprintf("%v %q", m.op, m.payload) }

// wsFeed feeds chunks to r and returns the messages it delivered and the
// error that stopped it.
func wsFeed(r *WSReader, chunks ...[]byte) ([]wsMsg, error) {
	var msgs []wsMsg
	for _, c := range chunks {
		err := r.Feed(c, func(op Opcode, p []byte) error {
			msgs = append(msgs, wsMsg{op, string(p)})
			return nil
		})
		if err != nil {
			return msgs, err
		}
	}
	return msgs, nil
}

// rfcMask is the masking key of the examples in RFC 6455 §5.7.
var rfcMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

func cat(parts ...[]byte) []byte { return slices.Concat(parts...) }

// rfcExamples are the frames of RFC 6455 §5.7, byte for byte.
func rfcExamples() []struct {
	name       string
	fromServer bool
	wire       []byte
	want       []wsMsg
	encode     func() []byte
} {
	b256 := bytes.Repeat([]byte{0xa5}, 256)
	b64k := bytes.Repeat([]byte{0x5a}, 65536)
	return []struct {
		name       string
		fromServer bool
		wire       []byte
		want       []wsMsg
		encode     func() []byte
	}{{
		name:       "unmasked text",
		fromServer: true,
		wire:       []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
		want:       []wsMsg{{OpcodeText, "Hello"}},
		encode:     func() []byte { return AppendFrame(nil, OpcodeText, []byte("Hello"), true, nil) },
	}, {
		name: "masked text",
		wire: []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		want: []wsMsg{{OpcodeText, "Hello"}},
		encode: func() []byte {
			return AppendFrame(nil, OpcodeText, []byte("Hello"), true, &rfcMask)
		},
	}, {
		name:       "fragmented unmasked text",
		fromServer: true,
		wire:       []byte{0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f},
		want:       []wsMsg{{OpcodeText, "Hello"}},
		encode: func() []byte {
			b := AppendFrame(nil, OpcodeText, []byte("Hel"), false, nil)
			return AppendFrame(b, OpcodeContinuation, []byte("lo"), true, nil)
		},
	}, {
		name:       "unmasked ping",
		fromServer: true,
		wire:       []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
		want:       []wsMsg{{OpcodePing, "Hello"}},
		encode:     func() []byte { return AppendFrame(nil, OpcodePing, []byte("Hello"), true, nil) },
	}, {
		name: "masked ping",
		wire: []byte{0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		want: []wsMsg{{OpcodePing, "Hello"}},
		encode: func() []byte {
			return AppendFrame(nil, OpcodePing, []byte("Hello"), true, &rfcMask)
		},
	}, {
		name: "masked pong",
		wire: []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
		want: []wsMsg{{OpcodePong, "Hello"}},
		encode: func() []byte {
			return AppendFrame(nil, OpcodePong, []byte("Hello"), true, &rfcMask)
		},
	}, {
		name:       "256 bytes binary, 16-bit length",
		fromServer: true,
		wire:       cat([]byte{0x82, 0x7e, 0x01, 0x00}, b256),
		want:       []wsMsg{{OpcodeBinary, string(b256)}},
		encode:     func() []byte { return AppendFrame(nil, OpcodeBinary, b256, true, nil) },
	}, {
		name:       "64 KiB binary, 64-bit length",
		fromServer: true,
		wire:       cat([]byte{0x82, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, b64k),
		want:       []wsMsg{{OpcodeBinary, string(b64k)}},
		encode:     func() []byte { return AppendFrame(nil, OpcodeBinary, b64k, true, nil) },
	}}
}

func TestRFCExamples(t *testing.T) {
	for _, tt := range rfcExamples() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.encode(); !bytes.Equal(got, tt.wire) {
				t.Errorf("encoded = % x…, want % x…", head(got), head(tt.wire))
			}
			r := &WSReader{FromServer: tt.fromServer}
			got, err := wsFeed(r, bytes.Clone(tt.wire))
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Feed(% x…) = %.40v, %v; want %.40v", head(tt.wire), got, err, tt.want)
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func TestParseClose(t *testing.T) {
	t.Parallel()
	code := func(c uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, c), reason...)
	}
	tests := []struct {
		payload    []byte
		wantCode   uint16
		wantReason string
		wantErr    bool
	}{
		{nil, CloseNoStatus, "", false},
		{code(1000, ""), CloseNormal, "", false},
		{code(1001, "bye"), CloseGoingAway, "bye", false},
		{code(1003, ""), CloseUnsupported, "", false},
		{code(1007, ""), CloseInvalidPayload, "", false},
		{code(1014, ""), 1014, "", false},
		{code(3000, "app"), 3000, "app", false},
		{code(4999, "héllo"), 4999, "héllo", false},
		{[]byte{0x03}, 0, "", true},
		{code(0, ""), 0, "", true},
		{code(999, ""), 0, "", true},
		{code(1004, ""), 0, "", true},
		{code(1005, ""), 0, "", true},
		{code(1006, ""), 0, "", true},
		{code(1015, ""), 0, "", true},
		{code(1016, ""), 0, "", true},
		{code(2999, ""), 0, "", true},
		{code(5000, ""), 0, "", true},
		{code(65535, ""), 0, "", true},
		{code(1000, "\xff"), 0, "", true},
		{code(1000, "\xed\xa0\x80"), 0, "", true}, // a surrogate
	}
	for _, tt := range tests {
		c, reason, err := ParseClose(tt.payload)
		if c != tt.wantCode || reason != tt.wantReason || (err != nil) != tt.wantErr {
			t.Errorf("ParseClose(%q) = %d, %q, %v; want %d, %q, error %t", tt.payload, c, reason, err, tt.wantCode, tt.wantReason, tt.wantErr)
		}
		if e, ok := err.(*WSError); err != nil && (!ok || e.Code != CloseProtocolError) {
			t.Errorf("ParseClose(%q) error = %#v, want a *WSError with code 1002", tt.payload, err)
		}
	}
}

func TestAppendClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code       uint16
		reason     string
		wantCode   uint16
		wantReason string
	}{
		{CloseNormal, "", CloseNormal, ""},
		{CloseGoingAway, "restart", CloseGoingAway, "restart"},
		{CloseNoStatus, "ignored", CloseNoStatus, ""},
		{0, "", CloseNoStatus, ""},
		{ClosePolicy, strings.Repeat("a", 123), ClosePolicy, strings.Repeat("a", 123)},
		{ClosePolicy, strings.Repeat("a", 124), ClosePolicy, strings.Repeat("a", 123)},
		{ClosePolicy, strings.Repeat("é", 100), ClosePolicy, strings.Repeat("é", 61)},
		{ClosePolicy, "a" + strings.Repeat("€", 50), ClosePolicy, "a" + strings.Repeat("€", 40)},
		{CloseInternal, "bad\xffbyte", CloseInternal, "bad\uFFFDbyte"},
	}
	for _, tt := range tests {
		for _, mask := range []*[4]byte{nil, &rfcMask} {
			frame := AppendClose([]byte("prefix"), tt.code, tt.reason, mask)
			if !bytes.HasPrefix(frame, []byte("prefix")) {
				t.Fatalf("AppendClose(%d, %q) lost dst", tt.code, tt.reason)
			}
			r := &WSReader{FromServer: mask == nil}
			msgs, err := wsFeed(r, frame[len("prefix"):])
			if err != nil || len(msgs) != 1 || msgs[0].op != OpcodeClose {
				t.Fatalf("AppendClose(%d, %q) = % x, reads as %v, %v", tt.code, tt.reason, frame, msgs, err)
			}
			code, reason, err := ParseClose([]byte(msgs[0].payload))
			if code != tt.wantCode || reason != tt.wantReason || err != nil {
				t.Errorf("AppendClose(%d, %q) carries %d, %q, %v; want %d, %q", tt.code, tt.reason, code, reason, err, tt.wantCode, tt.wantReason)
			}
			if !utf8.ValidString(reason) || len(msgs[0].payload) > MaxControlPayload {
				t.Errorf("AppendClose(%d, %q) payload %q is not valid", tt.code, tt.reason, msgs[0].payload)
			}
		}
	}
}

func TestMaskBytes(t *testing.T) {
	t.Parallel()
	key := [4]byte{1, 2, 3, 0xff}
	for n := range 40 {
		for pos := range 4 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(pos+i)&3]
			}
			next := maskBytes(key, pos, b)
			if !bytes.Equal(b, want) || next != (pos+n)&3 {
				t.Errorf("maskBytes(%v, %d, %d bytes) = % x, %d; want % x, %d", key, pos, n, b, next, want, (pos+n)&3)
			}
		}
	}
}

func TestAppendFrameLengths(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000} {
		for _, mask := range []*[4]byte{nil, &rfcMask} {
			p := bytes.Repeat([]byte{'x'}, n)
			frame := AppendFrame(nil, OpcodeBinary, p, true, mask)
			var h wsHeader
			hl := parseWSHeader(frame, &h)
			if hl == 0 || h.length != uint64(n) || h.masked != (mask != nil) || len(frame) != hl+n {
				t.Errorf("AppendFrame(%d bytes, mask %t) header = %+v, length %d", n, mask != nil, h, len(frame))
			}
			msgs, err := wsFeed(&WSReader{FromServer: mask == nil, MaxMessage: 1 << 20}, frame)
			if err != nil || len(msgs) != 1 || msgs[0].payload != string(p) {
				t.Errorf("AppendFrame(%d bytes, mask %t) reads back as %d messages, %v", n, mask != nil, len(msgs), err)
			}
		}
	}
}
