package pushwire

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSizes turns the fuzzer's split bytes into chunk sizes (0 to 32);
// none means byte by byte.
func fuzzSizes(splits []byte) []int {
	if len(splits) == 0 {
		return []int{1}
	}
	sizes := make([]int, len(splits))
	for i, s := range splits {
		sizes[i] = int(s % 33)
	}
	if slices.Max(sizes) == 0 {
		sizes[0] = 1
	}
	return sizes
}

// sameError reports whether two readers failed the same way.
func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Error() == b.Error()
}

func FuzzWSReader(f *testing.F) {
	for _, ex := range rfcExamples() {
		f.Add(ex.wire, []byte{3}, ex.fromServer)
	}
	stream, _ := wsStream()
	f.Add(stream, []byte{1, 7, 0, 13}, false)
	f.Add(stream[:len(stream)-3], []byte{20}, false)
	f.Add(cat(
		sframe(OpcodeBinary, false, "a"),
		sframe(OpcodePong, true, "x"),
		sframe(OpcodeContinuation, true, "b"),
		sframe(OpcodeClose, true, closePayload(CloseNormal, "done")),
	), []byte{2, 5}, true)
	f.Add(sframe(OpcodeText, true, strings.Repeat("€", 100)), []byte{9}, true)
	f.Add(cframe(OpcodeText, true, "\xed\xa0\x80"), []byte{}, false)
	f.Add(cframe(OpcodeClose, true, closePayload(1005, "")), []byte{4}, false)
	f.Add([]byte{0x82, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0, 1, 2, 3, 4}, []byte{3}, false)

	f.Fuzz(func(t *testing.T, wire, splits []byte, fromServer bool) {
		const max = 1 << 10
		newReader := func() *WSReader { return &WSReader{FromServer: fromServer, MaxMessage: max} }
		whole, wholeErr := wsFeed(newReader(), bytes.Clone(wire))
		sizes := fuzzSizes(splits)
		r := newReader()
		split, splitErr := wsFeed(r, splitAt(bytes.Clone(wire), sizes)...)
		if !slices.Equal(whole, split) || !sameError(wholeErr, splitErr) {
			t.Fatalf("Feed(whole) = %v, %v\nFeed(split %v) = %v, %v", whole, wholeErr, sizes, split, splitErr)
		}
		if splitErr == nil && r.remain == 0 && r.hdrN == 0 && r.msgOp == 0 && heldBytes(r) != 0 {
			t.Fatalf("idle reader holds %d bytes", heldBytes(r))
		}
		if wholeErr != nil {
			if _, ok := wholeErr.(*WSError); !ok {
				t.Fatalf("Feed error %T %v is not a *WSError", wholeErr, wholeErr)
			}
			return
		}

		// Re-encode what was decoded, fragmenting data messages, and
		// decode that again.
		var mask *[4]byte
		if !fromServer {
			mask = &[4]byte{byte(len(wire)), 1, 2, 3}
		}
		var again []byte
		for _, m := range whole {
			p := []byte(m.payload)
			if m.op == OpcodeText && !utf8.Valid(p) {
				t.Fatalf("text message %q is not UTF-8", p)
			}
			if m.op.IsControl() || len(p) < 2 {
				again = AppendFrame(again, m.op, p, true, mask)
				continue
			}
			again = AppendFrame(again, m.op, p[:len(p)/2], false, mask)
			again = AppendFrame(again, OpcodeContinuation, p[len(p)/2:], true, mask)
		}
		redecoded, err := wsFeed(newReader(), again)
		if err != nil || !slices.Equal(redecoded, whole) {
			t.Fatalf("re-encoded %v decodes as %v, %v", whole, redecoded, err)
		}
	})
}

func FuzzParseClose(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x03})
	f.Add([]byte{0x03, 0xe8})
	f.Add([]byte(closePayload(CloseGoingAway, "server restart")))
	f.Add([]byte(closePayload(4000, strings.Repeat("é", 80))))
	f.Add([]byte(closePayload(1005, "")))
	f.Add([]byte(closePayload(1000, "\xff")))
	f.Fuzz(func(t *testing.T, payload []byte) {
		code, reason, err := ParseClose(payload)
		if err != nil {
			if e, ok := err.(*WSError); !ok || e.Code != CloseProtocolError {
				t.Fatalf("ParseClose(%q) error = %#v, want a *WSError with code 1002", payload, err)
			}
			return
		}
		if !utf8.ValidString(reason) {
			t.Fatalf("ParseClose(%q) reason %q is not UTF-8", payload, reason)
		}
		frame := AppendClose(nil, code, reason, nil)
		msgs, err := wsFeed(&WSReader{FromServer: true}, frame)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("AppendClose(%d, %q) = % x, reads as %v, %v", code, reason, frame, msgs, err)
		}
		code2, reason2, err := ParseClose([]byte(msgs[0].payload))
		if err != nil || code2 != code || !strings.HasPrefix(reason, reason2) ||
			len(reason) <= MaxControlPayload-2 && reason2 != reason {
			t.Fatalf("ParseClose(AppendClose(%d, %q)) = %d, %q, %v", code, reason, code2, reason2, err)
		}
	})
}
