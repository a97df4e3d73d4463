package msgpack

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

// newTarget returns a pointer to a new value of v's type.
func newTarget(v any) any { return reflect.New(reflect.TypeOf(v)).Interface() }

func TestUnmarshalScalars(t *testing.T) {
	tests := []struct {
		in   any // encoded with Append
		want any // the target's type and expected value
	}{
		{true, true},
		{int64(-128), int8(-128)},
		{127, int8(127)},
		{int64(math.MinInt64), int64(math.MinInt64)},
		{uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{65535, uint16(65535)},
		{1 << 40, 1 << 40},
		{5, uint(5)},
		{-5, myInt(-5)},
		{int64(3), time.Duration(3)},
		{7, 7.0},
		{-7, float32(-7)},
		{float32(1.5), 1.5},
		{1.25, float32(1.25)},
		{"str", "str"},
		{[]byte("bin into string"), "bin into string"},
		{"str into bytes", []byte("str into bytes")},
		{[]byte{1, 2}, myBytes{1, 2}},
		{[]byte{1, 2, 3}, [3]byte{1, 2, 3}},
		{[]any{1, 2}, [2]uint8{1, 2}},
		{"s", myString("s")},
		{Ext{3, []byte("x")}, Ext{3, []byte("x")}},
	}
	for _, tt := range tests {
		p := newTarget(tt.want)
		rest, err := Unmarshal(append(mustAppend(t, tt.in), 0xc0), p)
		got := reflect.ValueOf(p).Elem().Interface()
		if err != nil || !reflect.DeepEqual(got, tt.want) || len(rest) != 1 {
			t.Errorf("Unmarshal(%#v) into %T = %#v, rest %x, %v, want %#v", tt.in, tt.want, got, rest, err, tt.want)
		}
	}
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     any
		target any
		want   error // nil: any error
	}{
		{"300 into int8", 300, new(int8), ErrOverflow},
		{"-129 into int8", -129, new(int8), ErrOverflow},
		{"-1 into uint", -1, new(uint), ErrOverflow},
		{"-1 into uint64", -1, new(uint64), ErrOverflow},
		{"256 into uint8", 256, new(uint8), ErrOverflow},
		{"MaxUint64 into int64", uint64(math.MaxUint64), new(int64), ErrOverflow},
		{"MaxUint64 into int", uint64(math.MaxUint64), new(int), ErrOverflow},
		{"1<<32 into int32", 1 << 32, new(int32), ErrOverflow},
		{"fractional float into int", 1.5, new(int), nil},
		{"float beyond int8", 200.0, new(int8), nil},
		{"negative float into uint", -1.0, new(uint), nil},
		{"str into int", "1", new(int), nil},
		{"int into string", 1, new(string), nil},
		{"int into bool", 1, new(bool), nil},
		{"map into slice", map[string]any{}, new([]int), nil},
		{"array into struct", []any{}, new(struct{}), nil},
		{"int into []byte", 1, new([]byte), nil},
		{"3 bytes into [4]byte", []byte{1, 2, 3}, new([4]byte), nil},
		{"1 element into [2]int", []any{1}, new([2]int), nil},
		{"str into Stringer", "x", new(fmt.Stringer), nil},
		{"int into chan", 1, new(chan int), nil},
		{"array map key", map[any]any{1: 2}, new(map[[1]int]int), nil},
		{"int key into struct", map[any]any{1: 2}, new(struct{ A int }), nil},
	}
	for _, tt := range tests {
		b := mustAppend(t, tt.in)
		rest, err := Unmarshal(b, tt.target)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Unmarshal(%s) error = %v, want %v", tt.name, err, cmpOr(tt.want, "an error"))
		}
		if len(rest) != len(b) {
			t.Errorf("Unmarshal(%s) on error returned rest of %d bytes, want the input", tt.name, len(rest))
		}
	}
}

func TestUnmarshalBadTarget(t *testing.T) {
	b := AppendInt(nil, 1)
	var i int
	for _, target := range []any{nil, i, (*int)(nil), []int{}} {
		if _, err := Unmarshal(b, target); err == nil {
			t.Errorf("Unmarshal into %#v succeeded, want an error", target)
		}
	}
	if _, err := UnmarshalValue(b, reflect.ValueOf(i)); err == nil {
		t.Error("UnmarshalValue into an unsettable value succeeded")
	}
}

func TestUnmarshalNil(t *testing.T) {
	one := 1
	type S struct{ A int }
	targets := []struct {
		target any
		want   any
	}{
		{&one, 1}, // unchanged, as encoding/json does with null
		{ptrTo("keep"), "keep"},
		{&S{A: 2}, S{A: 2}},
		{ptrTo(&one), (*int)(nil)},
		{ptrTo(any(1)), nil},
		{ptrTo(fmt.Stringer(time.Second)), fmt.Stringer(nil)},
		{ptrTo([]int{1}), []int(nil)},
		{ptrTo([]byte{1}), []byte(nil)},
		{ptrTo(map[string]int{"a": 1}), map[string]int(nil)},
		{ptrTo(map[string]any{"a": 1}), map[string]any(nil)},
		{ptrTo([]any{1}), []any(nil)},
		{ptrTo(Raw(nil)), Raw{0xc0}},
	}
	for _, tt := range targets {
		rest, err := Unmarshal([]byte{0xc0, 0x01}, tt.target)
		got := reflect.ValueOf(tt.target).Elem().Interface()
		if err != nil || len(rest) != 1 || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Unmarshal(nil) into %T = %#v, %v, want %#v", tt.target, got, err, tt.want)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

type inner struct {
	Name string
	Tags []string `msgpack:"tags"`
}

type outer struct {
	ID      uint32            `msgpack:"id"`
	Inner   *inner            `msgpack:"inner"`
	PP      **int             `msgpack:"pp"`
	Values  map[string]int    `msgpack:"values"`
	ByInt   map[int16]string  `msgpack:"by_int"`
	AnyKeys map[any]any       `msgpack:"any_keys"`
	Raw     Raw               `msgpack:"raw"`
	Args    []any             `msgpack:"args"`
	Matrix  [][2]float64      `msgpack:"matrix"`
	Ignored int               `msgpack:"-"`
	Opt     string            `msgpack:"opt,omitempty"`
	Nested  map[string]*inner `msgpack:"nested"`
	Iface   any               `msgpack:"iface"`
}

func TestUnmarshalStruct(t *testing.T) {
	seven := 7
	pseven := &seven
	in := outer{
		ID:      42,
		Inner:   &inner{Name: "n", Tags: []string{"a", "b"}},
		PP:      &pseven,
		Values:  map[string]int{"x": 1},
		ByInt:   map[int16]string{-3: "minus three"},
		AnyKeys: map[any]any{int64(1): "one", "two": int64(2)},
		Raw:     Raw{0x92, 0x01, 0xa1, 'x'},
		Args:    []any{int64(1), "two", 3.0},
		Matrix:  [][2]float64{{1, 2}, {3, 4}},
		Ignored: 99,
		Nested:  map[string]*inner{"k": {Name: "deep"}, "nil": nil},
		Iface:   map[string]any{"a": []any{}},
	}
	b := mustAppend(t, in)
	var got outer
	rest, err := Unmarshal(b, &got)
	if err != nil || len(rest) != 0 {
		t.Fatalf("Unmarshal: %v (rest %x)", err, rest)
	}
	in.Ignored = 0
	if !reflect.DeepEqual(got, in) {
		t.Errorf("Unmarshal(Append(v)) = %+v, want %+v", got, in)
	}
}

func TestUnmarshalEmbedded(t *testing.T) {
	type Base struct{ ID int }
	type hidden struct{ Secret string }
	type S struct {
		Base
		hidden
		Ptr   *Base
		Name  string
		ID    string // hides Base.ID
		inner int    //lint:ignore U1000 present to check unexported fields are skipped
	}
	in := S{Base: Base{ID: 1}, hidden: hidden{Secret: "s"}, Ptr: &Base{ID: 2}, Name: "n", ID: "top"}
	var got S
	if _, err := Unmarshal(mustAppend(t, in), &got); err != nil {
		t.Fatal(err)
	}
	in.Base.ID = 0 // hidden by S.ID, so neither encoded nor decoded
	if !reflect.DeepEqual(got, in) {
		t.Errorf("Unmarshal(Append(%+v)) = %+v", in, got)
	}
}

func TestUnmarshalStructKeys(t *testing.T) {
	type S struct {
		Name  string `msgpack:"name"`
		NAME  string
		Count int
	}
	b := mustAppend(t, map[any]any{"name": "exact", "NAME": "upper", "cOuNt": 3, "unknown": []any{map[string]any{}}, BinKey("Count"): 4})
	var s S
	if _, err := Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	// Count is set by both "cOuNt" and the bin key "Count"; map order
	// decides which lands last.
	if s.Name != "exact" || s.NAME != "upper" || (s.Count != 3 && s.Count != 4) {
		t.Errorf("Unmarshal = %+v", s)
	}
}

func TestUnmarshalIntoExisting(t *testing.T) {
	m := map[string]int{"keep": 1}
	if _, err := Unmarshal(mustAppend(t, map[string]int{"new": 2}), &m); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, map[string]int{"keep": 1, "new": 2}) {
		t.Errorf("Unmarshal into a map = %v, want both keys", m)
	}
	n := 5
	p := &n
	if _, err := Unmarshal(AppendInt(nil, 6), &p); err != nil || p != &n || n != 6 {
		t.Errorf("Unmarshal into a set pointer: %v, n = %d, want 6 in place", err, n)
	}
}

func TestUnmarshalRawCopies(t *testing.T) {
	b := mustAppend(t, []any{[]any{1, "x"}, 2})
	var parts []Raw
	if _, err := Unmarshal(b, &parts); err != nil {
		t.Fatal(err)
	}
	want := []Raw{mustAppend(t, []any{1, "x"}), {0x02}}
	b[2] = 0xff
	if !reflect.DeepEqual(parts, want) {
		t.Errorf("Unmarshal into []Raw = %x, want %x", parts, want)
	}
}

func TestUnmarshalRecursivePointerType(t *testing.T) {
	type P *P
	var p P
	if _, err := Unmarshal(AppendInt(nil, 1), &p); !errors.Is(err, ErrTooDeep) {
		t.Errorf("Unmarshal into type P *P = %v, want ErrTooDeep", err)
	}
}

func TestUnmarshalUnhashableKey(t *testing.T) {
	type K struct{ X any }
	b := unhex(t, "819101c3") // {[1]: true}
	for _, target := range []any{new(map[any]bool), new(map[K]bool), new(any)} {
		if _, err := Unmarshal(b, target); !isTypeError(err) {
			t.Errorf("Unmarshal({[1]: true}) into %T = %v, want a type error", target, err)
		}
	}
	b = unhex(t, "8181a17890c3") // {{"x": []}: true} into map[K]bool
	if _, err := Unmarshal(b, new(map[K]bool)); !isTypeError(err) {
		t.Errorf("Unmarshal into map[K]bool with a slice in K = %v, want a type error", err)
	}
}

func TestUnmarshalFastPathAllocs(t *testing.T) {
	b := mustAppend(t, []any{"abc", 1, 2.5, true})
	var (
		s string
		i int
		f float64
		v bool
	)
	allocs := testing.AllocsPerRun(100, func() {
		r := b[1:]
		r, _ = Unmarshal(r, &s)
		r, _ = Unmarshal(r, &i)
		r, _ = Unmarshal(r, &f)
		_, _ = Unmarshal(r, &v)
	})
	if allocs > 1 { // the string
		t.Errorf("Unmarshal fast paths allocated %v times, want 1", allocs)
	}
}

// TestIntegralFloatIntoInt: msgpack-lite (zerorpc-node) sends integers
// beyond 32 bits as float64; they decode into integer targets.
func TestIntegralFloatIntoInt(t *testing.T) {
	var i int64
	if _, err := Unmarshal(AppendFloat64(nil, 5e9), &i); err != nil || i != 5_000_000_000 {
		t.Errorf("Unmarshal(5e9 float) into int64 = %d, %v", i, err)
	}
	var u uint32
	if _, err := Unmarshal(AppendFloat64(nil, 4e9), &u); err != nil || u != 4_000_000_000 {
		t.Errorf("Unmarshal(4e9 float) into uint32 = %d, %v", u, err)
	}
	if _, err := Unmarshal(AppendFloat64(nil, 0x1p63), &i); err == nil {
		t.Errorf("Unmarshal(2^63 float) into int64 succeeded, want an error")
	}
}
