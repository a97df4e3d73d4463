// Package msgpack is a MessagePack codec (github.com/msgpack/msgpack
// spec.md) for the RPC layer, wire-compatible with zerorpc-python
// (msgpack-python with use_bin_type=True, raw=False) and zerorpc-node
// (msgpack-lite).
//
// It has three layers:
//
//   - Append-style encoders ([AppendInt], [AppendString], [AppendMapHeader],
//     …) write one value to the end of a byte slice, always in the smallest
//     encoding, and allocate nothing when the slice has capacity.
//   - Zero-copy readers ([ReadInt], [ReadStringBytes], [ReadArrayHeader],
//     [Skip], …) read one value from the start of a byte slice and return the
//     rest. Returned byte slices alias the input.
//   - [ReadAny], [Append], [Unmarshal] and [UnmarshalValue] map whole values
//     to and from Go values, with fast paths for common types and reflection
//     for the rest. Struct field information is cached per type.
//
// # Untrusted input
//
// Every decoder treats its input as hostile: it never panics, checks each
// length against the bytes that remain before it allocates, and refuses
// containers nested deeper than [MaxDepth] with [ErrTooDeep]. On error a
// reader returns its input unchanged as rest.
//
// # Type mapping
//
// Types are preserved exactly: str and bin stay distinct, as do int and
// float, and float32 and float64.
//
//	msgpack         ReadAny yields            Append encodes
//	nil             nil                       nil, and nil pointers, interfaces,
//	                                          slices and maps
//	bool            bool                      bool
//	int (signed)    int64                     int, int8 … int64 (so time.Duration)
//	int (unsigned)  int64, or uint64 above    uint, uint8 … uint64, uintptr
//	                math.MaxInt64
//	float 32        float32                   float32
//	float 64        float64                   float64
//	str             string                    string
//	bin             []byte (a copy)           []byte (nil is an empty bin),
//	                                          [N]byte, BinKey
//	array           []any                     other slices and arrays
//	map             map[string]any if every   maps; structs as maps of their
//	                key is a str, else        exported fields, keyed by name or
//	                map[any]any (bin keys     `msgpack:"name,omitempty"` tag
//	                become BinKey)            ("-" skips a field; untagged
//	                                          embedded structs are inlined)
//	ext             Ext (Data copied)         Ext
//	any one value   Raw, with Unmarshal       Raw, verbatim (an empty Raw is nil)
//
// [Unmarshal] converts where the Go type asks for it: ints are range checked
// ([ErrOverflow]) and never accept floats, floats accept ints, strings accept
// bin and []byte accepts str (Python 2 peers send bytes for strings), struct
// fields match map keys exactly first and then ignoring case, and msgpack nil
// sets pointers, interfaces, slices and maps to nil and leaves any other
// target unchanged, as encoding/json does with null.
package msgpack
