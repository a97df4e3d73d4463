package pushserver_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/push"
)

func TestShutdown(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	ws := connected(t, n, "ws", "sd-ws")
	tcp := connected(t, n, "tcp", "sd-tcp")
	pending := dialWS(t, n) // not yet connected
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		n.Stop()
	}()
	if got := ws.expectClose(1001); got.reason == "" {
		t.Errorf("close 1001 without a reason")
	}
	if got := tcp.expectClose(1001); !got.reconnect {
		t.Errorf("disconnect %+v: reconnect = false, want true", got)
	}
	<-stopped
	// Sockets that never connected are closed too (with or without a
	// close frame).
	f, err := pending.tryNext(time.Now().Add(waitTimeout))
	switch {
	case err == nil && f.op == pushwire.OpcodeClose:
		pending.expectEOF()
	case err == nil:
		t.Errorf("unconnected socket got %s, want nothing or a close frame", f)
	case !errors.Is(err, io.EOF) && !isReset(err):
		t.Errorf("unconnected socket: %v, want the end of the stream", err)
	}
}

func TestWSControlFrames(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)

	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "ctl-ping")
		for _, payload := range []string{"", "hello", strings.Repeat("p", pushwire.MaxControlPayload)} {
			c.writeFrame(pushwire.OpcodePing, []byte(payload))
			if f := c.next(); f.op != pushwire.OpcodePong || string(f.payload) != payload {
				t.Errorf("ping %q got %s, want a pong with the same payload", payload, f)
			}
		}
		// Control frames may come between the fragments of a message.
		c.write(frame(pushwire.OpcodeText, []byte(`{"op":`), false))
		c.writeFrame(pushwire.OpcodePing, []byte("mid"))
		c.write(frame(pushwire.OpcodeContinuation, []byte(`"ping"}`), true))
		if f := c.next(); f.op != pushwire.OpcodePong || string(f.payload) != "mid" {
			t.Errorf("ping between fragments got %s, want pong %q", f, "mid")
		}
		if m := c.nextMsg(); m.Op != pushwire.OpPong {
			t.Errorf("fragmented ping message got %s, want pong", jsonString(m))
		}
	})
	t.Run("close", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name    string
			payload []byte
			want    uint16
		}{
			{"normal", pushwire.AppendClose(nil, pushwire.CloseNormal, "bye", nil)[2:], pushwire.CloseNormal},
			{"going away", pushwire.AppendClose(nil, pushwire.CloseGoingAway, "", nil)[2:], pushwire.CloseGoingAway},
			{"application code", pushwire.AppendClose(nil, 4321, "mine", nil)[2:], 4321},
			{"no status", nil, pushwire.CloseNormal},
			{"one byte", []byte{3}, pushwire.CloseProtocolError},
			{"reserved code", []byte{0x03, 0xed, 'x'}, pushwire.CloseProtocolError}, // 1005 may not be sent
		} {
			t.Run(tc.name, func(t *testing.T) {
				client := "ctl-close-" + strings.ReplaceAll(tc.name, " ", "-")
				c := connected(t, n, "ws", client)
				c.writeFrame(pushwire.OpcodeClose, tc.payload)
				c.expectClose(int(tc.want))
				waitFor(t, client+" to leave the connection list", func() bool {
					got, err := pc.Conns(ctx(t), &push.ConnsFilter{Client: client})
					return err == nil && got.Total == 0
				})
			})
		}
	})
	t.Run("bad frames", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name  string
			frame []byte
			want  int
		}{
			{"reserved opcode", frame(3, []byte("x"), true), 1002},
			{"fragmented ping", frame(pushwire.OpcodePing, []byte("x"), false), 1002},
			{"long ping", frame(pushwire.OpcodePing, []byte(strings.Repeat("x", 126)), true), 1002},
			{"stray continuation", frame(pushwire.OpcodeContinuation, []byte("x"), true), 1002},
			{"rsv bit", func() []byte { b := frame(pushwire.OpcodeText, []byte(`{"op":"ping"}`), true); b[0] |= 0x40; return b }(), 1002},
			{"bad utf-8", frame(pushwire.OpcodeText, []byte("{\"op\":\"\xff\"}"), true), 1007},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := connected(t, n, "ws", "ctl-bad")
				c.write(tc.frame)
				c.expectClose(tc.want)
			})
		}
	})
}

func TestUpgradeErrors(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	upgrade := []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}
	for _, tc := range []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{"plain GET", "/push/ws", nil, http.StatusBadRequest},
		{"no Upgrade", "/push/ws", []string{"Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusBadRequest},
		{"no key", "/push/ws", []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13"}, http.StatusBadRequest},
		{"bad key", "/push/ws", []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: short"}, http.StatusBadRequest},
		{"version 8", "/push/ws", append(slices.Clone(upgrade), "Sec-WebSocket-Version: 8"), http.StatusUpgradeRequired},
		{"no version", "/push/ws", upgrade, http.StatusUpgradeRequired},
		{"browser client", "/push/mortar-push.js", nil, http.StatusOK},
		{"demo", "/push/demo", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := httpGet(t, n.AdminURL(), tc.path, tc.header...)
			if resp.StatusCode != tc.want {
				t.Errorf("GET %s %q: %s, want %d", tc.path, tc.header, resp.Status, tc.want)
			}
			if tc.want == http.StatusUpgradeRequired && resp.Header.Get("Sec-WebSocket-Version") != "13" {
				t.Errorf("426 response Sec-WebSocket-Version = %q, want 13", resp.Header.Get("Sec-WebSocket-Version"))
			}
		})
	}
}
