package msgpack

import (
	"bytes"
	"math"
	"strconv"
)

// decodeFast decodes into the common pointer types without reflection. It
// reports ok false, with nothing read, for any other type.
func decodeFast(b []byte, p any, depth int) (rest []byte, ok bool, err error) {
	if len(b) > 0 && b[0] == mNil {
		return decodeFastNil(b, p)
	}
	switch p := p.(type) {
	case *any:
		return setFrom(p, b)(readAny(b, depth))
	case *string:
		s, rest, err := readText(b, "string")
		if err == nil {
			*p = string(s)
		}
		return rest, true, err
	case *[]byte:
		s, rest, err := readText(b, "[]byte")
		return setFrom(p, b)(bytes.Clone(s), rest, err)
	case *int:
		i, rest, err := readIntTarget(b, strconv.IntSize, "int")
		return setFrom(p, b)(int(i), rest, err)
	case *int64:
		return setFrom(p, b)(readIntTarget(b, 64, "int64"))
	case *uint64:
		return setFrom(p, b)(readUintTarget(b, 64, "uint64"))
	case *float64:
		return setFrom(p, b)(ReadFloat64(b))
	case *bool:
		return setFrom(p, b)(ReadBool(b))
	case *Raw:
		rest, err := Skip(b)
		return setFrom(p, b)(Raw(bytes.Clone(b[:len(b)-len(rest)])), rest, err)
	case *Ext:
		typ, data, rest, err := ReadExt(b)
		return setFrom(p, b)(Ext{Type: typ, Data: bytes.Clone(data)}, rest, err)
	case *[]any:
		return setFrom(p, b)(decodeAnySlice(b, depth))
	case *map[string]any:
		rest, err := decodeStrMap(b, p, depth)
		return rest, true, err
	}
	return b, false, nil
}

// setFrom returns a function that stores v in *p unless err is set, and
// returns rest, or b on error.
func setFrom[T any](p *T, b []byte) func(v T, rest []byte, err error) ([]byte, bool, error) {
	return func(v T, rest []byte, err error) ([]byte, bool, error) {
		if err != nil {
			return b, true, err
		}
		*p = v
		return rest, true, nil
	}
}

// decodeFastNil handles msgpack nil for decodeFast.
func decodeFastNil(b []byte, p any) ([]byte, bool, error) {
	switch p := p.(type) {
	case *any:
		*p = nil
	case *[]byte:
		*p = nil
	case *[]any:
		*p = nil
	case *map[string]any:
		*p = nil
	case *Raw:
		*p = Raw{mNil}
	case *string, *int, *int64, *uint64, *float64, *bool, *Ext:
		// Left unchanged, as encoding/json does with null.
	default:
		return b, false, nil
	}
	return b[1:], true, nil
}

// readText reads a str or bin payload, aliasing b.
func readText(b []byte, want string) ([]byte, []byte, error) {
	if t := NextType(b); t != StrType && t != BinType {
		return nil, b, typeErr(want, b)
	}
	var h head
	rest, err := readHead(b, &h)
	if err != nil {
		return nil, b, err
	}
	return rest[:h.n:h.n], rest[h.n:], nil
}

// integralFloat reads a float that holds an integer in [lo, hi), as
// msgpack-lite (zerorpc-node) sends integers beyond 32 bits.
func integralFloat(b []byte, lo, hi float64, target string) (float64, []byte, error) {
	f, rest, err := ReadFloat64(b)
	if err != nil {
		return 0, b, err
	}
	if f != math.Trunc(f) || f < lo || f >= hi {
		return 0, b, &TypeError{Want: target + " (an integral float)", Got: FloatType}
	}
	return f, rest, nil
}

// readIntTarget reads an int that must fit a signed type of the given bits.
// A float holding such an integer is accepted too.
func readIntTarget(b []byte, bits int, target string) (int64, []byte, error) {
	if NextType(b) == FloatType {
		f, rest, err := integralFloat(b, -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1), target)
		return int64(f), rest, err
	}
	var h head
	rest, err := readTyped(b, IntType, target, &h)
	switch {
	case err != nil:
		return 0, b, err
	case !h.neg && h.n > math.MaxInt64:
		return 0, b, overflowErr(h.n, target)
	}
	i := int64(h.n)
	if bits < 64 && (i < -1<<(bits-1) || i >= 1<<(bits-1)) {
		return 0, b, overflowErr(i, target)
	}
	return i, rest, nil
}

// readUintTarget reads an int that must fit an unsigned type of the given
// bits.
func readUintTarget(b []byte, bits int, target string) (uint64, []byte, error) {
	if NextType(b) == FloatType {
		f, rest, err := integralFloat(b, 0, math.Ldexp(1, bits), target)
		return uint64(f), rest, err
	}
	var h head
	rest, err := readTyped(b, IntType, target, &h)
	switch {
	case err != nil:
		return 0, b, err
	case h.neg:
		return 0, b, overflowErr(int64(h.n), target)
	case bits < 64 && h.n >= 1<<bits:
		return 0, b, overflowErr(h.n, target)
	}
	return h.n, rest, nil
}

func decodeAnySlice(b []byte, depth int) ([]any, []byte, error) {
	var h head
	rest, err := readTyped(b, ArrayType, "[]interface {}", &h)
	switch {
	case err != nil:
		return nil, b, err
	case depth >= MaxDepth:
		return nil, b, ErrTooDeep
	}
	v, rest, err := readArray(rest, int(h.n), depth+1)
	if err != nil {
		return nil, b, err
	}
	return v.([]any), rest, nil
}

// decodeStrMap adds a map's pairs to *p, making it if nil; keys may be str
// or bin.
func decodeStrMap(b []byte, p *map[string]any, depth int) ([]byte, error) {
	var h head
	rest, err := readTyped(b, MapType, "map[string]interface {}", &h)
	switch {
	case err != nil:
		return b, err
	case depth >= MaxDepth:
		return b, ErrTooDeep
	}
	if *p == nil {
		*p = make(map[string]any, h.n)
	}
	for range h.n {
		var k []byte
		var v any
		if k, rest, err = readText(rest, "string"); err != nil {
			return b, err
		}
		if v, rest, err = readAny(rest, depth+1); err != nil {
			return b, err
		}
		(*p)[string(k)] = v
	}
	return rest, nil
}
