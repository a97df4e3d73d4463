package pushwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

var sampleMessages = []*Message{
	{Op: OpConnect, ID: 1, Client: "phone-1", Token: "a.b.c"},
	{Op: OpSubscribe, ID: 2, Channel: "news", Recover: true, Offset: 42, Epoch: "1700000000"},
	{Op: OpPublish, ID: 3, Channel: "chat:room1", Data: json.RawMessage(`{"text":"héllo <b>","n":[1,-2,3.5,18446744073709551615]}`)},
	{Op: OpPush, Channel: "news", Offset: 7, Data: json.RawMessage(`"plain"`), Ack: "p-1"},
	{Op: OpPush, Data: json.RawMessage(`null`)},
	{Op: OpReply, ID: 2, Result: json.RawMessage(`{"channel":"news","offset":9,"recovered":true,"pubs":[{"offset":8,"data":true}]}`)},
	{Op: OpReply, ID: 4, Error: &Error{Code: "invalid_argument", Message: "bad \"channel\"\n"}},
	{Op: OpDisconnect, Code: 4003, Reason: "replaced", Reconnect: false},
	{Op: OpDisconnect, Code: 4006, Reason: "idle", Reconnect: true},
	{Op: OpPing}, {Op: OpPong}, {Op: OpAck, Ack: "p-1"},
}

// canonical re-encodes JSON so that key order, spacing and the spelling
// of numbers (0.000 and 0) do not matter.
func canonical(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	if raw == nil {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", raw, err)
	}
	out, _ := json.Marshal(v)
	return string(out)
}

func sameMessage(t testing.TB, got, want *Message) bool {
	t.Helper()
	g, w := *got, *want
	same := sameJSON(t, g.Data, w.Data) && sameJSON(t, g.Result, w.Result)
	g.Data, w.Data, g.Result, w.Result = nil, nil, nil, nil
	return reflect.DeepEqual(g, w) && same
}

// sameJSON compares JSON values as values: key order, spacing and the
// spelling of numbers (0.0, -0 and 0) do not matter.
func sameJSON(t testing.TB, a, b json.RawMessage) bool {
	t.Helper()
	if a == nil || b == nil {
		return (a == nil) == (b == nil)
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("invalid JSON %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestRoundTrip(t *testing.T) {
	for _, enc := range []Encoding{JSON, Msgpack} {
		for _, m := range sampleMessages {
			b, err := Append(nil, enc, m)
			if err != nil {
				t.Fatalf("Append(%s, %+v): %v", enc, m, err)
			}
			if got := DetectEncoding(b); got != enc {
				t.Errorf("DetectEncoding(%s %q) = %v", enc, b, got)
			}
			got, err := Decode(enc, b)
			if err != nil {
				t.Fatalf("Decode(%s, %q): %v", enc, b, err)
			}
			if !sameMessage(t, got, m) {
				t.Errorf("%s round trip of %+v = %+v", enc, m, got)
			}
		}
	}
}

// TestJSONMatchesEncodingJSON checks the hand-written encoder against
// encoding/json on the same struct.
func TestJSONMatchesEncodingJSON(t *testing.T) {
	for _, m := range sampleMessages {
		got := appendJSON(nil, m)
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if canonical(t, got) != canonical(t, want) {
			t.Errorf("appendJSON(%+v) = %s, want %s", m, got, want)
		}
	}
	odd := &Message{Op: "x", Reason: "\x00\u2028\xff<>&\\\"\t"}
	got := appendJSON(nil, odd)
	var back Message
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("appendJSON(%q) = %s: %v", odd.Reason, got, err)
	}
	if back.Reason != "\x00\u2028\ufffd<>&\\\"\t" {
		t.Errorf("reason round trip = %q", back.Reason)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		enc Encoding
		in  string
	}{
		{JSON, ``},
		{JSON, `[]`},
		{JSON, `{"op":1}`},
		{JSON, `{"id":1}`},
		{JSON, `{"op":"x"`},
		{JSON, `{"op":"x","id":-1}`},
		{Msgpack, "\x90"},                // an array
		{Msgpack, "\x81\xa2op\x01"},      // op not a string
		{Msgpack, "\x80"},                // no op
		{Msgpack, "\x81\xa2op\xa1x\xc0"}, // trailing bytes
		{Msgpack, "\x82\xa2op\xa1x\xa4data\xc7\x01\x05a"},                        // ext data
		{Msgpack, "\x82\xa2op\xa1x\xa4data\x81\x01\x02"},                         // int map key
		{Msgpack, "\x82\xa2op\xa1x\xa4data\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"}, // NaN
		{Msgpack, "\x81\xa2op\xa2\xff\xfe"},                                      // op not UTF-8
		{0, `{"op":"x"}`},
	} {
		if m, err := Decode(tc.enc, []byte(tc.in)); err == nil || !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%v, %q) = %+v, %v, want ErrMalformed", tc.enc, tc.in, m, err)
		}
	}
}

func TestDetectEncoding(t *testing.T) {
	for in, want := range map[string]Encoding{
		`{"op":"x"}`: JSON, " \n{": JSON, "\x81": Msgpack, "\xde\x00\x01": Msgpack, "\xdf": Msgpack,
		"": 0, "[": 0, "\x91": 0, "x": 0,
	} {
		if got := DetectEncoding([]byte(in)); got != want {
			t.Errorf("DetectEncoding(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMsgpackData(t *testing.T) {
	// A msgpack client's bin, ints above int64 and floats convert to JSON.
	in := []byte("\x82\xa2op\xa7publish\xa4data\x83\xa1b\xc4\x02hi\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa1f\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00")
	m, err := Decode(Msgpack, in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(m.Data), `{"b":"aGk=","f":1.5,"u":18446744073709551615}`; got != want {
		t.Errorf("data = %s, want %s", got, want)
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"a", true}, {"chat:room-1/x@y", true}, {"ünïcode", true},
		{"", false}, {"a b", false}, {"a\x00", false}, {"a\x7f", false}, {"\xff", false},
		{string(bytes.Repeat([]byte("x"), MaxChannelLen)), true},
		{string(bytes.Repeat([]byte("x"), MaxChannelLen+1)), false},
	} {
		err := CheckName("channel", tc.in, MaxChannelLen)
		if (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages {
		for _, enc := range []Encoding{JSON, Msgpack} {
			b, _ := Append(nil, enc, m)
			f.Add(byte(enc), b)
		}
	}
	f.Fuzz(func(t *testing.T, enc byte, b []byte) {
		e := Encoding(enc%2 + 1)
		m, err := Decode(e, b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes in both encodings and decodes back
		// the same.
		for _, e2 := range []Encoding{JSON, Msgpack} {
			out, err := Append(nil, e2, m)
			if err != nil {
				t.Fatalf("Append(%s) of decoded %+v: %v", e2, m, err)
			}
			back, err := Decode(e2, out)
			if err != nil {
				t.Fatalf("Decode(%s, %q) of re-encoded %+v: %v", e2, out, m, err)
			}
			if !sameMessage(t, back, m) {
				t.Fatalf("%s round trip: %+v became %+v", e2, m, back)
			}
		}
	})
}
