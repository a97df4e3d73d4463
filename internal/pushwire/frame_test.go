package pushwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// frameFeed feeds chunks to r and returns the payloads it delivered and
// the error that stopped it.
func frameFeed(r *FrameReader, chunks ...[]byte) ([]string, error) {
	var got []string
	for _, c := range chunks {
		err := r.Feed(c, func(p []byte) error {
			got = append(got, string(p))
			return nil
		})
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func lenFrames(payloads ...string) []byte {
	var b []byte
	for _, p := range payloads {
		b = AppendLenFrame(b, []byte(p))
	}
	return b
}

func TestAppendLenFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		payload string
		want    []byte
	}{
		{"", []byte{0, 0, 0, 0}},
		{"hi", []byte{0, 0, 0, 2, 'h', 'i'}},
		{strings.Repeat("x", 258), append([]byte{0, 0, 1, 2}, strings.Repeat("x", 258)...)},
	}
	for _, tt := range tests {
		if got := AppendLenFrame(nil, []byte(tt.payload)); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendLenFrame(%.10q) = % x, want % x", tt.payload, head(got), head(tt.want))
		}
	}
}

func TestFrameReaderSplits(t *testing.T) {
	t.Parallel()
	want := []string{"hello", "", strings.Repeat("y", 300), "x", ""}
	wire := lenFrames(want...)
	for _, sizes := range [][]int{{len(wire)}, {1}, {3}, {4}, {5}, {0, 2, 7}, {100, 1, 250}} {
		r := &FrameReader{}
		got, err := frameFeed(r, splitAt(wire, sizes)...)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Feed(split %v) = %q, %v; want %q", sizes, got, err, want)
		}
		if r.buf != nil || r.hdrN != 0 || r.remain != 0 {
			t.Errorf("Feed(split %v) leaves %d bytes buffered, %d of header, %d to come", sizes, cap(r.buf), r.hdrN, r.remain)
		}
	}
}

func TestFrameReaderTooLarge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		max  int
		wire []byte
		ok   bool
	}{
		{0, lenFrames(strings.Repeat("x", FrameMaxDefault)), true},
		{0, binary.BigEndian.AppendUint32(nil, FrameMaxDefault+1), false},
		{10, lenFrames(strings.Repeat("x", 10)), true},
		{10, lenFrames(strings.Repeat("x", 11)), false},
		{10, []byte{0xff, 0xff, 0xff, 0xff}, false},
		{1 << 40, []byte{0xff, 0xff, 0xff, 0xff}[:3], true},
	}
	for _, tt := range tests {
		for _, sizes := range [][]int{{len(tt.wire)}, {1}} {
			r := &FrameReader{Max: tt.max}
			got, err := frameFeed(r, splitAt(tt.wire, sizes)...)
			if tt.ok != (err == nil) || err != nil && (!errors.Is(err, ErrFrameTooLarge) || len(got) != 0) {
				t.Errorf("Feed(% x…, max %d, split %v) = %d frames, %v; want ok %t", head(tt.wire), tt.max, sizes, len(got), err, tt.ok)
			}
			if err != nil && (r.buf != nil || r.Feed(lenFrames("x"), nil) != err) {
				t.Errorf("after %v the reader holds %d bytes or forgets its error", err, cap(r.buf))
			}
		}
	}
}

func TestFrameReaderReleasesTail(t *testing.T) {
	t.Parallel()
	wire := lenFrames(strings.Repeat("z", 100), "a")
	r := &FrameReader{}
	for i, step := range []struct {
		end  int
		held bool
	}{{2, false}, {50, true}, {104, false}, {106, false}, {len(wire), false}} {
		start := 0
		if i > 0 {
			start = []int{2, 50, 104, 106}[i-1]
		}
		if _, err := frameFeed(r, wire[start:step.end]); err != nil {
			t.Fatal(err)
		}
		if got := r.buf != nil; got != step.held {
			t.Errorf("after %d bytes the reader holds %d bytes, want held %t", step.end, cap(r.buf), step.held)
		}
	}
}

func TestFrameReaderCallbackError(t *testing.T) {
	t.Parallel()
	stop := errors.New("stop")
	r := &FrameReader{}
	n := 0
	err := r.Feed(lenFrames("a", "b"), func([]byte) error { n++; return stop })
	if err != stop || n != 1 || r.Feed(nil, nil) != stop {
		t.Errorf("Feed with failing fn = %v after %d frames; want %v after 1, then again", err, n, stop)
	}
}

func FuzzFrameReader(f *testing.F) {
	f.Add(lenFrames("hello", "", "world"), []byte{1})
	f.Add(lenFrames(strings.Repeat("x", 300), "y"), []byte{3, 0, 200})
	f.Add(lenFrames(`{"op":"connect","id":1,"client":"c1"}`, `{"op":"ping"}`), []byte{7})
	f.Add([]byte{0, 0, 0, 9, 'p', 'a', 'r'}, []byte{2})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, wire, splits []byte) {
		const max = 1 << 10
		whole, wholeErr := frameFeed(&FrameReader{Max: max}, wire)
		sizes := fuzzSizes(splits)
		r := &FrameReader{Max: max}
		split, splitErr := frameFeed(r, splitAt(wire, sizes)...)
		if !slices.Equal(whole, split) || !sameError(wholeErr, splitErr) {
			t.Fatalf("Feed(whole) = %q, %v\nFeed(split %v) = %q, %v", whole, wholeErr, sizes, split, splitErr)
		}
		if r.remain == 0 && r.hdrN == 0 && r.buf != nil {
			t.Fatalf("idle reader holds %d bytes", cap(r.buf))
		}
		if wholeErr != nil {
			if !errors.Is(wholeErr, ErrFrameTooLarge) {
				t.Fatalf("Feed error = %v, want ErrFrameTooLarge", wholeErr)
			}
			return
		}
		again, err := frameFeed(&FrameReader{Max: max}, lenFrames(whole...))
		if err != nil || !slices.Equal(again, whole) {
			t.Fatalf("re-encoded %q decodes as %q, %v", whole, again, err)
		}
		if n := len(lenFrames(whole...)); n > len(wire) || !bytes.Equal(wire[:n], lenFrames(whole...)) {
			t.Fatalf("re-encoded frames are not a prefix of the input")
		}
	})
}

func BenchmarkFrameReader(b *testing.B) {
	var wire []byte
	for range 16 {
		wire = AppendLenFrame(wire, bytes.Repeat([]byte("a"), 128))
	}
	count := func([]byte) error { return nil }
	for _, chunk := range []int{len(wire), 100} {
		name := "whole"
		if chunk != len(wire) {
			name = "chunks-of-100"
		}
		b.Run(name, func(b *testing.B) {
			r := &FrameReader{}
			b.ReportAllocs()
			b.SetBytes(int64(len(wire)))
			for b.Loop() {
				for c := range slices.Chunk(wire, chunk) {
					if err := r.Feed(c, count); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
