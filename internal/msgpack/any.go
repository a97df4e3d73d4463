package msgpack

import (
	"bytes"
	"math"
)

// Raw is one pre-encoded msgpack value. [Append] writes it verbatim (an
// empty Raw as nil); [Unmarshal] into a *Raw stores a copy of the value's
// bytes.
type Raw []byte

// Ext is an extension value: an application-defined type and its payload.
type Ext struct {
	Type int8
	Data []byte
}

// BinKey is a bin map key as [ReadAny] returns it, since a []byte cannot be
// a Go map key. [Append] encodes a BinKey as bin.
type BinKey string

// ReadAny reads one value into the Go types of the package's mapping table:
// nil, bool, int64, uint64 (only for unsigned values above math.MaxInt64),
// float32, float64, string, []byte, []any, map[string]any (when every key
// is a str), map[any]any, or Ext. Byte slices are copies, never aliases of
// b. A map key that is an array, map or ext is an error.
func ReadAny(b []byte) (v any, rest []byte, err error) {
	v, rest, err = readAny(b, 0)
	if err != nil {
		return nil, b, err
	}
	return v, rest, nil
}

// readAny is ReadAny for a value inside depth open containers.
func readAny(b []byte, depth int) (any, []byte, error) {
	var h head
	rest, err := readHead(b, &h)
	if err != nil {
		return nil, b, err
	}
	switch h.typ {
	case NilType:
		return nil, rest, nil
	case BoolType:
		return h.n == 1, rest, nil
	case IntType:
		return h.int(), rest, nil
	case FloatType:
		if h.f32 {
			return math.Float32frombits(uint32(h.n)), rest, nil
		}
		return math.Float64frombits(h.n), rest, nil
	case StrType:
		return string(rest[:h.n]), rest[h.n:], nil
	case BinType:
		return bytes.Clone(rest[:h.n]), rest[h.n:], nil
	case ExtType:
		return Ext{Type: h.ext, Data: bytes.Clone(rest[:h.n])}, rest[h.n:], nil
	}
	if depth >= MaxDepth {
		return nil, b, ErrTooDeep
	}
	if h.typ == ArrayType {
		return readArray(rest, int(h.n), depth+1)
	}
	return readMap(rest, int(h.n), depth+1)
}

// int returns an int header's value as int64, or as uint64 above
// math.MaxInt64.
func (h head) int() any {
	if !h.neg && h.n > math.MaxInt64 {
		return h.n
	}
	return int64(h.n)
}

func readArray(b []byte, n, depth int) (any, []byte, error) {
	a := make([]any, n)
	var err error
	for i := range a {
		if a[i], b, err = readAny(b, depth); err != nil {
			return nil, b, err
		}
	}
	return a, b, nil
}

// readMap reads n pairs into a map[string]any, switching to map[any]any at
// the first key that is not a str.
func readMap(b []byte, n, depth int) (any, []byte, error) {
	m := make(map[string]any, n)
	for i := range n {
		if NextType(b) != StrType {
			return readAnyKeyMap(b, m, n-i, depth)
		}
		k, rest, err := ReadStringBytes(b)
		if err != nil {
			return nil, b, err
		}
		v, rest, err := readAny(rest, depth)
		if err != nil {
			return nil, rest, err
		}
		m[string(k)] = v
		b = rest
	}
	return m, b, nil
}

// readAnyKeyMap reads the remaining n pairs of a map whose first pairs,
// all str-keyed, are in sm.
func readAnyKeyMap(b []byte, sm map[string]any, n, depth int) (any, []byte, error) {
	m := make(map[any]any, len(sm)+n)
	for k, v := range sm {
		m[k] = v
	}
	for range n {
		k, rest, err := readMapKey(b, depth)
		if err != nil {
			return nil, b, err
		}
		v, rest, err := readAny(rest, depth)
		if err != nil {
			return nil, rest, err
		}
		m[k] = v
		b = rest
	}
	return m, b, nil
}

// readMapKey reads a map key as a hashable value: a bin becomes a BinKey;
// arrays, maps and exts are errors.
func readMapKey(b []byte, depth int) (any, []byte, error) {
	switch t := NextType(b); t {
	case ArrayType, MapType, ExtType:
		return nil, b, &TypeError{Want: "hashable map key", Got: t}
	case BinType:
		k, rest, err := ReadBytes(b)
		return BinKey(k), rest, err
	}
	return readAny(b, depth)
}
