package rpc

import (
	"bytes"
	"testing"

	"github.com/mortarhq/mortar/internal/msgpack"
)

// seedEvents are real events: as zerorpc-python sends them (bin IDs), as
// zerorpc-node sends them (str IDs), and as mortar sends them.
var seedEvents = [][]byte{
	// ({'message_id': b'0000000141c0b5e1f7b44a50a5e4f35d', 'v': 3}, 'add', (1, 2.5)) from msgpack-python
	[]byte("\x93\x82\xaamessage_id\xc4\x200000000141c0b5e1f7b44a50a5e4f35d\xa1v\x03\xa3add\x92\x01\xcb\x40\x04\x00\x00\x00\x00\x00\x00"),
	// {v: 3, message_id: "…", response_to: "…"} _zpc_hb [0] from msgpack-lite
	[]byte("\x93\x83\xa1v\x03\xaamessage_id\xa4abcd\xabresponse_to\xa4wxyz\xa7_zpc_hb\x91\x00"),
	appendEvent(nil, []byte("0123456789abcdef"), []byte("\xc4\x02id"), &Header{keys: []string{"token"}, vals: [][]byte{{0xa1, 'x'}}}, "OK", []byte{0x91, 0x03}),
	[]byte("\x93\x01\xa5hello\x90"), // v1 header
}

func TestDecodeEvent(t *testing.T) {
	var ev event
	if err := decodeEvent(seedEvents[0], &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.name) != "add" || ev.version != 3 || ev.respTo != nil || !bytes.HasPrefix(ev.msgID, []byte{0xc4, 0x20}) {
		t.Errorf("decodeEvent(python add) = name %q v %d msgID %x respTo %x", ev.name, ev.version, ev.msgID, ev.respTo)
	}
	if err := decodeEvent(seedEvents[1], &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.respTo) != "\xa4wxyz" {
		t.Errorf("response_to = %q, want the str wxyz encoding", ev.respTo)
	}
	h := parseHeader(ev.rawHeader)
	if h.Len() != 3 || h.Get("v") != int64(3) || h.String("message_id") != "abcd" {
		t.Errorf("parseHeader = %v", h.Keys())
	}
	if got := headerValue(ev.rawHeader, "response_to"); !bytes.Equal(got, ev.respTo) {
		t.Errorf("headerValue(response_to) = %q", got)
	}
}

// FuzzDecodeEvent: no input panics, and an event that decodes re-encodes
// (same name, args, message_id and response_to) and decodes again.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range seedEvents {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var ev event
		if decodeEvent(payload, &ev) != nil {
			return
		}
		h := parseHeader(ev.rawHeader)
		headerValue(ev.rawHeader, "x")
		if msgpack.NextType(ev.msgID) != msgpack.BinType {
			return // appendEvent sends IDs as bin
		}
		id, _, err := msgpack.ReadBytes(ev.msgID)
		if err != nil {
			t.Fatalf("message_id: %v", err)
		}
		var extra Header
		for i, k := range h.keys {
			switch k {
			case HeaderMessageID, HeaderVersion, HeaderResponseTo:
			default:
				extra.setRaw(k, h.vals[i])
			}
		}
		again := appendEvent(nil, id, ev.respTo, &extra, string(ev.name), ev.args)
		var ev2 event
		if err := decodeEvent(again, &ev2); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if !bytes.Equal(ev2.name, ev.name) || !bytes.Equal(ev2.args, ev.args) || !bytes.Equal(ev2.respTo, ev.respTo) || !bytes.Equal(ev2.msgID, ev.msgID) {
			t.Fatalf("round trip changed the event")
		}
	})
}
