package configwire

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSelector(t *testing.T) {
	labels := map[string]string{"zone": "a", "canary": "true", "tier": "web"}
	tests := []struct {
		sel  string
		want bool
	}{
		{"zone=a", true},
		{"zone==a,canary=true", true},
		{"zone=b", false},
		{"zone!=b", true},
		{"zone in (a, b)", true},
		{"zone notin (a,b)", false},
		{"canary", true},
		{"!canary", false},
		{"!missing,tier in (web)", true},
		{"missing!=x", true},
		{"", false},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Fatalf("ParseSelector(%q): %v", tt.sel, err)
		}
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("ParseSelector(%q).Matches = %v, want %v", tt.sel, got, tt.want)
		}
	}
	for _, bad := range []string{"a=", "=b", "a in b", "a in (", "a in (b,)", "a b c", ",", "a=b,,c=d"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) = nil error", bad)
		}
	}
}

func TestDiff(t *testing.T) {
	tests := []struct{ a, b, want string }{
		{"a\n", "a\n", ""},
		{"", "x\n", "--- A\n+++ B\n@@ -0,0 +1 @@\n+x\n"},
		{"x", "y", "--- A\n+++ B\n@@ -1 +1 @@\n-x\n\\ No newline at end of file\n+y\n\\ No newline at end of file\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\n2\n3\n4\nX\n6\n7\n8\n9\n10\n",
			"--- A\n+++ B\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+X\n 6\n 7\n 8\n"},
	}
	for _, tt := range tests {
		if got := Diff("A", "B", []byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("Diff(%q, %q) =\n%s\nwant\n%s", tt.a, tt.b, got, tt.want)
		}
	}
}

// applyDiff rebuilds b from a and ops, to check a diff is an edit script.
func applyOps(ops []op) (a, b string) {
	var sa, sb strings.Builder
	for _, o := range ops {
		if o.kind != '+' {
			sa.WriteString(o.line)
		}
		if o.kind != '-' {
			sb.WriteString(o.line)
		}
	}
	return sa.String(), sb.String()
}

func FuzzDiff(f *testing.F) {
	f.Add("a\nb\nc\n", "a\nB\nc\nd\n")
	f.Add("", "x")
	f.Add("x\ny", "y\nx")
	f.Fuzz(func(t *testing.T, a, b string) {
		ops := diffLines(splitLines(a), splitLines(b))
		if ga, gb := applyOps(ops); ga != a || gb != b {
			t.Fatalf("edit script does not rebuild its inputs: %q %q", ga, gb)
		}
		d := Diff("A", "B", []byte(a), []byte(b))
		if (d == "") != (a == b) {
			t.Fatalf("Diff(%q, %q) = %q", a, b, d)
		}
	})
}

func FuzzSelector(f *testing.F) {
	for _, s := range []string{"a=b", "a in (x,y),!c", "k notin (a)", "a!=b,c", "((", "a in ()"} {
		f.Add(s, "a", "b")
	}
	f.Fuzz(func(t *testing.T, sel, k, v string) {
		r := Rule{Selector: sel}
		if r.Validate() == nil {
			r.Matches(map[string]string{k: v}, "")
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	rec := &Record{Version: 3, Author: "a\nb", ContentType: "json", Size: 7, SHA256: Sum([]byte(`{"a":1}`))}
	f.Add("mortar.cfg.ev.v.default.g."+EncodeKey("k"), EncodeHeader(rec), "12", "9", []byte(`{"a":1}`))
	gray := &Record{Version: 1, Rule: &Rule{Selector: "a=b"}}
	f.Add("mortar.cfg.ev.g.ns.grp."+EncodeKey("key/ü"), EncodeHeader(gray), "3", "0", []byte{})
	f.Add("mortar.cfg.ev.x", "{}", "", "", []byte("x"))
	f.Fuzz(func(t *testing.T, subj, meta, seq, last string, data []byte) {
		h := nats.Header{}
		h.Set(HeaderMeta, meta)
		h.Set(hdrSequence, seq)
		h.Set(hdrLastSequence, last)
		ev, r, err := DecodeEvent(subj, h, data)
		if err != nil {
			return
		}
		if ev.LastSeq >= ev.Seq || r.Size != len(data) {
			t.Fatalf("accepted inconsistent event %+v %+v", ev, r)
		}
		// Round trip: re-encoding the record decodes to the same.
		h.Set(HeaderMeta, EncodeHeader(r))
		if _, r2, err := DecodeEvent(subj, h, data); err != nil || r2.Version != r.Version || r2.SHA256 != r.SHA256 {
			t.Fatalf("round trip: %+v, %v", r2, err)
		}
		if EventSubject(ev.StoredSubjectRaw) != subj {
			t.Fatalf("subject round trip: %q -> %q", subj, ev.StoredSubjectRaw)
		}
	})
}

func FuzzKey(f *testing.F) {
	f.Add("db.url")
	f.Add("a b/ü:*>")
	f.Fuzz(func(t *testing.T, key string) {
		if CheckKey(key) != nil {
			return
		}
		tok := EncodeKey(key)
		if strings.ContainsAny(tok, ".*> \t") {
			t.Fatalf("EncodeKey(%q) = %q: not one subject token", key, tok)
		}
		if got, err := DecodeKey(tok); err != nil || got != key {
			t.Fatalf("DecodeKey(EncodeKey(%q)) = %q, %v", key, got, err)
		}
	})
}
