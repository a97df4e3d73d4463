package pushserver_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/push"
)

func TestConnectTimeout(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{ConnectTimeout: time.Second})
	for _, tr := range []string{"ws", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			c := dial(t, n, tr)
			start := time.Now()
			got := c.expectClose(4002)
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("closed after %v, want about the 1s connect timeout", el)
			}
			if !c.ws && !got.reconnect {
				t.Errorf("disconnect %+v: reconnect = false, want true", got)
			}
		})
	}
}

func TestConnectUnauthorized(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	other, err := pushwire.SignToken([]byte("another secret"), pushwire.Claims{Client: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		token  string
		client string
	}{
		{"garbage", "not-a-token", ""},
		{"empty", "", ""},
		{"other secret", other, ""},
		{"other client", token(t, n, pushwire.Claims{Client: "c1"}), "c2"},
		{"expired", token(t, n, pushwire.Claims{Client: "c1", Expires: time.Now().Add(-time.Minute).Unix()}), ""},
		{"tampered", token(t, n, pushwire.Claims{Client: "c1"}) + "x", ""},
	} {
		for _, tr := range []string{"ws", "tcp"} {
			t.Run(tc.name+"/"+tr, func(t *testing.T) {
				t.Parallel()
				c := dial(t, n, tr)
				c.send(&pushwire.Message{Op: pushwire.OpConnect, ID: 1, Token: tc.token, Client: tc.client})
				c.expectClose(4001)
			})
		}
	}
	// A token for the same client as the client field is fine.
	c := dialWS(t, n)
	res := c.connectAs(token(t, n, pushwire.Claims{Client: "c1", User: "u1"}), "c1")
	if res.Client != "c1" || res.User != "u1" || res.Node != n.Name() || res.Conn == "" {
		t.Errorf("connect result = %+v, want client c1, user u1 on node %s", res, n.Name())
	}
}

func TestOpBeforeConnect(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	for _, m := range []*pushwire.Message{
		{Op: pushwire.OpSubscribe, ID: 1, Channel: "news"},
		{Op: pushwire.OpUnsubscribe, ID: 1, Channel: "news"},
		{Op: pushwire.OpPublish, ID: 1, Channel: "news", Data: json.RawMessage(`1`)},
		{Op: pushwire.OpPing},
		{Op: pushwire.OpPong},
		{Op: pushwire.OpAck, Ack: "n1-a1"},
		{Op: "hello", ID: 1},
	} {
		for _, tr := range []string{"ws", "tcp"} {
			t.Run(m.Op+"/"+tr, func(t *testing.T) {
				t.Parallel()
				c := dial(t, n, tr)
				c.send(m)
				c.expectClose(4000)
			})
		}
	}
}

func TestConnectTwice(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	c := connected(t, n, "ws", "twice")
	r := c.call(&pushwire.Message{Op: pushwire.OpConnect, Token: token(t, n, pushwire.Claims{Client: "twice"})})
	if r.Error == nil || r.Error.Code != "failed_precondition" {
		t.Fatalf("second connect = %s, want a failed_precondition error", jsonString(r))
	}
	// The connection still works.
	send(t, pushClient(t, n), push.ToClient("twice"), "still here")
	if m := c.nextPush(); string(m.Data) != `"still here"` {
		t.Errorf("push data = %s, want %q", m.Data, "still here")
	}
}
