package taskwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func full() *Message {
	return &Message{
		Task: "proj.tasks.add", ID: "5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f", RootID: "root", ParentID: "parent",
		Group: "g1", Lang: "go", Origin: "host@123", Retries: 2,
		ETA: time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.UTC), Expires: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		SoftLimit: 1500 * time.Millisecond, HardLimit: 3 * time.Second, ArgsRepr: "(1, 2)", KwargsRepr: "{}",
		IgnoreResult: true, MaxRetries: 5, BackoffMin: time.Second, BackoffMax: time.Minute,
		Headers: map[string]string{"tenant": "acme"},
		Args:    json.RawMessage(`[1,2]`), Kwargs: json.RawMessage(`{"x":"y"}`),
		Embed: Embed{Callbacks: []Signature{{Task: "cb", Args: json.RawMessage(`[]`), Kwargs: json.RawMessage(`{}`), Options: map[string]any{"queue": "q"}}}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range []*Message{full(), {Task: "t", ID: "i", RootID: "i", MaxRetries: -1, Args: json.RawMessage(`[]`), Kwargs: json.RawMessage(`{}`)}} {
		msg := m.NewMsg(QueueSubject("default"))
		got, err := Decode(msg.Header, msg.Data)
		if err != nil {
			t.Fatalf("Decode(NewMsg(%+v)): %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("Decode(NewMsg(m)) =\n%+v\nwant\n%+v", got, m)
		}
	}
}

// A message as another language would publish it, with Celery's layout.
func TestDecodeForeign(t *testing.T) {
	h := nats.Header{}
	h.Set("task", "add")
	h.Set("id", "abc")
	h.Set("lang", "py")
	h.Set("timelimit", "null,30")
	h.Set("Nats-Msg-Id", "abc")
	m, err := Decode(h, []byte(` [ [2, 3] , {} , null ] `))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Args) != "[2, 3]" || m.HardLimit != 30*time.Second || m.SoftLimit != 0 || m.Headers != nil || m.MaxRetries != -1 {
		t.Errorf("Decode = %+v", m)
	}
}

func TestDecodeErrors(t *testing.T) {
	ok := func() nats.Header {
		h := nats.Header{}
		h.Set("task", "add")
		h.Set("id", "abc")
		return h
	}
	cases := []struct {
		name string
		h    func(nats.Header)
		body string
	}{
		{"no task", func(h nats.Header) { h.Del("task") }, `[[],{},{}]`},
		{"no id", func(h nats.Header) { h.Del("id") }, `[[],{},{}]`},
		{"bad id", func(h nats.Header) { h.Set("id", "a b") }, `[[],{},{}]`},
		{"bad name", func(h nats.Header) { h.Set("task", "a b") }, `[[],{},{}]`},
		{"bad retries", func(h nats.Header) { h.Set("retries", "-1") }, `[[],{},{}]`},
		{"bad eta", func(h nats.Header) { h.Set("eta", "tomorrow") }, `[[],{},{}]`},
		{"bad timelimit", func(h nats.Header) { h.Set("timelimit", "5") }, `[[],{},{}]`},
		{"msgpack", func(h nats.Header) { h.Set("content-type", "application/x-msgpack") }, `[[],{},{}]`},
		{"not json", nil, `[[],{}`},
		{"two parts", nil, `[[],{}]`},
		{"args object", nil, `[{},{},{}]`},
		{"kwargs array", nil, `[[],[],{}]`},
		{"embed array", nil, `[[],{},[]]`},
		{"embed fields", nil, `[[],{},{"chain":5}]`},
	}
	for _, c := range cases {
		h := ok()
		if c.h != nil {
			c.h(h)
		}
		if _, err := Decode(h, []byte(c.body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode = %v, want ErrMalformed", c.name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	msg := full().NewMsg("s")
	f.Add("proj.tasks.add", "id-1", "3", "1.5,2", msg.Data)
	f.Add("t", "i", "", "", []byte(`[[],{},null]`))
	f.Add("t", "i", "x", ",", []byte(`[[1],{"a":[{}]},{"chain":[{"task":"x"}]}]`))
	f.Fuzz(func(t *testing.T, task, id, retries, limit string, body []byte) {
		h := nats.Header{}
		h.Set("task", task)
		h.Set("id", id)
		h.Set("retries", retries)
		h.Set("timelimit", limit)
		m, err := Decode(h, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again := m.NewMsg("s")
		m2, err := Decode(again.Header, again.Data)
		if err != nil {
			t.Fatalf("re-decode of %+v: %v", m, err)
		}
		if m2.Task != m.Task || m2.ID != m.ID || m2.Retries != m.Retries || string(m2.Args) != string(m.Args) {
			t.Fatalf("round trip changed %+v into %+v", m, m2)
		}
	})
}

// SplitArray agrees with encoding/json on every valid array.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1]`, `[[1,2],{"a":"]"},null]`, `[ "a\"]", {"b":[{}]} , 3 ]`, `["\\"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want []json.RawMessage
		if json.Unmarshal(b, &want) != nil || bytes.TrimSpace(b)[0] != '[' {
			return
		}
		got := SplitArray(bytes.TrimSpace(b))
		if len(got) != len(want) {
			t.Fatalf("SplitArray(%q) = %q, want %q", b, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("SplitArray(%q)[%d] = %q, want %q", b, i, got[i], want[i])
			}
		}
	})
}

func TestDecodeMsgpack(t *testing.T) {
	h := nats.Header{}
	h.Set("task", "add")
	h.Set("id", "mp-1")
	h.Set("content-type", ContentMsgpack)
	// [[2, 3], {"x": "y"}, nil]
	body := []byte{0x93, 0x92, 0x02, 0x03, 0x81, 0xa1, 'x', 0xa1, 'y', 0xc0}
	m, err := Decode(h, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Args) != "[2,3]" || string(m.Kwargs) != `{"x":"y"}` {
		t.Fatalf("Decode(msgpack) = args %s kwargs %s", m.Args, m.Kwargs)
	}
	for _, bad := range [][]byte{{0x92, 0x90, 0x80}, {0x93, 0x90, 0x80, 0xc0, 0x00}, {0x93, 0x90, 0x81, 0x01, 0x02, 0xc0}, {0xc1}} {
		if _, err := Decode(h, bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(msgpack %x) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzDecodeMsgpack(f *testing.F) {
	f.Add([]byte{0x93, 0x92, 0x02, 0x03, 0x81, 0xa1, 'x', 0xa1, 'y', 0xc0})
	f.Add([]byte{0x93, 0x90, 0x80, 0x81, 0xa5, 'c', 'h', 'a', 'i', 'n', 0x90})
	f.Fuzz(func(t *testing.T, body []byte) {
		h := nats.Header{}
		h.Set("task", "t")
		h.Set("id", "i")
		h.Set("content-type", ContentMsgpack)
		m, err := Decode(h, body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		again := m.NewMsg("s")
		if _, err := Decode(again.Header, again.Data); err != nil {
			t.Fatalf("re-decode of %+v as JSON: %v", m, err)
		}
	})
}
