package msgpack

import (
	"bytes"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, v := range validValues(f) {
		f.Add(v)
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add(bytes.Repeat([]byte{0x91}, 200))
	f.Add(unhex(f, "ddffffffff0000"))
}

// FuzzReadAny checks that ReadAny never panics, agrees with Skip on each
// value's length, and that what it accepts survives Append and ReadAny.
func FuzzReadAny(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := ReadAny(b)
		skipRest, skipErr := Skip(b)
		switch {
		case err == nil && skipErr != nil:
			t.Fatalf("ReadAny succeeded but Skip failed: %v", skipErr)
		case err != nil && skipErr == nil && !isTypeError(err):
			t.Fatalf("Skip succeeded but ReadAny failed: %v", err)
		case err != nil:
			return
		case len(rest) != len(skipRest):
			t.Fatalf("ReadAny left %d bytes, Skip %d", len(rest), len(skipRest))
		}
		enc, err := Append(nil, v)
		if err != nil {
			t.Fatalf("Append(%#v): %v", v, err)
		}
		again, rest, err := ReadAny(enc)
		if err != nil || len(rest) != 0 || !equalValues(v, again) {
			t.Fatalf("ReadAny(Append(%#v)) = %#v, rest %x, %v", v, again, rest, err)
		}
	})
}

// FuzzSkip checks that Skip never panics and that Skip, Valid and
// Unmarshal into *Raw agree on where a value ends.
func FuzzSkip(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		rest, err := Skip(b)
		if Valid(b) != (err == nil) {
			t.Fatalf("Valid = %v but Skip error = %v", !(err == nil), err)
		}
		var raw Raw
		rawRest, rawErr := Unmarshal(b, &raw)
		if (err == nil) != (rawErr == nil) {
			t.Fatalf("Skip error %v, Unmarshal into Raw error %v", err, rawErr)
		}
		if err != nil {
			if len(rest) != len(b) {
				t.Fatalf("Skip failed with rest of %d bytes, want the input's %d", len(rest), len(b))
			}
			return
		}
		n := len(b) - len(rest)
		if n == 0 || len(rawRest) != len(rest) || !bytes.Equal(raw, b[:n]) {
			t.Fatalf("Skip consumed %d bytes; Unmarshal into Raw %d", n, len(b)-len(rawRest))
		}
		if again, err := Skip(b[:n]); err != nil || len(again) != 0 {
			t.Fatalf("Skip of the value alone = %x, %v", again, err)
		}
	})
}

// FuzzUnmarshalStruct decodes into a struct of many kinds; what it accepts
// must encode, and decode again to a value that encodes to the same length
// (map order varies) and the same ReadAny value.
func FuzzUnmarshalStruct(f *testing.F) {
	addSeeds(f)
	seven := 7
	pseven := &seven
	f.Add(mustAppend(f, outer{ID: 1, Inner: &inner{Name: "n", Tags: []string{"t"}}, PP: &pseven,
		Values: map[string]int{"a": 1}, ByInt: map[int16]string{2: "b"}, AnyKeys: map[any]any{BinKey("k"): 1.5},
		Raw: Raw{0x90}, Args: []any{nil}, Matrix: [][2]float64{{1, 2}}, Opt: "o",
		Nested: map[string]*inner{"x": nil}, Iface: Ext{1, []byte{2}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var first outer
		if _, err := Unmarshal(b, &first); err != nil {
			return
		}
		enc1, err := Append(nil, first)
		if err != nil {
			t.Fatalf("Append(%+v): %v", first, err)
		}
		var second outer
		if rest, err := Unmarshal(enc1, &second); err != nil || len(rest) != 0 {
			t.Fatalf("Unmarshal(Append(%+v)): %v, rest %x", first, err, rest)
		}
		enc2, err := Append(nil, second)
		if err != nil || len(enc2) != len(enc1) {
			t.Fatalf("re-encoding changed length from %d to %d (%v)", len(enc1), len(enc2), err)
		}
		v1, _, err1 := ReadAny(enc1)
		v2, _, err2 := ReadAny(enc2)
		if (err1 == nil) != (err2 == nil) || !equalValues(v1, v2) {
			t.Fatalf("round trip changed the value: %#v (%v) then %#v (%v)", v1, err1, v2, err2)
		}
	})
}
