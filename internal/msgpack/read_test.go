package msgpack

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestNextType(t *testing.T) {
	tests := []struct {
		in   string
		want Type
	}{
		{"", InvalidType}, {"c1", InvalidType}, {"c0", NilType}, {"c2", BoolType}, {"c3", BoolType},
		{"00", IntType}, {"7f", IntType}, {"e0", IntType}, {"ff", IntType}, {"cc", IntType}, {"d3", IntType},
		{"ca", FloatType}, {"cb", FloatType}, {"a0", StrType}, {"bf", StrType}, {"d9", StrType}, {"db", StrType},
		{"c4", BinType}, {"c6", BinType}, {"90", ArrayType}, {"9f", ArrayType}, {"dc", ArrayType}, {"dd", ArrayType},
		{"80", MapType}, {"8f", MapType}, {"de", MapType}, {"df", MapType},
		{"c7", ExtType}, {"c9", ExtType}, {"d4", ExtType}, {"d8", ExtType},
	}
	for _, tt := range tests {
		if got := NextType(unhex(t, tt.in)); got != tt.want {
			t.Errorf("NextType(%s) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTypeString(t *testing.T) {
	want := []string{"invalid", "nil", "bool", "int", "float", "str", "bin", "array", "map", "ext", "invalid"}
	for i, w := range want {
		if got := Type(i).String(); got != w {
			t.Errorf("Type(%d).String() = %q, want %q", i, got, w)
		}
	}
}

func TestReadInt(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr error
	}{
		{"00", 0, nil}, {"7f", 127, nil}, {"ff", -1, nil}, {"e0", -32, nil},
		{"cc80", 128, nil}, {"cdffff", 65535, nil}, {"ceffffffff", math.MaxUint32, nil},
		{"cf7fffffffffffffff", math.MaxInt64, nil}, {"cf8000000000000000", 0, ErrOverflow},
		{"d080", -128, nil}, {"d005", 5, nil}, {"d18000", -32768, nil}, {"d280000000", math.MinInt32, nil},
		{"d38000000000000000", math.MinInt64, nil},
		{"", 0, ErrShortBytes}, {"cd01", 0, ErrShortBytes}, {"c1", 0, errInvalidByte},
	}
	for _, tt := range tests {
		in := unhex(t, tt.in)
		if tt.wantErr == nil {
			in = append(in, 0xc0)
		}
		got, rest, err := ReadInt(in)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ReadInt(%s) = %d, %v, want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && !bytes.Equal(rest, []byte{0xc0}) {
			t.Errorf("ReadInt(%s) rest = %x, want c0", tt.in, rest)
		}
	}
}

func TestReadUint(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr error
	}{
		{"00", 0, nil}, {"cfffffffffffffffff", math.MaxUint64, nil}, {"d07f", 127, nil},
		{"ff", 0, ErrOverflow}, {"d3ffffffffffffffff", 0, ErrOverflow},
	}
	for _, tt := range tests {
		got, _, err := ReadUint(unhex(t, tt.in))
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ReadUint(%s) = %d, %v, want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestReadTypeErrors(t *testing.T) {
	str := unhex(t, "a161")
	tests := []struct {
		name string
		read func([]byte) ([]byte, error)
		want string
	}{
		{"ReadNil", ReadNil, "msgpack: want nil, got str"},
		{"ReadBool", func(b []byte) ([]byte, error) { _, r, err := ReadBool(b); return r, err }, "msgpack: want bool, got str"},
		{"ReadInt", func(b []byte) ([]byte, error) { _, r, err := ReadInt(b); return r, err }, "msgpack: want int, got str"},
		{"ReadUint", func(b []byte) ([]byte, error) { _, r, err := ReadUint(b); return r, err }, "msgpack: want int, got str"},
		{"ReadFloat64", func(b []byte) ([]byte, error) { _, r, err := ReadFloat64(b); return r, err }, "msgpack: want float, got str"},
		{"ReadBytes", func(b []byte) ([]byte, error) { _, r, err := ReadBytes(b); return r, err }, "msgpack: want bin, got str"},
		{"ReadArrayHeader", func(b []byte) ([]byte, error) { _, r, err := ReadArrayHeader(b); return r, err }, "msgpack: want array, got str"},
		{"ReadMapHeader", func(b []byte) ([]byte, error) { _, r, err := ReadMapHeader(b); return r, err }, "msgpack: want map, got str"},
		{"ReadExt", func(b []byte) ([]byte, error) { _, _, r, err := ReadExt(b); return r, err }, "msgpack: want ext, got str"},
	}
	for _, tt := range tests {
		rest, err := tt.read(str)
		var te *TypeError
		if !errors.As(err, &te) || err.Error() != tt.want {
			t.Errorf("%s(str) error = %v, want %s", tt.name, err, tt.want)
		}
		if !bytes.Equal(rest, str) {
			t.Errorf("%s(str) rest = %x, want the input", tt.name, rest)
		}
	}
	if _, _, err := ReadStringBytes(unhex(t, "c400")); err == nil {
		t.Error("ReadStringBytes(bin) succeeded, want a type error")
	}
}

func TestReadScalars(t *testing.T) {
	b := AppendBool(nil, true)
	b = AppendFloat32(b, 1.5)
	b = AppendFloat64(b, -2.25)
	b = AppendInt(b, -7)
	b = AppendUint(b, math.MaxUint64)
	b = AppendString(b, "héllo")
	b = AppendBytes(b, []byte{1, 2})
	b = AppendExt(b, -5, []byte("abc"))
	b = AppendNil(b)

	v, b, err := ReadBool(b)
	check(t, "ReadBool", v, true, err)
	f, b, err := ReadFloat64(b)
	check(t, "ReadFloat64(float32)", f, 1.5, err)
	f, b, err = ReadFloat64(b)
	check(t, "ReadFloat64(float64)", f, -2.25, err)
	f, b, err = ReadFloat64(b)
	check(t, "ReadFloat64(int)", f, -7.0, err)
	f, b, err = ReadFloat64(b)
	check(t, "ReadFloat64(uint64)", f, float64(math.MaxUint64), err)
	s, b, err := ReadString(b)
	check(t, "ReadString", s, "héllo", err)
	p, b, err := ReadBytes(b)
	check(t, "ReadBytes", string(p), "\x01\x02", err)
	typ, data, b, err := ReadExt(b)
	check(t, "ReadExt", Ext{typ, data}, Ext{-5, []byte("abc")}, err)
	b, err = ReadNil(b)
	check(t, "ReadNil rest", len(b), 0, err)
}

func check[T any](t *testing.T, name string, got, want T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !equalValues(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func TestReadBytesAliasWithCappedCapacity(t *testing.T) {
	in := AppendBytes(nil, []byte("ab"))
	in = AppendString(in, "cd")
	v, _, err := ReadBytes(in)
	if err != nil {
		t.Fatal(err)
	}
	if &v[0] != &in[2] {
		t.Error("ReadBytes copied, want an alias")
	}
	if cap(v) != 2 {
		t.Errorf("cap(ReadBytes) = %d, want 2 so appends cannot clobber the rest", cap(v))
	}
}

func TestReadHeaders(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		isMap   bool
		want    int
		wantErr error
	}{
		{"fixarray", append(AppendArrayHeader(nil, 2), 1, 2), false, 2, nil},
		{"array16", append(AppendArrayHeader(nil, 16), make([]byte, 16)...), false, 16, nil},
		{"array32 claims 2^32-1 in 10 bytes", unhex(t, "ddffffffff0000000000"), false, 0, ErrShortBytes},
		{"array16 one byte short", append(AppendArrayHeader(nil, 16), make([]byte, 15)...), false, 0, ErrShortBytes},
		{"fixmap", append(AppendMapHeader(nil, 1), 1, 2), true, 1, nil},
		{"map needs two bytes a pair", append(AppendMapHeader(nil, 2), 1, 2, 3), true, 0, ErrShortBytes},
		{"map32 claims 2^32-1", unhex(t, "dfffffffff00"), true, 0, ErrShortBytes},
		{"truncated header", unhex(t, "dc00"), false, 0, ErrShortBytes},
	}
	for _, tt := range tests {
		read := ReadArrayHeader
		if tt.isMap {
			read = ReadMapHeader
		}
		n, _, err := read(tt.in)
		if n != tt.want || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: got %d, %v, want %d, %v", tt.name, n, err, tt.want, tt.wantErr)
		}
	}
}

func TestSkip(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"int", AppendInt(nil, -70000)},
		{"str", AppendString(nil, strings.Repeat("x", 300))},
		{"empty array", AppendArrayHeader(nil, 0)},
		{"empty map", AppendMapHeader(nil, 0)},
		{"nested", mustAppend(t, []any{map[string]any{"a": []any{1, []any{}, map[string]any{}}}, "b", Ext{1, []byte{2}}})},
		{"ext32", AppendExt(nil, 3, make([]byte, 70000))},
	}
	for _, tt := range tests {
		in := append(tt.in[:len(tt.in):len(tt.in)], 0xc3)
		rest, err := Skip(in)
		if err != nil || !bytes.Equal(rest, []byte{0xc3}) {
			t.Errorf("Skip(%s) = %x, %v, want c3", tt.name, rest, err)
		}
		if !Valid(tt.in) {
			t.Errorf("Valid(%s) = false", tt.name)
		}
	}
}

func TestDepthLimit(t *testing.T) {
	nested := func(n int, inner byte) []byte {
		return append(bytes.Repeat([]byte{0x91}, n), inner)
	}
	for _, tt := range []struct {
		depth   int
		inner   byte
		wantErr error
	}{
		{MaxDepth, 0x01, nil},
		{MaxDepth - 1, 0x90, nil},
		{MaxDepth, 0x90, ErrTooDeep},
		{MaxDepth + 1, 0x01, ErrTooDeep},
		{10000, 0x01, ErrTooDeep},
	} {
		in := nested(tt.depth, tt.inner)
		if _, err := Skip(in); !errors.Is(err, tt.wantErr) {
			t.Errorf("Skip(%d nested arrays + %x) = %v, want %v", tt.depth, tt.inner, err, tt.wantErr)
		}
		if _, _, err := ReadAny(in); !errors.Is(err, tt.wantErr) {
			t.Errorf("ReadAny(%d nested arrays + %x) = %v, want %v", tt.depth, tt.inner, err, tt.wantErr)
		}
		var v any
		if _, err := Unmarshal(in, &v); !errors.Is(err, tt.wantErr) {
			t.Errorf("Unmarshal(%d nested arrays + %x) = %v, want %v", tt.depth, tt.inner, err, tt.wantErr)
		}
		var typed [][][][]any
		if _, err := Unmarshal(in, &typed); tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("Unmarshal(%d nested arrays) into [][][][]any = %v, want %v", tt.depth, err, tt.wantErr)
		}
	}
}

func TestReadZeroAllocs(t *testing.T) {
	b := mustAppend(t, []any{map[string]any{"message_id": []byte("0123456789abcdef"), "v": 3}, "echo", []any{-1.5, true}})
	allocs := testing.AllocsPerRun(100, func() {
		_, r, _ := ReadArrayHeader(b)
		_, r, _ = ReadMapHeader(r)
		for range 2 {
			_, r, _ = ReadStringBytes(r)
			r, _ = Skip(r)
		}
		_, r, _ = ReadStringBytes(r)
		_, r, _ = ReadArrayHeader(r)
		_, r, _ = ReadFloat64(r)
		_, _, _ = ReadBool(r)
	})
	if allocs != 0 {
		t.Errorf("Read* allocated %v times per run, want 0", allocs)
	}
}
