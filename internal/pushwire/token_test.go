package pushwire

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestToken(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Unix(1_800_000_000, 0)
	c := Claims{Client: "phone-1", User: "alice", Expires: now.Unix() + 60, IssuedAt: now.Unix(), Channels: []string{"news", "user:alice"}}
	tok, err := SignToken(secret, c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyToken([][]byte{[]byte("old"), secret}, tok, now)
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if got.Client != c.Client || got.User != c.User || len(got.Channels) != 2 {
		t.Errorf("claims = %+v, want %+v", got, c)
	}
	if _, err := VerifyToken([][]byte{secret}, tok, now.Add(time.Minute)); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("at expiry: %v, want ErrTokenExpired", err)
	}
	if _, err := VerifyToken([][]byte{[]byte("other")}, tok, now); !errors.Is(err, ErrTokenSignature) {
		t.Errorf("wrong secret: %v, want ErrTokenSignature", err)
	}
	parts := strings.Split(tok, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"cid":"phone-1","sub":"root"}`))
	for name, bad := range map[string]string{
		"alg none":       none + "." + parts[1] + ".",
		"claims swapped": parts[0] + "." + forged + "." + parts[2],
		"two parts":      parts[0] + "." + parts[1],
		"bad base64 sig": parts[0] + "." + parts[1] + ".!!",
		"empty":          "",
		"long":           strings.Repeat("a", MaxTokenLen+1),
	} {
		if _, err := VerifyToken([][]byte{secret}, bad, now); err == nil {
			t.Errorf("VerifyToken(%s) accepted", name)
		}
	}
	// A token signed elsewhere with HS256 and extra header fields verifies.
	if _, err := VerifyToken(nil, tok, now); !errors.Is(err, ErrTokenSignature) {
		t.Errorf("no secrets: %v", err)
	}
}

func TestSignTokenErrors(t *testing.T) {
	for name, c := range map[string]Claims{
		"no client":   {},
		"bad user":    {Client: "a", User: "a b"},
		"bad channel": {Client: "a", Channels: []string{""}},
	} {
		if _, err := SignToken([]byte("k"), c); err == nil {
			t.Errorf("SignToken(%s) accepted", name)
		}
	}
	if _, err := SignToken(nil, Claims{Client: "a"}); err == nil {
		t.Error("SignToken with no secret accepted")
	}
}

// TestTokenInterop verifies a token made by a generic JWT library
// (jwt.io's HS256 example layout, with a kid header field).
func TestTokenInterop(t *testing.T) {
	secret := []byte("k")
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"HS256","kid":"1"}`))
	body := base64.RawURLEncoding.EncodeToString([]byte(`{"cid":"web-7","sub":"bob","extra":1}`))
	signed := head + "." + body
	tok := signed + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(secret, signed))
	c, err := VerifyToken([][]byte{secret}, tok, time.Now())
	if err != nil || c.Client != "web-7" || c.User != "bob" {
		t.Errorf("VerifyToken = %+v, %v", c, err)
	}
}

func FuzzVerifyToken(f *testing.F) {
	secret := []byte("fuzz")
	tok, _ := SignToken(secret, Claims{Client: "c", User: "u", Channels: []string{"x"}})
	f.Add(tok)
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := VerifyToken([][]byte{secret}, s, time.Unix(0, 0))
		if err != nil {
			return
		}
		// Anything that verifies re-signs and verifies to the same claims.
		again, err := SignToken(secret, c)
		if err != nil {
			t.Fatalf("SignToken(%+v) of verified claims: %v", c, err)
		}
		if _, err := VerifyToken([][]byte{secret}, again, time.Unix(0, 0)); err != nil {
			t.Fatalf("re-signed token does not verify: %v", err)
		}
	})
}
