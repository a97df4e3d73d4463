package authwire

import (
	"bytes"
	"strings"
	"testing"
)

func TestAPIKeyRoundTrip(t *testing.T) {
	key, id := NewAPIKey()
	gotID, hash, err := ParseAPIKey(key)
	if err != nil || gotID != id || !bytes.Equal(hash, HashSecret(key)) {
		t.Fatalf("ParseAPIKey(%q) = %q %x %v, want %q", key, gotID, hash, err, id)
	}
	other, _ := NewAPIKey()
	if other == key {
		t.Fatal("two keys alike")
	}
	for _, bad := range []string{"", "mk_", key[:len(key)-1], key + "A", strings.Replace(key, "_", "-", 2), "mk_" + strings.Repeat("!", 60), "xx" + key[2:]} {
		if _, _, err := ParseAPIKey(bad); err == nil {
			t.Errorf("ParseAPIKey(%q) succeeded", bad)
		}
	}
}

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{"alice": true, "svc-1.prod@corp": true, "": false, "-x": false, "a b": false, strings.Repeat("a", 65): false, "ü": false} {
		if ValidName(name) != ok {
			t.Errorf("ValidName(%q) = %v", name, !ok)
		}
		if got, err := DecodeName(EncodeName(name)); err != nil || got != name {
			t.Errorf("DecodeName(EncodeName(%q)) = %q, %v", name, got, err)
		}
	}
}

// FuzzParseAPIKey: any string a client sends as a credential parses or is
// refused without a panic, and what parses is a key of the one form.
func FuzzParseAPIKey(f *testing.F) {
	key, _ := NewAPIKey()
	for _, s := range []string{key, "", "mk_", key + "x", "mk_AAAAAAAAAAAAAAAA_" + strings.Repeat("A", 43), "mk_\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, hash, err := ParseAPIKey(s)
		if err != nil {
			return
		}
		if len(s) != 3+16+1+43 || !strings.HasPrefix(s, APIKeyPrefix) || s[3:19] != id || !bytes.Equal(hash, HashSecret(s)) {
			t.Fatalf("ParseAPIKey(%q) accepted: id %q", s, id)
		}
	})
}
