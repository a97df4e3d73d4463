package msgpack

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// validValues are complete values that every truncation must break.
func validValues(t testing.TB) [][]byte {
	vs := [][]byte{
		mustAppend(t, []any{map[string]any{"message_id": []byte(mid), "v": 3}, "echo", []any{[]byte("0123456789abcdef"), 2.5, float32(1), -70000, uint64(1 << 63)}}),
		mustAppend(t, map[any]any{int64(1): []any{nil, true, Ext{1, []byte("abc")}, Ext{2, []byte("12345678")}}}),
		AppendString(nil, string(make([]byte, 300))),
		AppendBytes(nil, make([]byte, 70000)),
		append(AppendArrayHeader(nil, 20), make([]byte, 20)...),
	}
	for _, g := range goldenVectors {
		vs = append(vs, unhex(t, g.hex))
	}
	return vs
}

func TestTruncatedInput(t *testing.T) {
	type header struct {
		MessageID []byte `msgpack:"message_id"`
		V         int    `msgpack:"v"`
	}
	decoders := map[string]func([]byte) error{
		"Skip":    func(b []byte) error { _, err := Skip(b); return err },
		"ReadAny": func(b []byte) error { _, _, err := ReadAny(b); return err },
		"Unmarshal any": func(b []byte) error {
			var v any
			_, err := Unmarshal(b, &v)
			return err
		},
		"Unmarshal []any": func(b []byte) error {
			var v []any
			_, err := Unmarshal(b, &v)
			return err
		},
		"Unmarshal raw": func(b []byte) error {
			var v Raw
			_, err := Unmarshal(b, &v)
			return err
		},
	}
	for _, full := range validValues(t) {
		for i := range len(full) {
			cut := full[:i]
			for name, decode := range decoders {
				if err := decode(cut); err == nil {
					t.Fatalf("%s(%x truncated to %d bytes) succeeded", name, full[:min(len(full), 16)], i)
				}
			}
			// A struct target may reject a value by type before noticing
			// the cut; it must still fail.
			var h header
			if _, err := Unmarshal(cut, &h); err == nil {
				t.Fatalf("Unmarshal(%x truncated to %d) into struct succeeded", full[:min(len(full), 16)], i)
			}
		}
	}
}

func TestHugeLengthsFailFast(t *testing.T) {
	inputs := []string{
		"dbffffffff61",       // str32 of 4 GiB
		"c6ffffffff00",       // bin32
		"c9ffffffff0100",     // ext32
		"ddffffffff0000",     // array32 of 2^32-1 elements
		"dfffffffff0000",     // map32
		"dc0100" + "00",      // array16 of 256 elements, one present
		"de8000" + "0000",    // map16 of 32768 pairs
		"91ddffffffff00",     // nested
		"81a161ddffffffff00", // in a map value
	}
	for _, in := range inputs {
		b := unhex(t, in)
		start := time.Now()
		var v []map[string][]int
		var s struct{ A []int }
		for _, err := range []error{
			second(Skip(b)), third(ReadAny(b)), second(Unmarshal(b, &v)), second(Unmarshal(b, &s)),
		} {
			if !errors.Is(err, ErrShortBytes) && !isTypeError(err) {
				t.Errorf("decoding %s: %v, want ErrShortBytes or a type error", in, err)
			}
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("decoding %s took %v", in, d)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

func isTypeError(err error) bool {
	var te *TypeError
	return errors.As(err, &te)
}

func TestReservedByte(t *testing.T) {
	for _, in := range []string{"c1", "91c1", "81a161c1", "81c101"} {
		b := unhex(t, in)
		if _, err := Skip(b); !errors.Is(err, errInvalidByte) {
			t.Errorf("Skip(%s) = %v, want %v", in, err, errInvalidByte)
		}
		if _, _, err := ReadAny(b); !errors.Is(err, errInvalidByte) {
			t.Errorf("ReadAny(%s) = %v, want %v", in, err, errInvalidByte)
		}
		if Valid(b) {
			t.Errorf("Valid(%s) = true", in)
		}
	}
	if NextType([]byte{0xc1}) != InvalidType {
		t.Error("NextType(c1) != InvalidType")
	}
}

func TestDepthBombIsFast(t *testing.T) {
	bombs := map[string][]byte{
		"arrays":     bytes.Repeat([]byte{0x91}, 10000),
		"maps":       bytes.Repeat([]byte{0x81, 0xa0}, 10000),
		"map keys":   bytes.Repeat([]byte{0x81}, 10000),
		"wide array": bytes.Repeat([]byte{0x9f}, 10000),
	}
	for name, b := range bombs {
		start := time.Now()
		var typed any
		for _, err := range []error{second(Skip(b)), third(ReadAny(b)), second(Unmarshal(b, &typed))} {
			if !errors.Is(err, ErrTooDeep) && !isTypeError(err) {
				t.Errorf("%s: %v, want ErrTooDeep", name, err)
			}
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("%s took %v", name, d)
		}
	}
}

func TestValidRejectsEmpty(t *testing.T) {
	if Valid(nil) {
		t.Error("Valid(nil) = true")
	}
	if !Valid([]byte{0xc0, 0xc1}) {
		t.Error("Valid(c0 c1) = false; trailing bytes are allowed")
	}
}
