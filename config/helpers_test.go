package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mortarhq/mortar"
	"github.com/nats-io/nats.go"
)

func stringsContains(s, sub string) bool { return strings.Contains(s, sub) }

func natsMsg(subj string, body []byte, reqID, token string) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = body
	m.Header.Set(mortar.HeaderRequestID, reqID)
	m.Header.Set(mortar.HeaderAuthorization, "Bearer "+token)
	return m
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
