package msgpack

import "testing"

var benchID = []byte("0123456789abcdef")

// appendEvent encodes a zerorpc-like event [{message_id, v}, "echo", [id]].
func appendEvent(b []byte) []byte {
	b = AppendArrayHeader(b, 3)
	b = AppendMapHeader(b, 2)
	b = AppendString(b, "message_id")
	b = AppendBytes(b, benchID)
	b = AppendString(b, "v")
	b = AppendInt(b, 3)
	b = AppendString(b, "echo")
	b = AppendArrayHeader(b, 1)
	return AppendBytes(b, benchID)
}

// readEvent decodes what appendEvent wrote, without allocating.
func readEvent(b []byte) (id, name, arg []byte, v int64, err error) {
	if _, b, err = ReadArrayHeader(b); err != nil {
		return
	}
	var n int
	if n, b, err = ReadMapHeader(b); err != nil {
		return
	}
	for range n {
		var key []byte
		if key, b, err = ReadStringBytes(b); err != nil {
			return
		}
		switch string(key) {
		case "message_id":
			id, b, err = ReadBytes(b)
		case "v":
			v, b, err = ReadInt(b)
		default:
			b, err = Skip(b)
		}
		if err != nil {
			return
		}
	}
	if name, b, err = ReadStringBytes(b); err != nil {
		return
	}
	if _, b, err = ReadArrayHeader(b); err != nil {
		return
	}
	arg, _, err = ReadBytes(b)
	return
}

func BenchmarkEventAppendRead(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for b.Loop() {
		buf = appendEvent(buf[:0])
		if _, _, _, _, err := readEvent(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEventAppendAny(b *testing.B) {
	b.ReportAllocs()
	var ev any = []any{map[string]any{"message_id": benchID, "v": 3}, "echo", []any{benchID}}
	buf := make([]byte, 0, 128)
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventReadAny(b *testing.B) {
	b.ReportAllocs()
	ev := appendEvent(nil)
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if _, _, err := ReadAny(ev); err != nil {
			b.Fatal(err)
		}
	}
}

type benchHeader struct {
	MessageID  []byte `msgpack:"message_id"`
	V          int    `msgpack:"v"`
	ResponseTo []byte `msgpack:"response_to,omitempty"`
}

func BenchmarkUnmarshalStruct(b *testing.B) {
	b.ReportAllocs()
	ev := appendEvent(nil)
	hdr := ev[1:] // the header map
	for b.Loop() {
		var h benchHeader
		if _, err := Unmarshal(hdr, &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStruct(b *testing.B) {
	b.ReportAllocs()
	h := benchHeader{MessageID: benchID, V: 3}
	buf := make([]byte, 0, 128)
	for b.Loop() {
		var err error
		if buf, err = Append(buf[:0], &h); err != nil {
			b.Fatal(err)
		}
	}
}
