package pushserver

import (
	"sync"

	"github.com/mortarhq/mortar/internal/pushwire"
)

// wireEncoding is the encoding a message goes out in: the connection's,
// JSON before it chose one, and always JSON on SSE.
func wireEncoding(tr transport, enc pushwire.Encoding) pushwire.Encoding {
	if tr == transportSSE {
		return pushwire.JSON
	}
	return cmpEnc(enc)
}

// encode frames m for a transport and encoding.
func (s *Server) encode(tr transport, enc pushwire.Encoding, m *pushwire.Message) ([]byte, error) {
	enc = wireEncoding(tr, enc)
	body, err := pushwire.Append(nil, enc, m)
	if err != nil {
		return nil, err
	}
	return frameBody(tr, enc, body), nil
}

// frameBody wraps an encoded message for its transport.
func frameBody(tr transport, enc pushwire.Encoding, body []byte) []byte {
	switch tr {
	case transportWS:
		op := pushwire.OpcodeText
		if enc == pushwire.Msgpack {
			op = pushwire.OpcodeBinary
		}
		return pushwire.AppendFrame(nil, op, body, true, nil)
	case transportTCP:
		return pushwire.AppendLenFrame(nil, body)
	default: // SSE: one data line; JSON has no raw newlines
		b := make([]byte, 0, len(body)+8)
		b = append(b, "data: "...)
		b = append(b, body...)
		return append(b, '\n', '\n')
	}
}

// heartbeat returns the ping a transport sends when it has been quiet.
func heartbeat(tr transport, enc pushwire.Encoding) []byte {
	switch tr {
	case transportWS:
		return wsPing
	case transportSSE:
		return ssePing
	}
	if enc == pushwire.Msgpack {
		return tcpPingMsgpack
	}
	return tcpPingJSON
}

var (
	wsPing         = pushwire.AppendFrame(nil, pushwire.OpcodePing, nil, true, nil)
	ssePing        = []byte(":\n\n")
	tcpPingJSON    = mustFrame(transportTCP, pushwire.JSON, &pushwire.Message{Op: pushwire.OpPing})
	tcpPingMsgpack = mustFrame(transportTCP, pushwire.Msgpack, &pushwire.Message{Op: pushwire.OpPing})
)

func mustFrame(tr transport, enc pushwire.Encoding, m *pushwire.Message) []byte {
	body, err := pushwire.Append(nil, enc, m)
	if err != nil {
		panic(err)
	}
	return frameBody(tr, enc, body)
}

// frame is one push, encoded at most once per transport and encoding
// however many connections it goes to.
type frame struct {
	msg     pushwire.Message
	channel string // set for channel pushes: what recovery holds back
	offset  uint64

	once [numTransports][2]sync.Once
	b    [numTransports][2][]byte
	err  [numTransports][2]error
}

func newFrame(m pushwire.Message) *frame {
	return &frame{msg: m, channel: m.Channel, offset: m.Offset}
}

func (f *frame) bytes(s *Server, tr transport, enc pushwire.Encoding) ([]byte, error) {
	enc = wireEncoding(tr, enc)
	i := int(enc - 1)
	f.once[tr][i].Do(func() { f.b[tr][i], f.err[tr][i] = s.encode(tr, enc, &f.msg) })
	return f.b[tr][i], f.err[tr][i]
}
