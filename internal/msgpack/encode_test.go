package msgpack

import (
	"bytes"
	"encoding/hex"
	"math"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestAppendSmallest checks the exact bytes of each family at its
// boundaries. head is the expected encoding up to the payload; payload
// bytes, if any, must follow it.
func TestAppendSmallest(t *testing.T) {
	str := func(n int) string { return strings.Repeat("s", n) }
	bin := func(n int) []byte { return bytes.Repeat([]byte{0xb}, n) }
	tests := []struct {
		name    string
		got     []byte
		head    string
		payload int
	}{
		{"nil", AppendNil(nil), "c0", 0},
		{"false", AppendBool(nil, false), "c2", 0},
		{"true", AppendBool(nil, true), "c3", 0},

		{"uint 0", AppendUint(nil, 0), "00", 0},
		{"uint 127", AppendUint(nil, 127), "7f", 0},
		{"uint 128", AppendUint(nil, 128), "cc80", 0},
		{"uint 255", AppendUint(nil, 255), "ccff", 0},
		{"uint 256", AppendUint(nil, 256), "cd0100", 0},
		{"uint 65535", AppendUint(nil, 65535), "cdffff", 0},
		{"uint 65536", AppendUint(nil, 65536), "ce00010000", 0},
		{"uint MaxUint32", AppendUint(nil, math.MaxUint32), "ceffffffff", 0},
		{"uint MaxUint32+1", AppendUint(nil, math.MaxUint32+1), "cf0000000100000000", 0},
		{"uint MaxUint64", AppendUint(nil, math.MaxUint64), "cfffffffffffffffff", 0},

		{"int 0", AppendInt(nil, 0), "00", 0},
		{"int 127", AppendInt(nil, 127), "7f", 0},
		{"int 128", AppendInt(nil, 128), "cc80", 0},
		{"int 255", AppendInt(nil, 255), "ccff", 0},
		{"int 256", AppendInt(nil, 256), "cd0100", 0},
		{"int 65535", AppendInt(nil, 65535), "cdffff", 0},
		{"int 65536", AppendInt(nil, 65536), "ce00010000", 0},
		{"int MaxUint32", AppendInt(nil, math.MaxUint32), "ceffffffff", 0},
		{"int MaxUint32+1", AppendInt(nil, math.MaxUint32+1), "cf0000000100000000", 0},
		{"int MaxInt64", AppendInt(nil, math.MaxInt64), "cf7fffffffffffffff", 0},
		{"int -1", AppendInt(nil, -1), "ff", 0},
		{"int -32", AppendInt(nil, -32), "e0", 0},
		{"int -33", AppendInt(nil, -33), "d0df", 0},
		{"int -128", AppendInt(nil, -128), "d080", 0},
		{"int -129", AppendInt(nil, -129), "d1ff7f", 0},
		{"int -32768", AppendInt(nil, -32768), "d18000", 0},
		{"int -32769", AppendInt(nil, -32769), "d2ffff7fff", 0},
		{"int MinInt32", AppendInt(nil, math.MinInt32), "d280000000", 0},
		{"int MinInt32-1", AppendInt(nil, math.MinInt32-1), "d3ffffffff7fffffff", 0},
		{"int MinInt64", AppendInt(nil, math.MinInt64), "d38000000000000000", 0},

		{"float32 1.5", AppendFloat32(nil, 1.5), "ca3fc00000", 0},
		{"float64 1.5", AppendFloat64(nil, 1.5), "cb3ff8000000000000", 0},
		{"float64 -0", AppendFloat64(nil, math.Copysign(0, -1)), "cb8000000000000000", 0},

		{"str 0", AppendString(nil, ""), "a0", 0},
		{"str 31", AppendString(nil, str(31)), "bf", 31},
		{"str 32", AppendString(nil, str(32)), "d920", 32},
		{"str 255", AppendString(nil, str(255)), "d9ff", 255},
		{"str 256", AppendString(nil, str(256)), "da0100", 256},
		{"str 65535", AppendString(nil, str(65535)), "daffff", 65535},
		{"str 65536", AppendString(nil, str(65536)), "db00010000", 65536},
		{"strbytes 31", AppendStringBytes(nil, []byte(str(31))), "bf", 31},
		{"strbytes 32", AppendStringBytes(nil, []byte(str(32))), "d920", 32},

		{"bin nil", AppendBytes(nil, nil), "c400", 0},
		{"bin 0", AppendBytes(nil, []byte{}), "c400", 0},
		{"bin 255", AppendBytes(nil, bin(255)), "c4ff", 255},
		{"bin 256", AppendBytes(nil, bin(256)), "c50100", 256},
		{"bin 65535", AppendBytes(nil, bin(65535)), "c5ffff", 65535},
		{"bin 65536", AppendBytes(nil, bin(65536)), "c600010000", 65536},

		{"array 0", AppendArrayHeader(nil, 0), "90", 0},
		{"array 15", AppendArrayHeader(nil, 15), "9f", 0},
		{"array 16", AppendArrayHeader(nil, 16), "dc0010", 0},
		{"array 65535", AppendArrayHeader(nil, 65535), "dcffff", 0},
		{"array 65536", AppendArrayHeader(nil, 65536), "dd00010000", 0},
		{"map 0", AppendMapHeader(nil, 0), "80", 0},
		{"map 15", AppendMapHeader(nil, 15), "8f", 0},
		{"map 16", AppendMapHeader(nil, 16), "de0010", 0},
		{"map 65535", AppendMapHeader(nil, 65535), "deffff", 0},
		{"map 65536", AppendMapHeader(nil, 65536), "df00010000", 0},

		{"ext 0", AppendExt(nil, 1, nil), "c70001", 0},
		{"ext 1", AppendExt(nil, 1, bin(1)), "d401", 1},
		{"ext 2", AppendExt(nil, 2, bin(2)), "d502", 2},
		{"ext 3", AppendExt(nil, 3, bin(3)), "c70303", 3},
		{"ext 4", AppendExt(nil, 4, bin(4)), "d604", 4},
		{"ext 8", AppendExt(nil, 5, bin(8)), "d705", 8},
		{"ext 16", AppendExt(nil, 6, bin(16)), "d806", 16},
		{"ext 17", AppendExt(nil, -1, bin(17)), "c711ff", 17},
		{"ext 255", AppendExt(nil, -128, bin(255)), "c7ff80", 255},
		{"ext 256", AppendExt(nil, 127, bin(256)), "c801007f", 256},
		{"ext 65536", AppendExt(nil, 7, bin(65536)), "c90001000007", 65536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := unhex(t, tt.head)
			if len(tt.got) != len(head)+tt.payload || !bytes.HasPrefix(tt.got, head) {
				end := min(len(tt.got), len(head)+4)
				t.Errorf("got %x… (%d bytes), want %s + %d payload bytes", tt.got[:end], len(tt.got), tt.head, tt.payload)
			}
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	b := AppendString([]byte{0xaa}, "x")
	if want := []byte{0xaa, 0xa1, 'x'}; !bytes.Equal(b, want) {
		t.Errorf("AppendString(prefix) = %x, want %x", b, want)
	}
}

func TestAppendZeroAllocs(t *testing.T) {
	buf := make([]byte, 0, 256)
	data := []byte("0123456789abcdef")
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendArrayHeader(buf[:0], 3)
		b = AppendMapHeader(b, 2)
		b = AppendString(b, "message_id")
		b = AppendBytes(b, data)
		b = AppendStringBytes(b, data)
		b = AppendInt(b, -70000)
		b = AppendUint(b, math.MaxUint64)
		b = AppendFloat32(b, 1)
		b = AppendFloat64(b, 2)
		b = AppendBool(b, true)
		b = AppendNil(b)
		_ = AppendExt(b, 1, data)
	})
	if allocs != 0 {
		t.Errorf("Append* allocated %v times per run, want 0", allocs)
	}
}

func TestAppendHeaderPanicsOnBadLength(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("AppendArrayHeader(-1) did not panic")
		}
	}()
	AppendArrayHeader(nil, -1)
}
