package msgpack

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func mustAppend(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Append(nil, v)
	if err != nil {
		t.Fatalf("Append(%#v): %v", v, err)
	}
	return b
}

// equalValues is reflect.DeepEqual, except that floats compare by bits (so
// NaN equals NaN and -0 differs from 0) and NaN map keys are only counted.
func equalValues(a, b any) bool {
	switch a := a.(type) {
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	case float32:
		b, ok := b.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) || (a == nil) != (b == nil) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || !equalValues(v, w) {
				return false
			}
		}
		return true
	case map[any]any:
		b, ok := b.(map[any]any)
		return ok && equalAnyMaps(a, b)
	}
	return reflect.DeepEqual(a, b)
}

func equalAnyMaps(a, b map[any]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if k != k { // NaN: cannot be looked up
			continue
		}
		if w, ok := b[k]; !ok || !equalValues(v, w) {
			return false
		}
	}
	return true
}

const (
	mid = "0000000141c0b5e1f7b44a50a5e4f35d"
	rid = "0000000141c0b5e1f7b44a50a5e4f35e"
)

// goldenVectors were produced by msgpack-python 1.0.3
// (msgpack.packb(v, use_bin_type=True)) and msgpack-lite 0.2.2
// (msgpack.encode(v), as zerorpc-node uses it), except where noted.
var goldenVectors = []struct {
	name string
	src  string // what produced hex
	hex  string
	want any
}{
	{
		"zerorpc event",
		`({'message_id': b'` + mid + `', 'v': 3}, 'add', (1, 2.5))`,
		"9382aa6d6573736167655f6964c4203030303030303031343163306235653166376234346135306135653466333564a17603a36164649201cb4004000000000000",
		[]any{map[string]any{"message_id": []byte(mid), "v": int64(3)}, "add", []any{int64(1), 2.5}},
	},
	{
		"zerorpc reply",
		`({'message_id': b'` + rid + `', 'v': 3, 'response_to': b'` + mid + `'}, 'OK', (3.5,))`,
		"9383aa6d6573736167655f6964c4203030303030303031343163306235653166376234346135306135653466333565a17603ab726573706f6e73655f746fc4203030303030303031343163306235653166376234346135306135653466333564a24f4b91cb400c000000000000",
		[]any{map[string]any{"message_id": []byte(rid), "v": int64(3), "response_to": []byte(mid)}, "OK", []any{3.5}},
	},
	{
		"zerorpc error",
		`(header, 'ERR', ('NameError', 'Unknown command', ''))`,
		"9383aa6d6573736167655f6964c4203030303030303031343163306235653166376234346135306135653466333565a17603ab726573706f6e73655f746fc4203030303030303031343163306235653166376234346135306135653466333564a345525293a94e616d654572726f72af556e6b6e6f776e20636f6d6d616e64a0",
		[]any{map[string]any{"message_id": []byte(rid), "v": int64(3), "response_to": []byte(mid)}, "ERR", []any{"NameError", "Unknown command", ""}},
	},
	{
		"zerorpc heartbeat",
		`(header, '_zpc_hb', (None,))`,
		"9383aa6d6573736167655f6964c4203030303030303031343163306235653166376234346135306135653466333565a17603ab726573706f6e73655f746fc4203030303030303031343163306235653166376234346135306135653466333564a75f7a70635f686291c0",
		[]any{map[string]any{"message_id": []byte(rid), "v": int64(3), "response_to": []byte(mid)}, "_zpc_hb", []any{nil}},
	},
	{
		"int keys",
		`{1: {2: 'x', -3: [None, True, False]}, 'k': b'\x00\xff'}`,
		"82018202a178fd93c0c3c2a16bc40200ff",
		map[any]any{int64(1): map[any]any{int64(2): "x", int64(-3): []any{nil, true, false}}, "k": []byte{0, 0xff}},
	},
	{
		"ints",
		`[0, 127, 128, 255, 256, 65535, 65536, 2**32-1, 2**32, 2**63-1, 2**63, 2**64-1, -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31-1, -2**63]`,
		"dc0016007fcc80ccffcd0100cdffffce00010000ceffffffffcf0000000100000000cf7fffffffffffffffcf8000000000000000cfffffffffffffffffffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff7fffffffd38000000000000000",
		[]any{int64(0), int64(127), int64(128), int64(255), int64(256), int64(65535), int64(65536),
			int64(math.MaxUint32), int64(math.MaxUint32 + 1), int64(math.MaxInt64), uint64(math.MaxInt64 + 1), uint64(math.MaxUint64),
			int64(-1), int64(-32), int64(-33), int64(-128), int64(-129), int64(-32768), int64(-32769),
			int64(math.MinInt32), int64(math.MinInt32 - 1), int64(math.MinInt64)},
	},
	{
		"floats",
		`[0.0, -0.0, 1.5, 1e300, float('inf'), float('-inf')]`,
		"96cb0000000000000000cb8000000000000000cb3ff8000000000000cb7e37e43c8800759ccb7ff0000000000000cbfff0000000000000",
		[]any{0.0, math.Copysign(0, -1), 1.5, 1e300, math.Inf(1), math.Inf(-1)},
	},
	{
		"float32",
		`packb([1.5, -0.25], use_single_float=True)`,
		"92ca3fc00000cabe800000",
		[]any{float32(1.5), float32(-0.25)},
	},
	{
		"float32 NaN (hand-written)",
		"ca 7fc00000",
		"ca7fc00000",
		float32(math.NaN()),
	},
	{
		"strs",
		`['', 'h\u00e9llo', '\u65e5\u672c\u8a9e', 'a'*31, 'a'*32]`,
		"95a0a668c3a96c6c6fa9e697a5e69cace8aa9ebf61616161616161616161616161616161616161616161616161616161616161d9206161616161616161616161616161616161616161616161616161616161616161",
		[]any{"", "héllo", "日本語", strings.Repeat("a", 31), strings.Repeat("a", 32)},
	},
	{
		"bins",
		`[b'', b'\x00\x01\x02']`,
		"92c400c403000102",
		[]any{[]byte{}, []byte{0, 1, 2}},
	},
	{
		"ext",
		`[ExtType(5, b'abc'), ExtType(127, b'12345678')]`,
		"92c70305616263d77f3132333435363738",
		[]any{Ext{5, []byte("abc")}, Ext{127, []byte("12345678")}},
	},
	{
		"bin key",
		`{b'k': 1}`,
		"81c4016b01",
		map[any]any{BinKey("k"): int64(1)},
	},
	{
		"msgpack-lite event",
		`[{message_id: "4b0c…", v: 3}, "add", [1, 2.5, 3000000000, -5, -200, Buffer.from([1,2])]]`,
		"9382aa6d6573736167655f6964d92434623063336231652d386635612d346130632d396533652d316432663361346235633664a17603a36164649601cb4004000000000000ceb2d05e00fbd1ff38c4020102",
		[]any{map[string]any{"message_id": "4b0c3b1e-8f5a-4a0c-9e3e-1d2f3a4b5c6d", "v": int64(3)}, "add",
			[]any{int64(1), 2.5, int64(3000000000), int64(-5), int64(-200), []byte{1, 2}}},
	},
	{
		"msgpack-lite ints past 32 bits",
		`[2147483647, 2147483648, -2147483648, -2147483649, 4294967295]`,
		"95ce7fffffffce80000000d280000000cbc1e0000000200000ceffffffff",
		[]any{int64(math.MaxInt32), int64(math.MaxInt32 + 1), int64(math.MinInt32), float64(math.MinInt32 - 1), int64(math.MaxUint32)},
	},
}

func TestGoldenVectors(t *testing.T) {
	for _, tt := range goldenVectors {
		t.Run(tt.name, func(t *testing.T) {
			in := unhex(t, tt.hex)
			got, rest, err := ReadAny(in)
			if err != nil || len(rest) != 0 {
				t.Fatalf("ReadAny(%s) = %#v, rest %x, %v", tt.src, got, rest, err)
			}
			if !equalValues(got, tt.want) {
				t.Errorf("ReadAny(%s) = %#v, want %#v", tt.src, got, tt.want)
			}
			again, _, err := ReadAny(mustAppend(t, got))
			if err != nil || !equalValues(again, got) {
				t.Errorf("ReadAny(Append(ReadAny(%s))) = %#v, %v, want %#v", tt.src, again, err, got)
			}
		})
	}
}

func TestGoldenEventIntoStructs(t *testing.T) {
	type header struct {
		MessageID  []byte `msgpack:"message_id"`
		Version    int    `msgpack:"v"`
		ResponseTo []byte `msgpack:"response_to,omitempty"`
	}
	in := unhex(t, goldenVectors[1].hex)
	n, rest, err := ReadArrayHeader(in)
	if err != nil || n != 3 {
		t.Fatalf("ReadArrayHeader = %d, %v", n, err)
	}
	var h header
	var name string
	var args []float64
	for _, target := range []any{&h, &name, &args} {
		if rest, err = Unmarshal(rest, target); err != nil {
			t.Fatalf("Unmarshal into %T: %v", target, err)
		}
	}
	want := header{MessageID: []byte(rid), Version: 3, ResponseTo: []byte(mid)}
	if !reflect.DeepEqual(h, want) || name != "OK" || !reflect.DeepEqual(args, []float64{3.5}) || len(rest) != 0 {
		t.Errorf("got %+v %q %v rest %x, want %+v OK [3.5]", h, name, args, rest, want)
	}
}

// TestCanonicalReencode checks Append(ReadAny(x)) == x for inputs in the
// smallest encoding without maps of two or more keys (Go map order varies).
func TestCanonicalReencode(t *testing.T) {
	ins := [][]byte{
		unhex(t, goldenVectors[5].hex), // ints
		unhex(t, goldenVectors[6].hex), // floats
		unhex(t, goldenVectors[7].hex), // float32
		unhex(t, goldenVectors[9].hex), // strs
		unhex(t, goldenVectors[10].hex),
		unhex(t, goldenVectors[11].hex),
		unhex(t, goldenVectors[12].hex), // bin key
		AppendString(nil, strings.Repeat("z", 65536)),
		AppendBytes(nil, make([]byte, 256)),
		AppendExt(nil, 9, make([]byte, 3)),
		AppendExt(nil, 9, make([]byte, 16)),
		AppendExt(nil, 9, make([]byte, 65536)),
		append(AppendArrayHeader(nil, 16), make([]byte, 16)...),
		append(AppendArrayHeader(nil, 65536), make([]byte, 65536)...),
		unhex(t, "81a16b8102c0"),
		unhex(t, "81c0c3"), // {nil: true}
		unhex(t, "910a"),
	}
	for _, in := range ins {
		v, _, err := ReadAny(in)
		if err != nil {
			t.Fatalf("ReadAny(%.20x…): %v", in, err)
		}
		if out := mustAppend(t, v); !bytes.Equal(out, in) {
			t.Errorf("Append(ReadAny(%.20x…)) = %.20x… (%d bytes), want %d bytes", in, out, len(out), len(in))
		}
	}
}

func TestReadAnyCopies(t *testing.T) {
	in := mustAppend(t, []any{[]byte("ab"), Ext{1, []byte("cd")}})
	v, _, err := ReadAny(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0
	}
	want := []any{[]byte("ab"), Ext{1, []byte("cd")}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("ReadAny result changed with its input: %#v", v)
	}
}

func TestReadAnyMapKeys(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want any
		err  bool
	}{
		{"str keys", "82a16101a16202", map[string]any{"a": int64(1), "b": int64(2)}, false},
		{"str then int key", "82a1610102c3", map[any]any{"a": int64(1), int64(2): true}, false},
		{"nil key", "81c001", map[any]any{nil: int64(1)}, false},
		{"array key", "819001", nil, true},
		{"map key", "818001", nil, true},
		{"ext key", "81d4010101", nil, true},
	}
	for _, tt := range tests {
		got, _, err := ReadAny(unhex(t, tt.in))
		var te *TypeError
		if tt.err != errors.As(err, &te) || !equalValues(got, tt.want) {
			t.Errorf("ReadAny(%s) %s = %#v, %v, want %#v (error %v)", tt.in, tt.name, got, err, tt.want, tt.err)
		}
	}
}

func TestAppendValues(t *testing.T) {
	type inner struct{ X int }
	one := 1
	tests := []struct {
		name string
		in   any
		want any // ReadAny of the encoding
	}{
		{"int kinds", []any{int8(-1), int16(300), int32(-70000), int64(5), uint8(200), uint16(1), uint32(2), uint(3), uintptr(4)},
			[]any{int64(-1), int64(300), int64(-70000), int64(5), int64(200), int64(1), int64(2), int64(3), int64(4)}},
		{"named types", []any{myInt(7), myString("s"), myBytes{1}}, []any{int64(7), "s", []byte{1}}},
		{"pointers", []any{&one, (*int)(nil), new(any)}, []any{int64(1), nil, nil}},
		{"nil slices and maps", []any{[]any(nil), []int(nil), map[string]int(nil), []byte(nil)}, []any{nil, nil, nil, []byte{}}},
		{"byte array", [3]byte{1, 2, 3}, []byte{1, 2, 3}},
		{"int array", [2]int{1, 2}, []any{int64(1), int64(2)}},
		{"typed slice", []string{"a", "b"}, []any{"a", "b"}},
		{"typed map", map[int]bool{1: true}, map[any]any{int64(1): true}},
		{"map[any]any", map[any]any{BinKey("k"): 1.5}, map[any]any{BinKey("k"): 1.5}},
		{"raw", []any{Raw{0x93, 1, 2, 3}, Raw(nil)}, []any{[]any{int64(1), int64(2), int64(3)}, nil}},
		{"ext", Ext{-1, []byte{1}}, Ext{-1, []byte{1}}},
		{"struct", inner{X: 4}, map[string]any{"X": int64(4)}},
		{"struct pointer in map", map[string]*inner{"a": {1}, "b": nil}, map[string]any{"a": map[string]any{"X": int64(1)}, "b": nil}},
	}
	for _, tt := range tests {
		got, _, err := ReadAny(mustAppend(t, tt.in))
		if err != nil || !equalValues(got, tt.want) {
			t.Errorf("%s: ReadAny(Append(%#v)) = %#v, %v, want %#v", tt.name, tt.in, got, err, tt.want)
		}
	}
}

type (
	myInt    int
	myString string
	myBytes  []byte
)

func TestAppendErrors(t *testing.T) {
	type node struct{ Next *node }
	cyc := &node{}
	cyc.Next = cyc
	self := []any{nil}
	self[0] = self
	loop := new(any)
	*loop = loop
	tests := []struct {
		name string
		in   any
		want error
	}{
		{"chan", make(chan int), nil},
		{"func", func() {}, nil},
		{"complex", complex(1, 2), nil},
		{"chan in map", map[string]any{"c": make(chan int)}, nil},
		{"pointer cycle via struct", cyc, ErrTooDeep},
		{"slice cycle", self, ErrTooDeep},
		{"pointer loop", loop, ErrTooDeep},
	}
	for _, tt := range tests {
		out, err := Append([]byte{0xaa}, tt.in)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("Append(%s) error = %v, want %v", tt.name, err, cmpOr(tt.want, "an error"))
		}
		if !bytes.Equal(out, []byte{0xaa}) {
			t.Errorf("Append(%s) on error returned %x, want the input", tt.name, out)
		}
	}
}

func cmpOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}

func TestAppendStructTags(t *testing.T) {
	type Embedded struct{ E int }
	type embedded struct{ U int }
	type S struct {
		Embedded
		embedded
		A       int    `msgpack:"a"`
		B       string `msgpack:",omitempty"`
		C       []int  `msgpack:"c,omitempty"`
		Skip    int    `msgpack:"-"`
		private int
		P       *int   `msgpack:"p,omitempty"`
		E       string // hides Embedded.E
	}
	got, _, err := ReadAny(mustAppend(t, S{Embedded: Embedded{1}, embedded: embedded{2}, A: 3, Skip: 4, private: 5, E: "top"}))
	want := map[string]any{"U": int64(2), "a": int64(3), "E": "top"}
	if err != nil || !equalValues(got, want) {
		t.Errorf("ReadAny(Append(S)) = %#v, %v, want %#v", got, err, want)
	}
}
