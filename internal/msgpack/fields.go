package msgpack

import (
	"reflect"
	"slices"
	"strings"
	"sync"
)

// field is one encoded struct field.
type field struct {
	name      string
	index     []int // for reflect.Value.FieldByIndex; crosses only embedded structs by value
	omitEmpty bool
}

// structInfo is the cached field list of one struct type.
type structInfo struct {
	fields []field
	byName map[string]int // exact name → index into fields
}

var structCache sync.Map // reflect.Type → *structInfo

// cachedFields returns t's field information, computing it once.
func cachedFields(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si, _ := structCache.LoadOrStore(t, newStructInfo(t))
	return si.(*structInfo)
}

func newStructInfo(t reflect.Type) *structInfo {
	all := collectFields(t, nil)
	// A name taken by a shallower field, or an earlier one at the same
	// depth, hides later ones (encoding/json hides both in a tie).
	best := make(map[string]int, len(all))
	for i, f := range all {
		if j, ok := best[f.name]; !ok || len(f.index) < len(all[j].index) {
			best[f.name] = i
		}
	}
	si := &structInfo{byName: make(map[string]int, len(best))}
	for i, f := range all {
		if best[f.name] == i {
			si.byName[f.name] = len(si.fields)
			si.fields = append(si.fields, f)
		}
	}
	return si
}

// collectFields lists t's encoded fields in declaration order, inlining the
// fields of untagged embedded structs (not pointers to them).
func collectFields(t reflect.Type, prefix []int) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("msgpack")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		index := append(prefix[:len(prefix):len(prefix)], i)
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			out = append(out, collectFields(sf.Type, index)...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{name: name, index: index, omitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty")})
	}
	return out
}

// lookup finds the field for a map key: by exact name, else ignoring case.
func (si *structInfo) lookup(key []byte) *field {
	if i, ok := si.byName[string(key)]; ok {
		return &si.fields[i]
	}
	for i := range si.fields {
		if strings.EqualFold(si.fields[i].name, string(key)) {
			return &si.fields[i]
		}
	}
	return nil
}

// isEmpty reports whether v is empty for omitempty, as in encoding/json.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
