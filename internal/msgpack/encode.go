package msgpack

import (
	"encoding/binary"
	"math"
)

// The Append functions append one value to b in its smallest encoding and
// return the extended slice. They allocate only when b lacks capacity.
// Lengths and counts must be between 0 and math.MaxUint32; the functions
// panic otherwise, as that is a bug in the caller ([Append] checks lengths
// and returns an error instead).

// AppendNil appends nil.
func AppendNil(b []byte) []byte { return append(b, mNil) }

// AppendBool appends a bool.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mTrue)
	}
	return append(b, mFalse)
}

// AppendInt appends v in the smallest int encoding: the unsigned family for
// v >= 0, the signed one below.
func AppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return AppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v)) // negative fixint
	case v >= math.MinInt8:
		return append(b, mInt8, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mInt16), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mInt64), uint64(v))
}

// AppendUint appends v in the smallest unsigned int encoding.
func AppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= math.MaxInt8:
		return append(b, byte(v)) // positive fixint
	case v <= math.MaxUint8:
		return append(b, mUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, mUint64), v)
}

// AppendFloat32 appends a float 32.
func AppendFloat32(b []byte, v float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, mFloat32), math.Float32bits(v))
}

// AppendFloat64 appends a float 64.
func AppendFloat64(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mFloat64), math.Float64bits(v))
}

// AppendString appends s as a str.
func AppendString(b []byte, s string) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

// AppendStringBytes appends s as a str.
func AppendStringBytes(b []byte, s []byte) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

// AppendBytes appends v as a bin; a nil v is an empty bin.
func AppendBytes(b []byte, v []byte) []byte {
	return append(appendBinHeader(b, len(v)), v...)
}

// AppendArrayHeader appends the header of an array of n elements; the
// caller appends the elements.
func AppendArrayHeader(b []byte, n int) []byte {
	if uint(n) < 16 {
		return append(b, mFixArray|byte(n))
	}
	return appendLen16or32(b, mArray16, n)
}

// AppendMapHeader appends the header of a map of n pairs; the caller
// appends each key and then its value.
func AppendMapHeader(b []byte, n int) []byte {
	if uint(n) < 16 {
		return append(b, mFixMap|byte(n))
	}
	return appendLen16or32(b, mMap16, n)
}

// AppendExt appends an extension value of type typ.
func AppendExt(b []byte, typ int8, data []byte) []byte {
	n := len(data)
	switch n {
	case 1, 2, 4, 8, 16:
		fix := byte(mFixExt1 + binaryLog(n))
		return append(append(b, fix, byte(typ)), data...)
	}
	switch {
	case n <= math.MaxUint8:
		b = append(b, mExt8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mExt16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mExt32), checkLen(n))
	}
	return append(append(b, byte(typ)), data...)
}

// binaryLog returns log2(n) for n in 1, 2, 4, 8, 16.
func binaryLog(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case uint(n) < 32:
		return append(b, mFixStr|byte(n))
	case n <= math.MaxUint8:
		return append(b, mStr8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mStr16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mStr32), checkLen(n))
}

func appendBinHeader(b []byte, n int) []byte {
	switch {
	case uint(n) <= math.MaxUint8:
		return append(b, mBin8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mBin16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, mBin32), checkLen(n))
}

// appendLen16or32 appends format byte m16 with a 16-bit n, or m16+1 with a
// 32-bit n.
func appendLen16or32(b []byte, m16 byte, n int) []byte {
	if uint(n) <= math.MaxUint16 {
		return binary.BigEndian.AppendUint16(append(b, m16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, m16+1), checkLen(n))
}

// checkLen returns n as a uint32, panicking if it does not fit.
func checkLen(n int) uint32 {
	if n < 0 || uint64(n) > math.MaxUint32 {
		panic(errTooLong)
	}
	return uint32(n)
}
