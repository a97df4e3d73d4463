package msgpack

import (
	"errors"
	"fmt"
	"reflect"
)

var (
	errNotPointer  = errors.New("msgpack: Unmarshal needs a non-nil pointer")
	errNotSettable = errors.New("msgpack: UnmarshalValue needs a settable value")
)

// maxPrealloc bounds the bytes a slice is given before its elements are
// decoded; beyond it the slice grows as elements arrive.
const maxPrealloc = 1 << 20

// Unmarshal decodes one value from the start of b into the value v points
// to, converting as the package's mapping table says, and returns the bytes
// after it. v must be a non-nil pointer. On error rest is b, and the target
// may be partly written.
func Unmarshal(b []byte, v any) (rest []byte, err error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return b, errNotPointer
	}
	if rest, ok, err := decodeFast(b, v, 0); ok {
		return rest, err
	}
	return UnmarshalValue(b, rv.Elem())
}

// UnmarshalValue is Unmarshal into a settable reflect.Value.
func UnmarshalValue(b []byte, v reflect.Value) (rest []byte, err error) {
	if !v.CanSet() {
		return b, errNotSettable
	}
	rest, err = decodeValue(b, v, 0)
	if err != nil {
		return b, err
	}
	return rest, nil
}

// decodeValue decodes into the addressable v, found inside depth open
// containers.
func decodeValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if rest, ok, err := decodeFast(b, v.Addr().Interface(), depth); ok {
		return rest, err
	}
	if len(b) == 0 {
		return b, ErrShortBytes
	}
	if b[0] == mNil {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			v.SetZero()
		}
		return b[1:], nil
	}
	return decodeKind(b, v, depth)
}

// decodeKind decodes a value other than nil by v's kind.
func decodeKind(b []byte, v reflect.Value, depth int) ([]byte, error) {
	t := v.Type()
	switch t.Kind() {
	case reflect.Pointer:
		return decodePointer(b, v, depth)
	case reflect.Interface:
		return decodeInterface(b, v, depth)
	case reflect.Bool:
		x, rest, err := ReadBool(b)
		if err == nil {
			v.SetBool(x)
		}
		return rest, err
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, rest, err := readIntTarget(b, t.Bits(), t.String())
		if err == nil {
			v.SetInt(x)
		}
		return rest, err
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x, rest, err := readUintTarget(b, t.Bits(), t.String())
		if err == nil {
			v.SetUint(x)
		}
		return rest, err
	case reflect.Float32, reflect.Float64:
		x, rest, err := ReadFloat64(b)
		if err == nil {
			v.SetFloat(x)
		}
		return rest, err
	case reflect.String:
		x, rest, err := readText(b, t.String())
		if err == nil {
			v.SetString(string(x))
		}
		return rest, err
	case reflect.Slice:
		return decodeSlice(b, v, depth)
	case reflect.Array:
		return decodeArray(b, v, depth)
	case reflect.Map:
		return decodeMap(b, v, depth)
	case reflect.Struct:
		return decodeStruct(b, v, depth)
	}
	return b, fmt.Errorf("msgpack: unsupported type %s", t)
}

// decodePointer allocates through a chain of nil pointers and decodes into
// the value at its end. A chain longer than MaxDepth (type P *P) fails.
func decodePointer(b []byte, v reflect.Value, depth int) ([]byte, error) {
	for range MaxDepth {
		if v.Kind() != reflect.Pointer {
			return decodeValue(b, v, depth)
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	return b, ErrTooDeep
}

// decodeInterface decodes into an empty interface with ReadAny; a non-empty
// interface accepts only nil, handled before.
func decodeInterface(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if v.NumMethod() != 0 {
		return b, typeErr(v.Type().String(), b)
	}
	x, rest, err := readAny(b, depth)
	if err != nil {
		return b, err
	}
	if x == nil {
		v.SetZero()
	} else {
		v.Set(reflect.ValueOf(x))
	}
	return rest, nil
}

// readContainer reads an array or map header for a target of type t.
func readContainer(b []byte, typ Type, t reflect.Type, depth int) (int, []byte, error) {
	var h head
	rest, err := readTyped(b, typ, t.String(), &h)
	switch {
	case err != nil:
		return 0, b, err
	case depth >= MaxDepth:
		return 0, b, ErrTooDeep
	}
	return int(h.n), rest, nil
}

// isBytes reports whether t is a slice or array of a uint8 kind.
func isBytes(t reflect.Type) bool { return t.Elem().Kind() == reflect.Uint8 }

func decodeSlice(b []byte, v reflect.Value, depth int) ([]byte, error) {
	t := v.Type()
	if isBytes(t) {
		x, rest, err := readText(b, t.String())
		if err == nil {
			s := reflect.MakeSlice(t, len(x), len(x))
			copy(s.Bytes(), x)
			v.Set(s)
		}
		return rest, err
	}
	n, rest, err := readContainer(b, ArrayType, t, depth)
	if err != nil {
		return b, err
	}
	s := reflect.MakeSlice(t, 0, preallocLen(n, t.Elem()))
	zero := reflect.Zero(t.Elem())
	for i := range n {
		if i < s.Cap() {
			s = s.Slice(0, i+1)
		} else {
			s = reflect.Append(s, zero)
		}
		if rest, err = decodeValue(rest, s.Index(i), depth+1); err != nil {
			return b, err
		}
	}
	v.Set(s)
	return rest, nil
}

// preallocLen is how many of n elements of type t to allocate up front.
func preallocLen(n int, t reflect.Type) int {
	if size := int(t.Size()); size > 0 && n > maxPrealloc/size {
		return maxPrealloc / size
	}
	return n
}

func decodeArray(b []byte, v reflect.Value, depth int) ([]byte, error) {
	t := v.Type()
	if isBytes(t) && NextType(b) != ArrayType {
		x, rest, err := readText(b, t.String())
		if err == nil && len(x) != v.Len() {
			return b, fmt.Errorf("msgpack: %d bytes into %s", len(x), t)
		}
		copy(v.Bytes(), x)
		return rest, err
	}
	n, rest, err := readContainer(b, ArrayType, t, depth)
	if err != nil {
		return b, err
	}
	if n != v.Len() {
		return b, fmt.Errorf("msgpack: array of %d elements into %s", n, t)
	}
	for i := range n {
		if rest, err = decodeValue(rest, v.Index(i), depth+1); err != nil {
			return b, err
		}
	}
	return rest, nil
}

// decodeMap adds a map's pairs to v, making it if nil.
func decodeMap(b []byte, v reflect.Value, depth int) ([]byte, error) {
	t := v.Type()
	n, rest, err := readContainer(b, MapType, t, depth)
	if err != nil {
		return b, err
	}
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, preallocLen(n, t.Elem())))
	}
	key, val := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
	for range n {
		key.SetZero()
		val.SetZero()
		if rest, err = decodeKey(rest, key, depth+1); err != nil {
			return b, err
		}
		if rest, err = decodeValue(rest, val, depth+1); err != nil {
			return b, err
		}
		v.SetMapIndex(key, val)
	}
	return rest, nil
}

// decodeKey decodes a map key and checks that it is hashable, which an
// interface (or a struct or array holding one) may not be.
func decodeKey(b []byte, key reflect.Value, depth int) ([]byte, error) {
	var rest []byte
	var err error
	if key.Kind() == reflect.Interface && key.NumMethod() == 0 {
		var k any
		if k, rest, err = readMapKey(b, depth); err == nil && k != nil {
			key.Set(reflect.ValueOf(k))
		}
	} else {
		rest, err = decodeValue(b, key, depth)
	}
	if err == nil && !key.Comparable() {
		return b, &TypeError{Want: "hashable map key", Got: NextType(b)}
	}
	return rest, err
}

// decodeStruct decodes a map into v's fields by name, exact match first,
// then ignoring case. Keys may be str or bin; unknown keys are skipped.
func decodeStruct(b []byte, v reflect.Value, depth int) ([]byte, error) {
	si := cachedFields(v.Type())
	n, rest, err := readContainer(b, MapType, v.Type(), depth)
	if err != nil {
		return b, err
	}
	for range n {
		var key []byte
		if key, rest, err = readText(rest, "str map key"); err != nil {
			return b, err
		}
		if f := si.lookup(key); f != nil {
			rest, err = decodeValue(rest, v.FieldByIndex(f.index), depth+1)
		} else {
			rest, err = skip(rest, depth+1)
		}
		if err != nil {
			return b, err
		}
	}
	return rest, nil
}
