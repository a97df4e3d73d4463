package pushserver_test

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/push"
)

// TestHeartbeat runs with Ping and Pong of one second: the node pings
// after a second without writing, and closes a connection it heard
// nothing from for two.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{Ping: time.Second, Pong: time.Second})

	t.Run("ws silent", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "hb-ws-silent")
		if f := c.next(); f.op != pushwire.OpcodePing {
			t.Fatalf("got %s, want a ping frame", f)
		}
		if got := c.expectClose(4006); got.reason != "idle" {
			t.Errorf("close reason = %q, want %q", got.reason, "idle")
		}
	})
	t.Run("tcp silent", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "tcp", "hb-tcp-silent")
		if m := c.nextMsg(); m.Op != pushwire.OpPing {
			t.Fatalf("got %s, want a ping", jsonString(m))
		}
		if got := c.expectClose(4006); !got.reconnect {
			t.Errorf("disconnect %+v: reconnect = false, want true", got)
		}
	})
	// Clients that answer stay well past ping + pong.
	const stay = 4500 * time.Millisecond
	t.Run("ws answering", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "hb-ws-answering")
		pings := 0
		c.answerFor(stay, func(f rawFrame) {
			if f.op != pushwire.OpcodePing {
				t.Fatalf("got %s, want only pings", f)
			}
			pings++
			c.writeFrame(pushwire.OpcodePong, f.payload)
		})
		if pings < 2 {
			t.Errorf("got %d pings in %v, want at least 2", pings, stay)
		}
		c.send(&pushwire.Message{Op: pushwire.OpPing})
		if m := c.nextMsg(); m.Op != pushwire.OpPong {
			t.Fatalf("got %s, want pong", jsonString(m))
		}
	})
	t.Run("tcp answering", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "tcp", "hb-tcp-answering")
		pings := 0
		c.answerFor(stay, func(f rawFrame) {
			if m := c.decode(f); m.Op != pushwire.OpPing {
				t.Fatalf("got %s, want only pings", jsonString(m))
			}
			pings++
			c.send(&pushwire.Message{Op: pushwire.OpPong})
		})
		if pings < 2 {
			t.Errorf("got %d pings in %v, want at least 2", pings, stay)
		}
		c.send(&pushwire.Message{Op: pushwire.OpPing})
		if m := c.nextMsg(); m.Op != pushwire.OpPong {
			t.Fatalf("got %s, want pong", jsonString(m))
		}
	})
	// Pushes keep the node writing, so it is never writer-idle: it still
	// pings a client it has not heard from, keeps one that answers and
	// closes one that does not.
	busy := func(t *testing.T, client string) (stop func()) {
		pc := pushClient(t, n)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					pc.Send(ctx(t), push.ToClient(client), "busy", nil)
				}
			}
		})
		return func() { close(done); wg.Wait() }
	}
	t.Run("ws busy answering", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "hb-ws-busy")
		stop := busy(t, "hb-ws-busy")
		defer stop()
		pings := 0
		c.answerFor(stay, func(f rawFrame) {
			if f.op == pushwire.OpcodePing {
				pings++
				c.writeFrame(pushwire.OpcodePong, f.payload)
			}
		})
		if pings < 2 {
			t.Errorf("got %d pings in %v while pushes flowed, want at least 2", pings, stay)
		}
	})
	t.Run("ws busy silent", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "hb-ws-busy-silent")
		stop := busy(t, "hb-ws-busy-silent")
		defer stop()
		for {
			f := c.next()
			if f.op == pushwire.OpcodeClose {
				if code, _, _ := pushwire.ParseClose(f.payload); code != 4006 {
					t.Fatalf("closed with %d, want 4006", code)
				}
				return
			}
		}
	})
	// A client that pings on its own (as the SDKs do) is answered, and
	// its pings count as heard; it need not answer the node's.
	t.Run("tcp pinging", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "tcp", "hb-tcp-pinging")
		deadline := time.Now().Add(stay)
		pongs := 0
		for time.Now().Before(deadline) {
			c.send(&pushwire.Message{Op: pushwire.OpPing})
			for {
				m := c.nextMsg()
				if m.Op == pushwire.OpPong {
					pongs++
					break
				}
				if m.Op != pushwire.OpPing {
					t.Fatalf("got %s, want pong or ping", jsonString(m))
				}
			}
			// Wait half a second by reading: nothing but node pings may come.
			c.answerFor(500*time.Millisecond, func(f rawFrame) {
				if m := c.decode(f); m.Op != pushwire.OpPing {
					t.Fatalf("got %s, want only pings", jsonString(m))
				}
			})
		}
		if pongs < 5 {
			t.Errorf("got %d pongs, want one per ping", pongs)
		}
	})
}

// answerFor reads for d, handing each frame to fn. The connection must
// stay open.
func (c *rawConn) answerFor(d time.Duration, fn func(rawFrame)) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f, err := c.tryNext(deadline)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return
		}
		if err != nil {
			c.t.Fatalf("connection lost after %v of %v: %v", d-time.Until(deadline), d, err)
		}
		if f.op == pushwire.OpcodeClose {
			code, reason, _ := pushwire.ParseClose(f.payload)
			c.t.Fatalf("closed %d %q after %v of %v", code, reason, d-time.Until(deadline), d)
		}
		if !c.ws {
			if m := c.decode(f); m.Op == pushwire.OpDisconnect {
				c.t.Fatalf("disconnected %d %q after %v of %v", m.Code, m.Reason, d-time.Until(deadline), d)
			}
		}
		fn(f)
	}
}
