package registry

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestInstanceJSON(t *testing.T) {
	in := Instance{Service: "s", ID: "i", Address: "h", Port: 1, TTL: 15 * time.Second,
		Check: &Check{Type: CheckHTTP, Interval: 10 * time.Second, Timeout: 500 * time.Millisecond}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ttl":"15s"`, `"interval":"10s"`, `"timeout":"500ms"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Instance
	if err := json.Unmarshal(b, &back); err != nil || back.TTL != in.TTL || back.Check.Timeout != in.Check.Timeout || back.Service != "s" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"service":"s","ttl":15000000000}`), &back); err != nil || back.TTL != 15*time.Second {
		t.Fatalf("nanoseconds: %v, %v", back.TTL, err)
	}
	for _, bad := range []string{`{"ttl":"soon"}`, `{"ttl":true}`, `{"colour":"red"}`, `{"check":{"type":"tcp","every":"1s"}}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
	b, _ = json.Marshal(Instance{Service: "s"})
	if strings.Contains(string(b), "ttl") || strings.Contains(string(b), "check") {
		t.Errorf("zero fields not omitted: %s", b)
	}
}

func FuzzInstanceJSON(f *testing.F) {
	f.Add([]byte(`{"service":"s","id":"i","address":"h","port":1,"ttl":"15s","check":{"type":"http","interval":"2s"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Instance
		if json.Unmarshal(b, &in) != nil {
			return
		}
		out, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var again Instance
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if again.TTL != in.TTL {
			t.Fatalf("ttl %v became %v", in.TTL, again.TTL)
		}
	})
}
