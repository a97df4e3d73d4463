package msgpack

import (
	"fmt"
	"math"
	"reflect"
)

var (
	rawType    = reflect.TypeFor[Raw]()
	extType    = reflect.TypeFor[Ext]()
	binKeyType = reflect.TypeFor[BinKey]()
)

// Append appends v's encoding to b, following the package's mapping table.
// Nil slices and maps (other than []byte) encode as nil. Channels,
// functions, complex numbers and unsafe pointers are errors, as are values
// nested deeper than MaxDepth, which includes cyclic ones. On error the
// returned slice is b.
func Append(b []byte, v any) ([]byte, error) {
	out, err := appendAny(b, v, 0)
	if err != nil {
		return b, err
	}
	return out, nil
}

// appendAny encodes v, found inside depth open containers, taking fast paths
// for common types before reflection.
func appendAny(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return AppendNil(b), nil
	case bool:
		return AppendBool(b, v), nil
	case int:
		return AppendInt(b, int64(v)), nil
	case int64:
		return AppendInt(b, v), nil
	case int32:
		return AppendInt(b, int64(v)), nil
	case uint64:
		return AppendUint(b, v), nil
	case uint32:
		return AppendUint(b, uint64(v)), nil
	case float64:
		return AppendFloat64(b, v), nil
	case float32:
		return AppendFloat32(b, v), nil
	case string:
		return appendStr(b, v)
	case []byte:
		return appendBin(b, v)
	case BinKey:
		return appendBin(b, v)
	case Raw:
		return appendRaw(b, v), nil
	case Ext:
		return appendExt(b, v)
	case []any:
		return appendSlice(b, v, depth)
	case map[string]any:
		return appendStrMap(b, v, depth)
	case map[any]any:
		return appendAnyMap(b, v, depth)
	}
	return appendValue(b, reflect.ValueOf(v), depth)
}

func appendStr(b []byte, s string) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return b, errTooLong
	}
	return AppendString(b, s), nil
}

func appendBin[T ~string | ~[]byte](b []byte, p T) ([]byte, error) {
	if uint64(len(p)) > math.MaxUint32 {
		return b, errTooLong
	}
	return append(appendBinHeader(b, len(p)), p...), nil
}

func appendRaw(b []byte, r Raw) []byte {
	if len(r) == 0 {
		return AppendNil(b)
	}
	return append(b, r...)
}

func appendExt(b []byte, e Ext) ([]byte, error) {
	if uint64(len(e.Data)) > math.MaxUint32 {
		return b, errTooLong
	}
	return AppendExt(b, e.Type, e.Data), nil
}

// appendHeader appends an array or map header after checking n and depth.
func appendHeader(b []byte, isMap bool, n, depth int) ([]byte, error) {
	switch {
	case depth >= MaxDepth:
		return b, ErrTooDeep
	case uint64(n) > math.MaxUint32:
		return b, errTooLong
	case isMap:
		return AppendMapHeader(b, n), nil
	}
	return AppendArrayHeader(b, n), nil
}

func appendSlice(b []byte, a []any, depth int) ([]byte, error) {
	if a == nil {
		return AppendNil(b), nil
	}
	b, err := appendHeader(b, false, len(a), depth)
	for i := 0; err == nil && i < len(a); i++ {
		b, err = appendAny(b, a[i], depth+1)
	}
	return b, err
}

func appendStrMap(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return AppendNil(b), nil
	}
	b, err := appendHeader(b, true, len(m), depth)
	for k, v := range m {
		if err != nil {
			break
		}
		if b, err = appendStr(b, k); err == nil {
			b, err = appendAny(b, v, depth+1)
		}
	}
	return b, err
}

func appendAnyMap(b []byte, m map[any]any, depth int) ([]byte, error) {
	if m == nil {
		return AppendNil(b), nil
	}
	b, err := appendHeader(b, true, len(m), depth)
	for k, v := range m {
		if err != nil {
			break
		}
		if b, err = appendAny(b, k, depth+1); err == nil {
			b, err = appendAny(b, v, depth+1)
		}
	}
	return b, err
}

// appendValue encodes v by reflection.
func appendValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if v.Kind() == reflect.Interface && !v.IsNil() && v.CanInterface() {
		// An element of []any or a field of type any: try the fast paths.
		// appendAny passes only concrete values back, so this cannot loop.
		return appendAny(b, v.Elem().Interface(), depth)
	}
	v, ok := indirect(v)
	if !ok {
		return b, ErrTooDeep
	}
	switch v.Kind() {
	case reflect.Invalid:
		return AppendNil(b), nil
	case reflect.Bool:
		return AppendBool(b, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return AppendInt(b, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return AppendUint(b, v.Uint()), nil
	case reflect.Float32:
		return AppendFloat32(b, float32(v.Float())), nil
	case reflect.Float64:
		return AppendFloat64(b, v.Float()), nil
	case reflect.String:
		if v.Type() == binKeyType {
			return appendBin(b, v.String())
		}
		return appendStr(b, v.String())
	case reflect.Slice:
		return appendSliceValue(b, v, depth)
	case reflect.Array:
		return appendArrayValue(b, v, depth)
	case reflect.Map:
		return appendMapValue(b, v, depth)
	case reflect.Struct:
		if v.Type() == extType {
			return appendExt(b, Ext{Type: int8(v.Field(0).Int()), Data: v.Field(1).Bytes()})
		}
		return appendStruct(b, v, depth)
	}
	return b, fmt.Errorf("msgpack: unsupported type %s", v.Type())
}

// indirect follows pointers and interfaces to a concrete value, or to an
// invalid Value for nil. It reports false for a chain longer than MaxDepth,
// as a pointer cycle makes.
func indirect(v reflect.Value) (reflect.Value, bool) {
	for range MaxDepth {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if v.IsNil() {
				return reflect.Value{}, true
			}
			v = v.Elem()
		default:
			return v, true
		}
	}
	return v, false
}

func appendSliceValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	switch {
	case v.Type() == rawType:
		return appendRaw(b, v.Bytes()), nil
	case v.Type().Elem().Kind() == reflect.Uint8:
		return appendBin(b, v.Bytes())
	case v.IsNil():
		return AppendNil(b), nil
	}
	return appendArrayValue(b, v, depth)
}

// appendArrayValue encodes a slice or array; [N]byte as bin.
func appendArrayValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	n := v.Len()
	if v.Kind() == reflect.Array && v.Type().Elem().Kind() == reflect.Uint8 {
		b = appendBinHeader(b, n)
		for i := range n {
			b = append(b, byte(v.Index(i).Uint()))
		}
		return b, nil
	}
	b, err := appendHeader(b, false, n, depth)
	for i := 0; err == nil && i < n; i++ {
		b, err = appendValue(b, v.Index(i), depth+1)
	}
	return b, err
}

func appendMapValue(b []byte, v reflect.Value, depth int) ([]byte, error) {
	if v.IsNil() {
		return AppendNil(b), nil
	}
	b, err := appendHeader(b, true, v.Len(), depth)
	for it := v.MapRange(); err == nil && it.Next(); {
		if b, err = appendValue(b, it.Key(), depth+1); err == nil {
			b, err = appendValue(b, it.Value(), depth+1)
		}
	}
	return b, err
}

func appendStruct(b []byte, v reflect.Value, depth int) ([]byte, error) {
	si := cachedFields(v.Type())
	n := 0
	for i := range si.fields {
		if f := &si.fields[i]; !f.omitEmpty || !isEmpty(v.FieldByIndex(f.index)) {
			n++
		}
	}
	b, err := appendHeader(b, true, n, depth)
	for i := 0; err == nil && i < len(si.fields); i++ {
		f := &si.fields[i]
		fv := v.FieldByIndex(f.index)
		if f.omitEmpty && isEmpty(fv) {
			continue
		}
		b = AppendString(b, f.name)
		b, err = appendValue(b, fv, depth+1)
	}
	return b, err
}
