package rpc

import (
	"fmt"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// Header keys with a meaning in the protocol. Every other key is carried
// untouched, so middleware can add its own (auth tokens, trace context).
const (
	HeaderMessageID  = "message_id"
	HeaderVersion    = "v"
	HeaderResponseTo = "response_to"
	// HeaderTimeout is mortar's extension: the caller's remaining time in
	// milliseconds, from which the server derives its own deadline.
	HeaderTimeout = "timeout_ms"
)

// Header is an event header: a msgpack map with string keys, in wire order.
// Values keep their exact msgpack encoding until read.
type Header struct {
	keys []string
	vals [][]byte // msgpack-encoded values
}

// Get returns the decoded value of key, or nil if absent. Strings decode as
// string, bins as []byte, integers as int64 (or uint64 above MaxInt64).
func (h *Header) Get(key string) any {
	raw := h.Raw(key)
	if raw == nil {
		return nil
	}
	v, _, err := msgpack.ReadAny(raw)
	if err != nil {
		return nil
	}
	return v
}

// String returns the value of key if it is a str or a bin, else "".
func (h *Header) String(key string) string {
	switch v := h.Get(key).(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Raw returns the msgpack encoding of key's value, or nil if absent.
func (h *Header) Raw(key string) []byte {
	if h == nil {
		return nil
	}
	for i, k := range h.keys {
		if k == key {
			return h.vals[i]
		}
	}
	return nil
}

// Set sets key to the msgpack encoding of v, replacing any old value. The
// protocol's own keys (message_id, v, response_to) cannot be set.
func (h *Header) Set(key string, v any) error {
	switch key {
	case HeaderMessageID, HeaderVersion, HeaderResponseTo:
		return fmt.Errorf("rpc: header key %q is reserved", key)
	}
	raw, err := msgpack.Append(nil, v)
	if err != nil {
		return fmt.Errorf("rpc: header %q: %w", key, err)
	}
	h.setRaw(key, raw)
	return nil
}

func (h *Header) setRaw(key string, raw []byte) {
	for i, k := range h.keys {
		if k == key {
			h.vals[i] = raw
			return
		}
	}
	h.keys = append(h.keys, key)
	h.vals = append(h.vals, raw)
}

// Del removes key.
func (h *Header) Del(key string) {
	for i, k := range h.keys {
		if k == key {
			h.keys = append(h.keys[:i], h.keys[i+1:]...)
			h.vals = append(h.vals[:i], h.vals[i+1:]...)
			return
		}
	}
}

// Keys returns the header's keys in wire order.
func (h *Header) Keys() []string {
	if h == nil {
		return nil
	}
	return append([]string(nil), h.keys...)
}

// Len is the number of keys.
func (h *Header) Len() int {
	if h == nil {
		return 0
	}
	return len(h.keys)
}

// appendEntries appends the header's entries (not the map header).
func (h *Header) appendEntries(b []byte) []byte {
	if h == nil {
		return b
	}
	for i, k := range h.keys {
		b = msgpack.AppendString(b, k)
		b = append(b, h.vals[i]...)
	}
	return b
}
