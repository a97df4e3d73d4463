package pushserver_test

import (
	"bufio"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/push"
)

func TestMalformed(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	good := connected(t, n, "ws", "good")
	msgpackConnect := func(t *testing.T, c *rawConn) {
		c.msgpack().connect(token(t, n, pushwire.Claims{Client: "bad-" + t.Name()}))
	}
	t.Run("bad", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			tr    string
			setup func(*testing.T, *rawConn) // nil: connect with JSON
			send  func(*rawConn)
		}{
			{"text not json", "ws", nil, func(c *rawConn) { c.writeFrame(pushwire.OpcodeText, []byte("not json")) }},
			{"text truncated json", "ws", nil, func(c *rawConn) { c.writeFrame(pushwire.OpcodeText, []byte(`{"op":"ping"`)) }},
			{"text without op", "ws", nil, func(c *rawConn) { c.writeFrame(pushwire.OpcodeText, []byte(`{"id":7}`)) }},
			{"text json array", "ws", nil, func(c *rawConn) { c.writeFrame(pushwire.OpcodeText, []byte(`[1,2]`)) }},
			{"binary on json", "ws", nil, func(c *rawConn) {
				c.writeFrame(pushwire.OpcodeBinary, []byte{0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i', 'n', 'g'})
			}},
			{"msgpack garbage", "ws", msgpackConnect, func(c *rawConn) { c.writeFrame(pushwire.OpcodeBinary, []byte{0x82, 0xa2, 'o', 'p', 0xc1, 0xff}) }},
			{"msgpack truncated", "ws", msgpackConnect, func(c *rawConn) { c.writeFrame(pushwire.OpcodeBinary, []byte{0x81, 0xa2, 'o', 'p', 0xa4, 'p', 'i'}) }},
			{"text on msgpack", "ws", msgpackConnect, func(c *rawConn) { c.writeFrame(pushwire.OpcodeText, []byte(`{"op":"ping"}`)) }},
			{"tcp not json", "tcp", nil, func(c *rawConn) { c.sendRaw([]byte("not json")) }},
			{"tcp msgpack garbage", "tcp", msgpackConnect, func(c *rawConn) { c.sendRaw([]byte{0x81, 0xc1}) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				c := dial(t, n, tc.tr)
				if tc.setup != nil {
					tc.setup(t, c)
				} else {
					c.connect(token(t, n, pushwire.Claims{Client: "bad-" + t.Name()}))
				}
				tc.send(c)
				got := c.expectClose(4000)
				if !strings.HasPrefix(got.reason, "bad request") {
					t.Errorf("close reason = %q, want it to start with %q", got.reason, "bad request")
				}
			})
		}
	})
	// A malformed frame closes only its own connection.
	send(t, pc, push.ToClient("good"), map[string]int{"n": 1})
	if m := good.nextPush(); string(m.Data) != `{"n":1}` {
		t.Errorf("push to the good client = %s, want %s", m.Data, `{"n":1}`)
	}
}

func TestFrameTooLarge(t *testing.T) {
	t.Parallel()
	const maxFrame = 4096
	n := startNode(t, pushOpts{MaxFrame: maxFrame})
	t.Run("ws", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "big-ws")
		c.writeFrame(pushwire.OpcodeText, []byte(`{"op":"ping","x":"`+strings.Repeat("x", maxFrame)+`"}`))
		c.expectClose(1009)
	})
	t.Run("ws at the limit", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "limit-ws")
		pad := maxFrame - len(`{"op":"ping","x":""}`)
		c.writeFrame(pushwire.OpcodeText, []byte(`{"op":"ping","x":"`+strings.Repeat("x", pad)+`"}`))
		if m := c.nextMsg(); m.Op != pushwire.OpPong {
			t.Fatalf("a %d-byte message got %s, want pong", maxFrame, jsonString(m))
		}
	})
	t.Run("ws fragments", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "frag-ws")
		half := []byte(strings.Repeat("x", maxFrame/2+1))
		c.write(frame(pushwire.OpcodeText, half, false))
		c.write(frame(pushwire.OpcodeContinuation, half, true))
		c.expectClose(1009)
	})
	t.Run("tcp", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "tcp", "big-tcp")
		c.write(binary.BigEndian.AppendUint32(nil, 1<<20)) // only the header
		got := c.expectClose(1009)
		if got.reconnect {
			t.Errorf("disconnect %+v: reconnect = true, want false", got)
		}
	})
	t.Run("unmasked", func(t *testing.T) {
		t.Parallel()
		c := connected(t, n, "ws", "unmasked")
		c.write(pushwire.AppendFrame(nil, pushwire.OpcodeText, []byte(`{"op":"ping"}`), true, nil))
		c.expectClose(1002)
	})
}

func TestReplace(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	tok := token(t, n, pushwire.Claims{Client: "dup", User: "u-dup"})
	first := dialWS(t, n)
	first.connect(tok)
	second := dialTCP(t, n)
	res := second.connect(tok)
	got := first.expectClose(4003)
	if got.reason != "replaced" {
		t.Errorf("close reason = %q, want %q", got.reason, "replaced")
	}
	// The newer connection holds the client ID, and the user's too.
	send(t, pc, push.ToClient("dup"), 1)
	send(t, pc, push.ToUser("u-dup"), 2)
	for _, want := range []string{"1", "2"} {
		if m := second.nextPush(); string(m.Data) != want {
			t.Errorf("push data = %s, want %s", m.Data, want)
		}
	}
	conns, err := pc.Conns(ctx(t), &push.ConnsFilter{Client: "dup"})
	if err != nil {
		t.Fatal(err)
	}
	if conns.Total != 1 || len(conns.Conns) != 1 || conns.Conns[0].Conn != res.Conn {
		t.Errorf("Conns(dup) = %s, want only %s", jsonString(conns), res.Conn)
	}
}

func TestSameClientKeep(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{SameClient: "keep"})
	pc := pushClient(t, n)
	a := connected(t, n, "ws", "twin")
	b := connected(t, n, "tcp", "twin")
	send(t, pc, push.ToClient("twin"), "both")
	for _, c := range []*rawConn{a, b} {
		if m := c.nextPush(); string(m.Data) != `"both"` {
			t.Errorf("push data = %s, want %q", m.Data, "both")
		}
	}
	conns, err := pc.Conns(ctx(t), &push.ConnsFilter{Client: "twin"})
	if err != nil {
		t.Fatal(err)
	}
	if conns.Total != 2 {
		t.Errorf("Conns(twin).Total = %d, want 2", conns.Total)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 5
	n := startNode(t, pushOpts{Rate: 5, Burst: burst})
	for _, tr := range []string{"ws", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			c := connected(t, n, tr, "flood-"+tr)
			// Many commands in one write, so that the node reads them at
			// once: the first few are served, the next refused, and the
			// client is closed once it is past twice the burst.
			var b []byte
			for i := range 4 * burst {
				b = append(b, c.encode(&pushwire.Message{Op: pushwire.OpUnsubscribe, ID: uint64(100 + i), Channel: "x"})...)
			}
			c.write(b)
			var ok, refused int
			for {
				f := c.next()
				if f.op == pushwire.OpcodeClose {
					c.queue = append([]rawFrame{f}, c.queue...)
					break
				}
				m := c.decode(f)
				if m.Op == pushwire.OpDisconnect {
					c.queue = append([]rawFrame{f}, c.queue...)
					break
				}
				switch {
				case m.Op != pushwire.OpReply:
					t.Fatalf("got %s, want replies", jsonString(m))
				case m.Error == nil:
					ok++
				case m.Error.Code == "resource_exhausted":
					refused++
				default:
					t.Fatalf("reply %s, want success or resource_exhausted", jsonString(m))
				}
			}
			c.expectClose(4005)
			if ok > burst || refused == 0 || refused > burst {
				t.Errorf("before the close: %d served and %d refused, want at most %d served and 1 to %d refused", ok, refused, burst, burst)
			}
		})
	}
}

func TestSlowClient(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{SendQueue: 64 << 10})
	pc := pushClient(t, n)
	slow := dialWS(t, n)
	slow.connect(token(t, n, pushwire.Claims{Client: "slow"}))
	slow.nc.(interface{ SetReadBuffer(int) error }).SetReadBuffer(4 << 10)
	fast := connected(t, n, "tcp", "fast")
	big := strings.Repeat("x", 60<<10)
	sent := 0
	for i := range 200 {
		send(t, pc, push.ToClient("slow"), big)
		if i%50 == 0 {
			send(t, pc, push.ToClient("fast"), i)
			sent++
		}
	}
	// The slow client never reads: it is dropped, the others not.
	waitFor(t, "the slow connection to close", func() bool {
		conns, err := pc.Conns(ctx(t), &push.ConnsFilter{Client: "slow"})
		return err == nil && conns.Total == 0
	})
	if got := metric(t, n, "mortar_push_slow_total"); got != 1 {
		t.Errorf("mortar_push_slow_total = %v, want 1", got)
	}
	send(t, pc, push.ToClient("fast"), "after")
	for i := range sent {
		if m := fast.nextPush(); string(m.Data) != strconv.Itoa(i*50) {
			t.Errorf("push %d to the fast client = %s, want %d", i, m.Data, i*50)
		}
	}
	if m := fast.nextPush(); string(m.Data) != `"after"` {
		t.Errorf("last push to the fast client = %s, want %q", m.Data, "after")
	}
}

// metric returns the value of an unlabelled metric on the node's
// /metrics, failing the test when it is missing.
func metric(t testing.TB, n *mortartest.Node, name string) float64 {
	t.Helper()
	resp, body := httpGet(t, n.AdminURL(), "/metrics", "Authorization: Bearer "+n.Token())
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", sc.Text(), err)
		}
		return f
	}
	t.Fatalf("no metric %s on /metrics", name)
	return 0
}
