package pushserver_test

import (
	"encoding/json"
	"testing"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/push"
)

func TestCommands(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	for _, tc := range []struct {
		name string
		dial func(*testing.T) *rawConn
	}{
		{"ws-json", func(t *testing.T) *rawConn { return dialWS(t, n) }},
		{"ws-msgpack", func(t *testing.T) *rawConn { return dialWS(t, n, "mortar.msgpack") }},
		{"tcp-json", func(t *testing.T) *rawConn { return dialTCP(t, n) }},
		{"tcp-msgpack", func(t *testing.T) *rawConn { return dialTCP(t, n).msgpack() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := "cmd-" + tc.name
			c := tc.dial(t)
			c.connect(token(t, n, pushwire.Claims{Client: "cmd-" + tc.name}))

			c.send(&pushwire.Message{Op: pushwire.OpPing})
			if m := c.nextMsg(); m.Op != pushwire.OpPong {
				t.Fatalf("ping got %s, want pong", jsonString(m))
			}

			// Commands without an id get no reply, even when they fail;
			// the pong shows that nothing came before it.
			c.send(&pushwire.Message{Op: pushwire.OpPublish, Channel: "has space", Data: json.RawMessage(`1`)})
			c.send(&pushwire.Message{Op: "frobnicate"})
			c.send(&pushwire.Message{Op: pushwire.OpAck, Ack: "n1-a999"})
			c.send(&pushwire.Message{Op: pushwire.OpPing})
			if m := c.nextMsg(); m.Op != pushwire.OpPong {
				t.Fatalf("after commands without id, got %s, want only a pong", jsonString(m))
			}

			for _, bad := range []*pushwire.Message{
				{Op: pushwire.OpPublish, Channel: "has space", Data: json.RawMessage(`1`)},
				{Op: pushwire.OpPublish, Channel: ch},
				{Op: pushwire.OpSubscribe, Channel: ""},
				{Op: "frobnicate"},
			} {
				if r := c.call(bad); r.Error == nil || r.Error.Code != "invalid_argument" {
					t.Errorf("%s got %s, want an invalid_argument error", jsonString(bad), jsonString(r))
				}
			}

			sub := c.subscribe(&pushwire.Message{Channel: ch})
			if sub.Channel != ch || sub.Epoch == "" {
				t.Errorf("subscribe result = %s, want channel %s with an epoch", jsonString(sub), ch)
			}
			// The reply and the push of the client's own publish may come
			// in either order.
			c.nextID++
			c.send(&pushwire.Message{Op: pushwire.OpPublish, ID: c.nextID, Channel: ch, Data: json.RawMessage(`{"a":[1,"b",true,null]}`)})
			var reply, own *pushwire.Message
			for reply == nil || own == nil {
				switch m := c.nextMsg(); {
				case m.Op == pushwire.OpReply && m.ID == c.nextID && reply == nil:
					reply = m
				case m.Op == pushwire.OpPush && own == nil:
					own = m
				default:
					t.Fatalf("got %s, want the publish's reply and push", jsonString(m))
				}
			}
			var pub pushwire.PublishResult
			if reply.Error != nil || json.Unmarshal(reply.Result, &pub) != nil || pub.Offset <= sub.Offset {
				t.Fatalf("publish got %s, want an offset after %d", jsonString(reply), sub.Offset)
			}
			if own.Channel != ch || own.Offset != pub.Offset || string(own.Data) != `{"a":[1,"b",true,null]}` {
				t.Errorf("own publish came back as %s, want channel %s, offset %d", jsonString(own), ch, pub.Offset)
			}
			if r := c.call(&pushwire.Message{Op: pushwire.OpUnsubscribe, Channel: ch}); r.Error != nil {
				t.Errorf("unsubscribe got %s", jsonString(r))
			}
		})
	}
}

func TestAck(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	for _, tr := range []string{"ws", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			c := dial(t, n, tr)
			res := c.connect(token(t, n, pushwire.Claims{Client: "ack-" + tr}))
			type result struct {
				res *push.SendResult
				err error
			}
			done := make(chan result, 1)
			go func() {
				r, err := pc.Send(ctx(t), push.ToClient("ack-"+tr), "ack me", &push.SendOpts{Ack: true})
				done <- result{r, err}
			}()
			m := c.nextPush()
			if m.Ack == "" {
				t.Fatalf("push %s carries no ack ID", jsonString(m))
			}
			c.send(&pushwire.Message{Op: pushwire.OpAck, Ack: m.Ack})
			got := <-done
			if got.err != nil {
				t.Fatalf("Send with ack: %v", got.err)
			}
			if len(got.res.Acks) != 1 || got.res.Acks[0].ID != m.Ack || got.res.Acks[0].Conn != res.Conn {
				t.Errorf("acks = %s, want one for %s from %s", jsonString(got.res.Acks), m.Ack, res.Conn)
			}
		})
	}
}
