package registrywire

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, id := range []string{"a", "10.0.0.5:4242", "pod/x y.z", "ünïcode", string(make([]byte, 0)) + "x"} {
		k := Key("svc-1", id)
		s, got, err := ParseKey(k)
		if err != nil || s != "svc-1" || got != id {
			t.Errorf("ParseKey(Key(%q)) = %q, %q, %v", id, s, got, err)
		}
	}
	for _, k := range []string{"", "svc", "svc.", "_x.YQ", "svc.!!", "svc.AA"} {
		if _, _, err := ParseKey(k); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseKey(%q) = %v, want ErrMalformed", k, err)
		}
	}
}

func TestValidNames(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "A_b-9": true, "": false, "-a": false, "_a": false, "a.b": false, "a b": false} {
		if ValidService(s) != want {
			t.Errorf("ValidService(%q) = %v", s, !want)
		}
	}
	for s, want := range map[string]bool{"a": true, "host:1/x y": true, "": false, "a\nb": false, "\xff": false} {
		if ValidID(s) != want {
			t.Errorf("ValidID(%q) = %v", s, !want)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	subj := EventPrefix + Key("svc", "i1")
	h := nats.Header{}
	h.Set(hdrSequence, "7")
	h.Set(hdrLastSequence, "3")
	ev, err := DecodeEvent(subj, h, []byte(`{}`))
	if err != nil || ev.Service != "svc" || ev.ID != "i1" || ev.Seq != 7 || ev.LastSeq != 3 || ev.Deleted {
		t.Fatalf("DecodeEvent = %+v, %v", ev, err)
	}
	h.Set(hdrOperation, "DEL")
	ev, err = DecodeEvent(subj, h, nil)
	if err != nil || !ev.Deleted {
		t.Fatalf("delete: %+v, %v", ev, err)
	}
	bad := []struct {
		subj     string
		seq, lst string
		op       string
		data     string
	}{
		{"other." + Key("svc", "i1"), "7", "3", "", "{}"},
		{subj, "", "3", "", "{}"},
		{subj, "0", "0", "", "{}"},
		{subj, "7", "7", "", "{}"},
		{subj, "7", "x", "", "{}"},
		{subj, "7", "3", "", ""},
		{subj, "7", "3", "ROLLUP", "{}"},
	}
	for _, b := range bad {
		h := nats.Header{}
		h.Set(hdrSequence, b.seq)
		h.Set(hdrLastSequence, b.lst)
		if b.op != "" {
			h.Set(hdrOperation, b.op)
		}
		if _, err := DecodeEvent(b.subj, h, []byte(b.data)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeEvent(%+v) = %v, want ErrMalformed", b, err)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(EventPrefix+Key("svc", "i1"), "7", "3", "", []byte(`{"service":"svc"}`))
	f.Add(EventPrefix+"svc.aQ", "2", "0", "DEL", []byte(nil))
	f.Fuzz(func(t *testing.T, subj, seq, last, op string, data []byte) {
		h := nats.Header{}
		h.Set(hdrSequence, seq)
		h.Set(hdrLastSequence, last)
		if op != "" {
			h.Set(hdrOperation, op)
		}
		ev, err := DecodeEvent(subj, h, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if ev.LastSeq >= ev.Seq || Key(ev.Service, ev.ID) != ev.Key || ev.Deleted == (len(ev.Data) > 0) && ev.Deleted {
			t.Fatalf("inconsistent event %+v", ev)
		}
	})
}

func TestCheckRef(t *testing.T) {
	if err := CheckRef("svc", "i-1"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"", "x"}, {"-a", "x"}, {"a.b", "x"}, {"svc", ""}, {"svc", "a\nb"}} {
		if err := CheckRef(c[0], c[1]); err == nil {
			t.Errorf("CheckRef(%q, %q) = nil", c[0], c[1])
		}
	}
}
