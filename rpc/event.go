package rpc

import (
	"fmt"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// Event names of the protocol.
const (
	evOK         = "OK"
	evErr        = "ERR"
	evStream     = "STREAM"
	evStreamDone = "STREAM_DONE"
	evHeartbeat  = "_zpc_hb"
	evMore       = "_zpc_more"
	// evCancel is mortar's extension: the caller gave up on the channel.
	// zerorpc peers ignore events they do not know on a channel.
	evCancel = "_zpc_cancel"
)

// protocolVersion is the zerorpc protocol version mortar speaks.
const protocolVersion = 3

// event is one decoded zerorpc event [header, name, args]. Every slice
// aliases the payload it was decoded from.
type event struct {
	msgID     []byte // msgpack encoding of header.message_id, nil if absent
	respTo    []byte // msgpack encoding of header.response_to, nil if absent
	version   int64
	name      []byte // the event name (str, or bin from old peers)
	args      []byte // msgpack encoding of args
	rawHeader []byte // msgpack encoding of the whole header map
}

// decodeEvent parses payload. A header that is not a map is treated as
// empty, as zerorpc-python does for protocol v1 peers.
func decodeEvent(payload []byte, ev *event) error {
	*ev = event{}
	n, rest, err := msgpack.ReadArrayHeader(payload)
	if err != nil {
		return fmt.Errorf("event: %w", err)
	}
	if n != 3 {
		return fmt.Errorf("event: want an array of 3, got %d elements", n)
	}
	if msgpack.NextType(rest) == msgpack.MapType {
		start := rest
		if rest, err = ev.decodeHeader(rest); err != nil {
			return err
		}
		ev.rawHeader = start[:len(start)-len(rest)]
	} else if rest, err = msgpack.Skip(rest); err != nil {
		return fmt.Errorf("event header: %w", err)
	}
	switch msgpack.NextType(rest) {
	case msgpack.StrType:
		ev.name, rest, err = msgpack.ReadStringBytes(rest)
	case msgpack.BinType:
		ev.name, rest, err = msgpack.ReadBytes(rest)
	default:
		return fmt.Errorf("event name: want str, got %v", msgpack.NextType(rest))
	}
	if err != nil {
		return fmt.Errorf("event name: %w", err)
	}
	args := rest
	if rest, err = msgpack.Skip(rest); err != nil {
		return fmt.Errorf("event args: %w", err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("event: %d trailing bytes", len(rest))
	}
	ev.args = args[:len(args)-len(rest)]
	return nil
}

func (ev *event) decodeHeader(b []byte) ([]byte, error) {
	n, b, err := msgpack.ReadMapHeader(b)
	if err != nil {
		return nil, fmt.Errorf("event header: %w", err)
	}
	for range n {
		var key []byte
		if key, b, err = readKey(b); err != nil {
			return nil, fmt.Errorf("event header key: %w", err)
		}
		val := b
		if b, err = msgpack.Skip(b); err != nil {
			return nil, fmt.Errorf("event header %q: %w", key, err)
		}
		val = val[:len(val)-len(b)]
		switch string(key) {
		case HeaderMessageID:
			ev.msgID = val
		case HeaderResponseTo:
			ev.respTo = val
		case HeaderVersion:
			ev.version, _, _ = msgpack.ReadInt(val)
		}
	}
	return b, nil
}

// readKey reads a map key that is a str, or a bin from Python 2 peers.
func readKey(b []byte) (key, rest []byte, err error) {
	if msgpack.NextType(b) == msgpack.BinType {
		return msgpack.ReadBytes(b)
	}
	return msgpack.ReadStringBytes(b)
}

// headerValue returns the encoding of key's value in a raw header map, or
// nil, without allocating.
func headerValue(raw []byte, key string) []byte {
	n, b, err := msgpack.ReadMapHeader(raw)
	if err != nil {
		return nil
	}
	for range n {
		k, rest, kerr := readKey(b)
		if kerr != nil {
			if rest, err = msgpack.Skip(b); err != nil {
				return nil
			}
		}
		if b, err = msgpack.Skip(rest); err != nil {
			return nil
		}
		if kerr == nil && string(k) == key {
			return rest[:len(rest)-len(b)]
		}
	}
	return nil
}

// parseHeader decodes a raw header map into a Header whose values alias raw.
// Entries with keys that are neither str nor bin are dropped.
func parseHeader(raw []byte) Header {
	var h Header
	n, b, err := msgpack.ReadMapHeader(raw)
	if err != nil {
		return h
	}
	h.keys = make([]string, 0, n)
	h.vals = make([][]byte, 0, n)
	for range n {
		key, rest, kerr := readKey(b)
		if kerr != nil { // a key that is not a name: skip it with its value
			if rest, err = msgpack.Skip(b); err != nil {
				return h
			}
		}
		val := rest
		if b, err = msgpack.Skip(rest); err != nil {
			return h
		}
		if kerr == nil {
			h.keys = append(h.keys, string(key))
			h.vals = append(h.vals, val[:len(val)-len(b)])
		}
	}
	return h
}

// appendEvent appends the msgpack encoding of one event. msgID is the raw
// bytes of a new message ID (sent as bin); respTo, if not nil, is the exact
// encoding of the channel's ID; extra holds further header keys; args is
// the encoding of the event's args.
func appendEvent(b []byte, msgID []byte, respTo []byte, extra *Header, name string, args []byte) []byte {
	n := 2 + extra.Len()
	if respTo != nil {
		n++
	}
	b = msgpack.AppendArrayHeader(b, 3)
	b = msgpack.AppendMapHeader(b, n)
	b = msgpack.AppendString(b, HeaderMessageID)
	b = msgpack.AppendBytes(b, msgID)
	b = msgpack.AppendString(b, HeaderVersion)
	b = msgpack.AppendInt(b, protocolVersion)
	if respTo != nil {
		b = msgpack.AppendString(b, HeaderResponseTo)
		b = append(b, respTo...)
	}
	b = extra.appendEntries(b)
	b = msgpack.AppendString(b, name)
	return append(b, args...)
}
