package msgpack

import (
	"encoding/binary"
	"math"
)

// head is a parsed value header: the format byte and what follows it up to
// the payload.
type head struct {
	typ Type
	// n is the value of a bool (0 or 1) or int (an int64's bits if neg),
	// the bits of a float, the payload length of a str, bin or ext, or the
	// element count of an array or map (pairs, for a map).
	n   uint64
	neg bool // an int below zero
	f32 bool // a float 32
	ext int8 // an ext's type
}

// format says how to parse a value whose first byte it describes.
type format struct {
	typ    Type
	size   uint8 // bytes after the format byte holding a value or length
	fix    int8  // the value or length held in the format byte itself
	signed bool  // the size bytes hold a signed int
}

// formats describes every first byte (spec.md, "Overview").
var formats = func() (f [256]format) {
	for c := range 256 {
		switch {
		case c <= 0x7f:
			f[c] = format{typ: IntType, fix: int8(c)}
		case c >= 0xe0:
			f[c] = format{typ: IntType, fix: int8(c)}
		case c < mFixArray:
			f[c] = format{typ: MapType, fix: int8(c & 0x0f)}
		case c < mFixStr:
			f[c] = format{typ: ArrayType, fix: int8(c & 0x0f)}
		case c < mNil:
			f[c] = format{typ: StrType, fix: int8(c & 0x1f)}
		}
	}
	f[mNil] = format{typ: NilType}
	f[mFalse] = format{typ: BoolType}
	f[mTrue] = format{typ: BoolType, fix: 1}
	for i := range 3 {
		f[mBin8+i] = format{typ: BinType, size: 1 << i}
		f[mExt8+i] = format{typ: ExtType, size: 1 << i}
		f[mStr8+i] = format{typ: StrType, size: 1 << i}
	}
	for i := range 4 {
		f[mUint8+i] = format{typ: IntType, size: 1 << i}
		f[mInt8+i] = format{typ: IntType, size: 1 << i, signed: true}
	}
	for i := range 5 {
		f[mFixExt1+i] = format{typ: ExtType, fix: 1 << i}
	}
	for i := range 2 {
		f[mFloat32+i] = format{typ: FloatType, size: 4 << i}
		f[mArray16+i] = format{typ: ArrayType, size: 2 << i}
		f[mMap16+i] = format{typ: MapType, size: 2 << i}
	}
	return f
}()

// readHead parses the header at the start of b into h and returns the
// bytes after it. For str, bin and ext it checks that the payload is
// present; for arrays and maps that enough bytes remain for one byte per
// element. On error h is zero and rest is b. (h is an out-parameter because
// returning it with rest and err spills out of registers, doubling the cost.)
func readHead(b []byte, h *head) (rest []byte, err error) {
	*h = head{}
	if len(b) == 0 {
		return b, ErrShortBytes
	}
	f := &formats[b[0]]
	size := int(f.size)
	if len(b) <= size {
		return b, ErrShortBytes
	}
	n := uint64(int64(f.fix))
	if size > 0 {
		n = readBE(b[1 : 1+size])
	}
	rest = b[1+size:]
	var need uint64 // payload bytes, or the least bytes the elements take
	switch f.typ {
	case IntType:
		if f.signed {
			n = uint64(signExtend(n, size))
		}
		h.neg = (f.signed || size == 0) && int64(n) < 0
	case FloatType:
		h.f32 = size == 4
	case StrType, BinType, ArrayType:
		need = n
	case MapType:
		need = 2 * n // n < 2^32: no overflow
	case ExtType:
		if len(rest) == 0 {
			return b, ErrShortBytes
		}
		h.ext, rest, need = int8(rest[0]), rest[1:], n
	case InvalidType:
		return b, errInvalidByte
	}
	if need > uint64(len(rest)) {
		*h = head{}
		return b, ErrShortBytes
	}
	h.typ, h.n = f.typ, n
	return rest, nil
}

// readBE reads a big-endian number of 1, 2, 4 or 8 bytes.
func readBE(p []byte) uint64 {
	switch len(p) {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	}
	return binary.BigEndian.Uint64(p)
}

func signExtend(n uint64, size int) int64 {
	switch size {
	case 1:
		return int64(int8(n))
	case 2:
		return int64(int16(n))
	case 4:
		return int64(int32(n))
	}
	return int64(n)
}

// readTyped reads a header of the wanted family into h.
func readTyped(b []byte, typ Type, want string, h *head) ([]byte, error) {
	if NextType(b) != typ {
		return b, typeErr(want, b)
	}
	return readHead(b, h)
}

// ReadNil reads a nil.
func ReadNil(b []byte) (rest []byte, err error) {
	if len(b) == 0 || b[0] != mNil {
		return b, typeErr("nil", b)
	}
	return b[1:], nil
}

// ReadBool reads a bool.
func ReadBool(b []byte) (v bool, rest []byte, err error) {
	if len(b) == 0 || (b[0] != mFalse && b[0] != mTrue) {
		return false, b, typeErr("bool", b)
	}
	return b[0] == mTrue, b[1:], nil
}

// ReadInt reads an int in any encoding whose value fits an int64.
func ReadInt(b []byte) (v int64, rest []byte, err error) {
	if len(b) > 0 && (b[0] <= 0x7f || b[0] >= 0xe0) { // fast path: fixint
		return int64(int8(b[0])), b[1:], nil
	}
	var h head
	rest, err = readTyped(b, IntType, "int", &h)
	if err != nil {
		return 0, b, err
	}
	if !h.neg && h.n > math.MaxInt64 {
		return 0, b, overflowErr(h.n, "int64")
	}
	return int64(h.n), rest, nil
}

// ReadUint reads a non-negative int in any encoding.
func ReadUint(b []byte) (v uint64, rest []byte, err error) {
	var h head
	rest, err = readTyped(b, IntType, "int", &h)
	if err != nil {
		return 0, b, err
	}
	if h.neg {
		return 0, b, overflowErr(int64(h.n), "uint64")
	}
	return h.n, rest, nil
}

// ReadFloat64 reads a float 32, float 64 or int as a float64.
func ReadFloat64(b []byte) (v float64, rest []byte, err error) {
	var h head
	rest, err = readHead(b, &h)
	switch {
	case err != nil:
		return 0, b, err
	case h.typ == FloatType:
		return h.float(), rest, nil
	case h.typ == IntType:
		return h.intFloat(), rest, nil
	}
	return 0, b, typeErr("float", b)
}

func (h head) float() float64 {
	if h.f32 {
		return float64(math.Float32frombits(uint32(h.n)))
	}
	return math.Float64frombits(h.n)
}

func (h head) intFloat() float64 {
	if h.neg {
		return float64(int64(h.n))
	}
	return float64(h.n)
}

// ReadStringBytes reads a str; v aliases b.
func ReadStringBytes(b []byte) (v []byte, rest []byte, err error) {
	if len(b) > 0 && b[0]&0xe0 == mFixStr { // fast path: fixstr
		if n := 1 + int(b[0]&0x1f); n <= len(b) {
			return b[1:n:n], b[n:], nil
		}
	}
	return readPayload(b, StrType, "str")
}

// ReadString reads a str into a new string.
func ReadString(b []byte) (v string, rest []byte, err error) {
	p, rest, err := readPayload(b, StrType, "str")
	return string(p), rest, err
}

// ReadBytes reads a bin; v aliases b.
func ReadBytes(b []byte) (v []byte, rest []byte, err error) {
	if len(b) > 1 && b[0] == mBin8 { // fast path
		if n := 2 + int(b[1]); n <= len(b) {
			return b[2:n:n], b[n:], nil
		}
	}
	return readPayload(b, BinType, "bin")
}

func readPayload(b []byte, typ Type, want string) ([]byte, []byte, error) {
	var h head
	rest, err := readTyped(b, typ, want, &h)
	if err != nil {
		return nil, b, err
	}
	return rest[:h.n:h.n], rest[h.n:], nil
}

// ReadArrayHeader reads an array header. It fails with ErrShortBytes if
// fewer bytes remain than the n elements need.
func ReadArrayHeader(b []byte) (n int, rest []byte, err error) {
	if len(b) > 0 && b[0]&0xf0 == mFixArray { // fast path
		if n = int(b[0] & 0x0f); n < len(b) {
			return n, b[1:], nil
		}
	}
	var h head
	rest, err = readTyped(b, ArrayType, "array", &h)
	return int(h.n), rest, err
}

// ReadMapHeader reads a map header. It fails with ErrShortBytes if fewer
// bytes remain than the n pairs need.
func ReadMapHeader(b []byte) (n int, rest []byte, err error) {
	if len(b) > 0 && b[0]&0xf0 == mFixMap { // fast path
		if n = int(b[0] & 0x0f); 2*n < len(b) {
			return n, b[1:], nil
		}
	}
	var h head
	rest, err = readTyped(b, MapType, "map", &h)
	return int(h.n), rest, err
}

// ReadExt reads an extension value; data aliases b.
func ReadExt(b []byte) (typ int8, data []byte, rest []byte, err error) {
	var h head
	rest, err = readTyped(b, ExtType, "ext", &h)
	if err != nil {
		return 0, nil, b, err
	}
	return h.ext, rest[:h.n:h.n], rest[h.n:], nil
}

// Skip skips one complete value, checking every length and the nesting
// depth without recursion.
func Skip(b []byte) (rest []byte, err error) {
	return skip(b, 0)
}

// Valid reports whether b starts with one complete, well-formed value
// nested no deeper than MaxDepth; bytes after it are allowed.
func Valid(b []byte) bool {
	_, err := Skip(b)
	return err == nil
}

// skip is Skip for a value found inside depth open containers.
func skip(b []byte, depth int) ([]byte, error) {
	var open [MaxDepth]uint64 // elements left in each open container
	top := 0
	rest := b
	for {
		var h head
		r, err := readHead(rest, &h)
		if err != nil {
			return b, err
		}
		rest = r
		switch h.typ {
		case StrType, BinType, ExtType:
			rest = rest[h.n:]
		case ArrayType, MapType:
			if depth+top >= MaxDepth {
				return b, ErrTooDeep
			}
			if h.typ == MapType {
				h.n *= 2
			}
			if h.n > 0 {
				open[top] = h.n
				top++
				continue
			}
		}
		// A value ended: close every container it completes.
		for ; top > 0; top-- {
			if open[top-1]--; open[top-1] > 0 {
				break
			}
		}
		if top == 0 {
			return rest, nil
		}
	}
}
