package pushwire

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const rfcKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455 §1.3

func TestAcceptKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, want string }{
		{rfcKey, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
		{"", "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w="},
	}
	for _, tt := range tests {
		if got := AcceptKey(tt.key); got != tt.want {
			t.Errorf("AcceptKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

// upgradeRequest is a valid upgrade request as a server sees it.
func upgradeRequest() *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/push", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", rfcKey)
	return r
}

func TestCheckUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		edit       func(r *http.Request)
		errText    string // "" for success
		badVersion bool
	}{
		{"valid", func(*http.Request) {}, "", false},
		{"token lists", func(r *http.Request) {
			r.Header.Set("Connection", "keep-alive, Upgrade")
			r.Header.Set("Upgrade", "WebSocket")
		}, "", false},
		{"several Connection headers", func(r *http.Request) {
			r.Header["Connection"] = []string{"keep-alive", " upgrade "}
		}, "", false},
		{"HTTP/2", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0 }, "", false},
		{"POST", func(r *http.Request) { r.Method = http.MethodPost }, "method POST", false},
		{"HTTP/1.0", func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 }, "HTTP/1.0", false},
		{"no Connection", func(r *http.Request) { r.Header.Del("Connection") }, "Connection", false},
		{"Connection close", func(r *http.Request) { r.Header.Set("Connection", "close") }, "Connection", false},
		{"Connection upgrades", func(r *http.Request) { r.Header.Set("Connection", "upgrades") }, "Connection", false},
		{"no Upgrade", func(r *http.Request) { r.Header.Del("Upgrade") }, "Upgrade", false},
		{"Upgrade h2c", func(r *http.Request) { r.Header.Set("Upgrade", "h2c") }, "Upgrade", false},
		{"no version", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Version") }, "Sec-WebSocket-Version", true},
		{"version 8", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Version", "8") }, "Sec-WebSocket-Version", true},
		{"two versions", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Version", "8") }, "Sec-WebSocket-Version", true},
		{"no key", func(r *http.Request) { r.Header.Del("Sec-WebSocket-Key") }, "Sec-WebSocket-Key", false},
		{"two keys", func(r *http.Request) { r.Header.Add("Sec-WebSocket-Key", rfcKey) }, "Sec-WebSocket-Key", false},
		{"key not base64", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ!!") }, "base64", false},
		{"key of 15 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25j") }, "base64", false},
		{"key of 17 bytes", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZXg=") }, "base64", false},
		{"key unpadded", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ") }, "base64", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := upgradeRequest()
			tt.edit(r)
			key, err := CheckUpgrade(r)
			switch {
			case tt.errText == "" && (err != nil || key != rfcKey):
				t.Errorf("CheckUpgrade(%v) = %q, %v; want %q", r.Header, key, err, rfcKey)
			case tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)):
				t.Errorf("CheckUpgrade(%v) = %q, %v; want an error about %s", r.Header, key, err, tt.errText)
			case errors.Is(err, ErrBadVersion) != tt.badVersion:
				t.Errorf("CheckUpgrade(%v) = %v; want ErrBadVersion %t", r.Header, err, tt.badVersion)
			}
		})
	}
}

func TestSelectProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		offered   []string
		supported []string
		want      string
	}{
		{nil, []string{"json"}, ""},
		{[]string{"json"}, nil, ""},
		{[]string{"json"}, []string{"json"}, "json"},
		{[]string{"msgpack, json"}, []string{"json", "msgpack"}, "json"},
		{[]string{"msgpack", "json"}, []string{"json", "msgpack"}, "json"},
		{[]string{"xml,msgpack"}, []string{"json", "msgpack"}, "msgpack"},
		{[]string{"JSON"}, []string{"json"}, ""},
		{[]string{"jsonx, xjson"}, []string{"json"}, ""},
	}
	for _, tt := range tests {
		r := upgradeRequest()
		r.Header["Sec-Websocket-Protocol"] = tt.offered
		if got := SelectProtocol(r, tt.supported...); got != tt.want {
			t.Errorf("SelectProtocol(%q, %q) = %q, want %q", tt.offered, tt.supported, got, tt.want)
		}
	}
}

func TestAppendUpgradeResponse(t *testing.T) {
	t.Parallel()
	got := string(AppendUpgradeResponse(nil, rfcKey, ""))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if got != want {
		t.Errorf("AppendUpgradeResponse(%q, \"\") = %q, want %q", rfcKey, got, want)
	}
	b := AppendUpgradeResponse([]byte("x"), rfcKey, "json")
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b[1:])), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Protocol") != "json" ||
		resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(rfcKey) || !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		t.Errorf("AppendUpgradeResponse(%q, json) = %q", rfcKey, b)
	}
}
