package msgpack_test

import (
	"fmt"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// A zerorpc event [header, name, args], written with the append-style
// encoders and read back with the zero-copy readers.
func Example() {
	b := msgpack.AppendArrayHeader(nil, 3)
	b = msgpack.AppendMapHeader(b, 2)
	b = msgpack.AppendString(b, "message_id")
	b = msgpack.AppendBytes(b, []byte("0123456789abcdef"))
	b = msgpack.AppendString(b, "v")
	b = msgpack.AppendInt(b, 3)
	b = msgpack.AppendString(b, "add")
	b, _ = msgpack.Append(b, []any{1, 2.5})

	n, rest, _ := msgpack.ReadArrayHeader(b)
	var header struct {
		MessageID []byte `msgpack:"message_id"`
		Version   int    `msgpack:"v"`
	}
	rest, _ = msgpack.Unmarshal(rest, &header)
	name, rest, _ := msgpack.ReadStringBytes(rest)
	args, rest, err := msgpack.ReadAny(rest)
	fmt.Println(n, string(header.MessageID), header.Version, string(name), args, len(rest), err)
	// Output: 3 0123456789abcdef 3 add [1 2.5] 0 <nil>
}
