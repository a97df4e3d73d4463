package msgpack

import (
	"errors"
	"fmt"
)

// MaxDepth is how deeply arrays and maps may nest. Decoders return
// [ErrTooDeep] for deeper input, and [Append] for deeper (or cyclic) values.
const MaxDepth = 128

// Type is the msgpack family of the next value.
type Type uint8

// The msgpack families, as [NextType] reports them.
const (
	InvalidType Type = iota
	NilType
	BoolType
	IntType
	FloatType
	StrType
	BinType
	ArrayType
	MapType
	ExtType
)

var typeNames = [...]string{"invalid", "nil", "bool", "int", "float", "str", "bin", "array", "map", "ext"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

var (
	// ErrShortBytes means the input ends inside a value, or a length or
	// element count claims more bytes than remain.
	ErrShortBytes = errors.New("msgpack: unexpected end of input")
	// ErrTooDeep means arrays and maps nest deeper than MaxDepth.
	ErrTooDeep = errors.New("msgpack: nesting too deep")
	// ErrOverflow means an integer does not fit its target type. Errors
	// that wrap it name the value and the target.
	ErrOverflow = errors.New("msgpack: integer overflow")

	errInvalidByte = errors.New("msgpack: invalid format byte 0xc1")
	errTooLong     = errors.New("msgpack: length exceeds 2^32-1")
)

// TypeError reports a value of the wrong msgpack family.
type TypeError struct {
	Want string // what the reader or target needed
	Got  Type   // what the input held
}

func (e *TypeError) Error() string {
	return "msgpack: want " + e.Want + ", got " + e.Got.String()
}

// typeErr is the error for b not starting with a value of the wanted family.
func typeErr(want string, b []byte) error {
	switch {
	case len(b) == 0:
		return ErrShortBytes
	case b[0] == mInvalid:
		return errInvalidByte
	}
	return &TypeError{Want: want, Got: NextType(b)}
}

func overflowErr(v any, target string) error {
	return fmt.Errorf("%w: %v does not fit %s", ErrOverflow, v, target)
}

// Format bytes (spec.md, "Formats").
const (
	mNil     = 0xc0
	mInvalid = 0xc1
	mFalse   = 0xc2
	mTrue    = 0xc3
	mBin8    = 0xc4
	mBin16   = 0xc5
	mBin32   = 0xc6
	mExt8    = 0xc7
	mExt16   = 0xc8
	mExt32   = 0xc9
	mFloat32 = 0xca
	mFloat64 = 0xcb
	mUint8   = 0xcc
	mUint16  = 0xcd
	mUint32  = 0xce
	mUint64  = 0xcf
	mInt8    = 0xd0
	mInt16   = 0xd1
	mInt32   = 0xd2
	mInt64   = 0xd3
	mFixExt1 = 0xd4
	mStr8    = 0xd9
	mStr16   = 0xda
	mStr32   = 0xdb
	mArray16 = 0xdc
	mArray32 = 0xdd
	mMap16   = 0xde
	mMap32   = 0xdf

	mFixMap   = 0x80
	mFixArray = 0x90
	mFixStr   = 0xa0
)

// NextType reports the family of the value at the start of b, or
// InvalidType if b is empty or starts with the reserved byte 0xc1.
func NextType(b []byte) Type {
	if len(b) == 0 {
		return InvalidType
	}
	return formats[b[0]].typ
}
