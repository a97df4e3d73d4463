package pushwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// testMask is the masking key of test frames from clients.
var testMask = [4]byte{0xa1, 0x5c, 0x00, 0x7e}

// cframe is a frame from a client: masked with testMask.
func cframe(op Opcode, fin bool, p string) []byte {
	return AppendFrame(nil, op, []byte(p), fin, &testMask)
}

// sframe is a frame from a server: unmasked.
func sframe(op Opcode, fin bool, p string) []byte {
	return AppendFrame(nil, op, []byte(p), fin, nil)
}

func closePayload(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

// heldBytes is the memory a reader holds between calls to Feed.
func heldBytes(r *WSReader) int { return cap(r.msg) + cap(r.ctl) }

// wsStream is a client's stream with one of everything.
func wsStream() ([]byte, []wsMsg) {
	long := strings.Repeat("0123456789", 30)
	wire := cat(
		cframe(OpcodeText, true, "hello"),
		cframe(OpcodeBinary, true, ""),
		cframe(OpcodeBinary, true, long),
		cframe(OpcodeText, false, "frag"),
		cframe(OpcodePing, true, "p1"),
		cframe(OpcodeContinuation, false, ""),
		cframe(OpcodeContinuation, false, "ment\xe2\x82"), // "€" split across fragments
		cframe(OpcodePong, true, ""),
		cframe(OpcodeContinuation, true, "\xac"+long),
		cframe(OpcodeText, true, "héllo wörld"),
		cframe(OpcodeClose, true, closePayload(CloseGoingAway, "bye")),
	)
	return wire, []wsMsg{
		{OpcodeText, "hello"},
		{OpcodeBinary, ""},
		{OpcodeBinary, long},
		{OpcodePing, "p1"},
		{OpcodePong, ""},
		{OpcodeText, "fragment€" + long},
		{OpcodeText, "héllo wörld"},
		{OpcodeClose, closePayload(CloseGoingAway, "bye")},
	}
}

// splitAt cuts b into chunks of the given sizes, cycling through them; a
// zero size makes an empty chunk.
func splitAt(b []byte, sizes []int) [][]byte {
	var chunks [][]byte
	for i := 0; len(b) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(b))
		chunks = append(chunks, b[:n])
		b = b[n:]
	}
	return chunks
}

func TestWSReaderSplits(t *testing.T) {
	t.Parallel()
	wire, want := wsStream()
	rng := rand.New(rand.NewPCG(1, 2))
	splits := map[string][]int{
		"whole":        {len(wire)},
		"byte by byte": {1},
		"two":          {2},
		"with empties": {0, 3, 0, 1},
		"headers":      {5, 9, 13},
	}
	for i := range 20 {
		sizes := make([]int, 1+rng.IntN(8))
		for j := range sizes {
			sizes[j] = rng.IntN(40)
		}
		sizes[0]++ // progress
		splits["random "+string(rune('a'+i))] = sizes
	}
	for name, sizes := range splits {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := &WSReader{}
			got, err := wsFeed(r, splitAt(bytes.Clone(wire), sizes)...)
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("Feed(split %v) = %v, %v; want %v", sizes, got, err, want)
			}
			if n := heldBytes(r); n != 0 || r.hdrN != 0 || r.remain != 0 {
				t.Errorf("after the stream the reader holds %d bytes, %d of header, %d to come; want none", n, r.hdrN, r.remain)
			}
		})
	}
}

func TestWSReaderClientSide(t *testing.T) {
	t.Parallel()
	wire := cat(
		sframe(OpcodeText, false, "a"),
		sframe(OpcodePing, true, "x"),
		sframe(OpcodeContinuation, true, "b"),
		sframe(OpcodeBinary, true, strings.Repeat("z", 200)),
	)
	want := []wsMsg{{OpcodePing, "x"}, {OpcodeText, "ab"}, {OpcodeBinary, strings.Repeat("z", 200)}}
	for _, sizes := range [][]int{{len(wire)}, {1}, {7}} {
		got, err := wsFeed(&WSReader{FromServer: true}, splitAt(wire, sizes)...)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Feed(split %v) = %v, %v; want %v", sizes, got, err, want)
		}
	}
}

func TestWSReaderViolations(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 126)
	// masked prefixes a masking key to the bytes after a hand-made header.
	masked := func(hdr ...byte) []byte {
		hdr[1] |= 0x80
		return append(hdr, testMask[:]...)
	}
	tests := []struct {
		name       string
		fromServer bool
		max        int
		wire       []byte
		code       uint16
	}{
		{"RSV1", false, 0, masked(0xc1, 0), CloseProtocolError},
		{"RSV2", false, 0, masked(0xa1, 0), CloseProtocolError},
		{"RSV3", false, 0, masked(0x91, 0), CloseProtocolError},
		{"opcode 3", false, 0, masked(0x83, 0), CloseProtocolError},
		{"opcode 7", false, 0, masked(0x87, 0), CloseProtocolError},
		{"opcode 11", false, 0, masked(0x8b, 0), CloseProtocolError},
		{"opcode 15", false, 0, masked(0x8f, 0), CloseProtocolError},
		{"unmasked from client", false, 0, sframe(OpcodeText, true, "hi"), CloseProtocolError},
		{"masked from server", true, 0, cframe(OpcodeText, true, "hi"), CloseProtocolError},
		{"ping of 126 bytes", false, 0, cframe(OpcodePing, true, long), CloseProtocolError},
		{"close of 126 bytes", false, 0, cframe(OpcodeClose, true, closePayload(1000, long[2:])), CloseProtocolError},
		{"pong with 64-bit length", false, 0, masked(0x8a, 127, 0, 0, 0, 0, 0, 1, 0, 0), CloseProtocolError},
		{"fragmented ping", false, 0, cframe(OpcodePing, false, "x"), CloseProtocolError},
		{"fragmented close", false, 0, cframe(OpcodeClose, false, ""), CloseProtocolError},
		{"continuation first", false, 0, cframe(OpcodeContinuation, true, "x"), CloseProtocolError},
		{"continuation after whole message", false, 0, cat(cframe(OpcodeText, true, "a"), cframe(OpcodeContinuation, true, "b")), CloseProtocolError},
		{"text during fragmented message", false, 0, cat(cframe(OpcodeText, false, "a"), cframe(OpcodeText, true, "b")), CloseProtocolError},
		{"binary during fragmented message", false, 0, cat(cframe(OpcodeBinary, false, "a"), cframe(OpcodeBinary, false, "b")), CloseProtocolError},
		{"64-bit length top bit", false, 0, masked(0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1), CloseProtocolError},
		{"16-bit length of 125", false, 0, masked(0x82, 126, 0, 125), CloseProtocolError},
		{"16-bit length of 0", false, 0, masked(0x82, 126, 0, 0), CloseProtocolError},
		{"64-bit length of 126", false, 0, masked(0x82, 127, 0, 0, 0, 0, 0, 0, 0, 126), CloseProtocolError},
		{"64-bit length of 65535", false, 0, masked(0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff), CloseProtocolError},
		{"too big", false, 16, cframe(OpcodeBinary, true, strings.Repeat("x", 17)), CloseTooBig},
		{"too big by default", false, 0, masked(0x82, 127, 0, 0, 0, 0, 0, 1, 0, 1), CloseTooBig},
		{"too big fragmented", false, 16, cat(cframe(OpcodeText, false, strings.Repeat("x", 10)), cframe(OpcodeContinuation, true, strings.Repeat("x", 7))), CloseTooBig},
		{"2 GiB header only", false, 0, masked(0x82, 127, 0, 0, 0, 0, 0x80, 0, 0, 0), CloseTooBig},
		{"2 GiB header only, client", true, 0, []byte{0x82, 127, 0, 0, 0, 0, 0x80, 0, 0, 0}, CloseTooBig},
		{"text not UTF-8", false, 0, cframe(OpcodeText, true, "ab\xffcd"), CloseInvalidPayload},
		{"text surrogate", false, 0, cframe(OpcodeText, true, "\xed\xa0\x80"), CloseInvalidPayload},
		{"text truncated rune", false, 0, cframe(OpcodeText, true, "\xe2\x82"), CloseInvalidPayload},
		{"fragments end in truncated rune", false, 0, cat(cframe(OpcodeText, false, "a\xe2"), cframe(OpcodeContinuation, true, "\x82")), CloseInvalidPayload},
		{"fragments not UTF-8", false, 0, cat(cframe(OpcodeText, false, "a\xe2"), cframe(OpcodeContinuation, true, "b\xac")), CloseInvalidPayload},
		{"first fragment not UTF-8, fail fast", false, 0, cframe(OpcodeText, false, "\xff"), CloseInvalidPayload},
		{"close of 1 byte", false, 0, cframe(OpcodeClose, true, "\x03"), CloseProtocolError},
		{"close code 999", false, 0, cframe(OpcodeClose, true, closePayload(999, "")), CloseProtocolError},
		{"close code 1004", false, 0, cframe(OpcodeClose, true, closePayload(1004, "")), CloseProtocolError},
		{"close code 1005", false, 0, cframe(OpcodeClose, true, closePayload(1005, "")), CloseProtocolError},
		{"close code 1006", false, 0, cframe(OpcodeClose, true, closePayload(1006, "")), CloseProtocolError},
		{"close code 1015", false, 0, cframe(OpcodeClose, true, closePayload(1015, "")), CloseProtocolError},
		{"close code 1016", false, 0, cframe(OpcodeClose, true, closePayload(1016, "")), CloseProtocolError},
		{"close code 2999", false, 0, cframe(OpcodeClose, true, closePayload(2999, "")), CloseProtocolError},
		{"close code 5000", false, 0, cframe(OpcodeClose, true, closePayload(5000, "")), CloseProtocolError},
		{"close reason not UTF-8", false, 0, cframe(OpcodeClose, true, closePayload(1000, "\xc3")), CloseProtocolError},
		{"close from server, code 1005", true, 0, sframe(OpcodeClose, true, closePayload(1005, "")), CloseProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, sizes := range [][]int{{len(tt.wire)}, {1}} {
				r := &WSReader{FromServer: tt.fromServer, MaxMessage: tt.max}
				msgs, err := wsFeed(r, splitAt(bytes.Clone(tt.wire), sizes)...)
				var e *WSError
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("Feed(% x, split %v) = %v, %v; want close code %d", tt.wire, sizes, msgs, err, tt.code)
				}
				if again := r.Feed(cframe(OpcodeText, true, "ok"), nil); again != err {
					t.Errorf("Feed after %v = %v, want the same error", err, again)
				}
				if n := heldBytes(r); n != 0 {
					t.Errorf("after %v the reader holds %d bytes", err, n)
				}
			}
		})
	}
}

func TestWSReaderValidCloseCodes(t *testing.T) {
	t.Parallel()
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		wire := cframe(OpcodeClose, true, closePayload(code, "ok"))
		msgs, err := wsFeed(&WSReader{}, wire)
		if err != nil || len(msgs) != 1 {
			t.Errorf("Feed(close %d) = %v, %v; want the close frame", code, msgs, err)
		}
	}
}

func TestWSReaderFailFast(t *testing.T) {
	t.Parallel()
	// A partial text frame whose first bytes are already invalid fails
	// before the rest arrives.
	frame := cframe(OpcodeText, true, "ok\xc0 and then much more")
	msgs, err := wsFeed(&WSReader{}, frame[:10])
	if e, ok := err.(*WSError); !ok || e.Code != CloseInvalidPayload {
		t.Errorf("Feed(partial invalid text) = %v, %v; want close code 1007", msgs, err)
	}
	// A rune cut by the chunk boundary is not an error.
	frame = cframe(OpcodeText, true, "€€€")
	msgs, err = wsFeed(&WSReader{}, frame[:8], frame[8:9], frame[9:])
	if err != nil || !slices.Equal(msgs, []wsMsg{{OpcodeText, "€€€"}}) {
		t.Errorf("Feed(text split inside runes) = %v, %v", msgs, err)
	}
}

func TestWSReaderTooBigWithoutBuffering(t *testing.T) {
	t.Parallel()
	// A frame at the limit is buffered once, with its announced size; one
	// byte over fails on the header alone.
	r := &WSReader{MaxMessage: 1000}
	frame := cframe(OpcodeBinary, true, strings.Repeat("x", 1000))
	if _, err := wsFeed(r, frame[:20]); err != nil {
		t.Fatalf("Feed(partial frame at the limit) = %v", err)
	}
	if n := heldBytes(r); n < 1000 || n > 1100 {
		t.Errorf("partial frame of 1000 bytes holds %d bytes", n)
	}
	r = &WSReader{MaxMessage: 1000}
	frame = cframe(OpcodeBinary, true, strings.Repeat("x", 1001))
	if _, err := wsFeed(r, frame[:8]); err == nil || heldBytes(r) != 0 {
		t.Errorf("Feed(header of a frame over the limit) = %v, holding %d bytes; want an error and nothing held", err, heldBytes(r))
	}
}

func TestWSReaderReleasesTail(t *testing.T) {
	t.Parallel()
	frame := cframe(OpcodeBinary, true, strings.Repeat("x", 300))
	r := &WSReader{}
	for i, step := range []struct {
		chunk []byte
		held  bool
	}{
		{frame[:3], false}, // part of the header: kept inline
		{frame[3:50], true},
		{frame[50:299], true},
		{frame[299:], false},
		{cframe(OpcodeText, false, "a"), true}, // a fragmented message in progress
		{cframe(OpcodePing, true, "p")[:4], true},
		{cframe(OpcodePing, true, "p")[4:], true},
		{cframe(OpcodeContinuation, true, "b"), false},
	} {
		if _, err := wsFeed(r, bytes.Clone(step.chunk)); err != nil {
			t.Fatalf("step %d: Feed = %v", i, err)
		}
		if got := heldBytes(r) > 0; got != step.held {
			t.Errorf("step %d: reader holds %d bytes, want held %t", i, heldBytes(r), step.held)
		}
	}
	if r.msg != nil || r.ctl != nil {
		t.Errorf("idle reader keeps msg %v, ctl %v; want nil", r.msg, r.ctl)
	}
}

func TestWSReaderCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	wire := cat(cframe(OpcodeText, true, "a"), cframe(OpcodeText, true, "b"))
	r := &WSReader{}
	var got []string
	err := r.Feed(wire, func(op Opcode, p []byte) error {
		got = append(got, string(p))
		return stop
	})
	if err != stop || !slices.Equal(got, []string{"a"}) {
		t.Errorf("Feed with failing fn = %v after %q; want %v after [a]", err, got, stop)
	}
	if err := r.Feed(nil, nil); err != stop {
		t.Errorf("Feed after fn failed = %v, want %v", err, stop)
	}
}

func BenchmarkWSReader(b *testing.B) {
	const frames, size = 16, 128
	payload := bytes.Repeat([]byte("a"), size)
	var client, server []byte
	for range frames {
		client = AppendFrame(client, OpcodeBinary, payload, true, &testMask)
		server = AppendFrame(server, OpcodeText, payload, true, nil)
	}
	var n int
	count := func(op Opcode, p []byte) error { n++; return nil }
	run := func(b *testing.B, r *WSReader, wire []byte, chunk int) {
		n = 0
		b.ReportAllocs()
		b.SetBytes(int64(len(wire)))
		for b.Loop() {
			// Masked frames are unmasked in place, so each pass flips them;
			// a binary payload does not mind.
			for c := range slices.Chunk(wire, chunk) {
				if err := r.Feed(c, count); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("server/whole", func(b *testing.B) { run(b, &WSReader{}, client, len(client)) })
	b.Run("client/whole", func(b *testing.B) { run(b, &WSReader{FromServer: true}, server, len(server)) })
	b.Run("server/chunks-of-100", func(b *testing.B) { run(b, &WSReader{}, client, 100) })
}

// TestReadersReserveLittle: a peer that announces a large frame and sends
// a few bytes of it makes the reader hold a few KiB, not the frame.
func TestReadersReserveLittle(t *testing.T) {
	t.Parallel()
	ws := &WSReader{}
	frame := cframe(OpcodeBinary, true, strings.Repeat("x", 60<<10))
	if _, err := wsFeed(ws, bytes.Clone(frame[:20])); err != nil {
		t.Fatal(err)
	}
	if n := heldBytes(ws); n > reserveMax+MaxControlPayload {
		t.Errorf("WSReader holds %d bytes after 20 of a 60 KiB frame, want at most %d", n, reserveMax)
	}
	fr := &FrameReader{}
	lf := AppendLenFrame(nil, bytes.Repeat([]byte("y"), 60<<10))
	if err := fr.Feed(lf[:20], func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := cap(fr.buf); n > reserveMax {
		t.Errorf("FrameReader holds %d bytes after 20 of a 60 KiB frame, want at most %d", n, reserveMax)
	}
}
