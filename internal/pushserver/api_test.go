package pushserver_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/push"
)

func TestServerSideSubscriptions(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	for _, tr := range []string{"ws", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			client := "sss-" + tr
			alpha, beta, gamma := "alpha-"+tr, "beta-"+tr, "gamma-"+tr
			c := dial(t, n, tr)
			if tr == "tcp" {
				c.msgpack()
			}
			res := c.connect(token(t, n, pushwire.Claims{Client: client, Channels: []string{alpha, beta}}))
			var subs []string
			for _, s := range res.Subs {
				subs = append(subs, s.Channel)
				if s.Epoch == "" {
					t.Errorf("sub %s has no epoch", jsonString(s))
				}
			}
			if fmt.Sprint(subs) != fmt.Sprint([]string{alpha, beta}) {
				t.Errorf("connect result subs = %s, want %s and %s", jsonString(res.Subs), alpha, beta)
			}
			off := send(t, pc, push.ToChannel(alpha), "a1").Offset
			if m := c.nextPush(); m.Channel != alpha || m.Offset != off || string(m.Data) != `"a1"` {
				t.Errorf("push = %s, want a1 on %s at %d", jsonString(m), alpha, off)
			}

			// The backend subscribes the client: a sub notice, then pushes.
			if k, err := pc.Subscribe(ctx(t), push.ToClient(client), gamma); err != nil || k != 1 {
				t.Fatalf("Subscribe(%s, %s) = %d, %v, want 1 connection", client, gamma, k, err)
			}
			if m := c.nextMsg(); m.Op != pushwire.OpSub || m.Channel != gamma || m.Epoch == "" {
				t.Fatalf("got %s, want a sub notice for %s", jsonString(m), gamma)
			}
			send(t, pc, push.ToChannel(gamma), "g1")
			if m := c.nextPush(); m.Channel != gamma || string(m.Data) != `"g1"` {
				t.Errorf("push = %s, want g1 on %s", jsonString(m), gamma)
			}
			p, err := pc.Presence(ctx(t), gamma)
			if err != nil || p.Total != 1 || p.Conns[0].Conn != res.Conn {
				t.Errorf("Presence(%s) = %s, %v, want %s", gamma, jsonString(p), err, res.Conn)
			}

			// Unsubscribed: an unsub notice, and no more pushes. Channel
			// pushes travel through the history stream in order, so the
			// push to beta coming next shows the one to gamma was dropped.
			if k, err := pc.Unsubscribe(ctx(t), push.ToClient(client), gamma); err != nil || k != 1 {
				t.Fatalf("Unsubscribe(%s, %s) = %d, %v, want 1 connection", client, gamma, k, err)
			}
			if m := c.nextMsg(); m.Op != pushwire.OpUnsub || m.Channel != gamma {
				t.Fatalf("got %s, want an unsub notice for %s", jsonString(m), gamma)
			}
			send(t, pc, push.ToChannel(gamma), "g2")
			send(t, pc, push.ToChannel(beta), "b1")
			if m := c.nextPush(); m.Channel != beta || string(m.Data) != `"b1"` {
				t.Errorf("push = %s, want b1 on %s (nothing more on %s)", jsonString(m), beta, gamma)
			}
			// Unsubscribing again acts on no connection.
			if k, err := pc.Unsubscribe(ctx(t), push.ToClient(client), gamma); err != nil || k != 0 {
				t.Errorf("second Unsubscribe = %d, %v, want 0", k, err)
			}
		})
	}
}

func TestConnsAndPresence(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	a := dialWS(t, n)
	ra := a.connect(token(t, n, pushwire.Claims{Client: "ca", User: "ua", Channels: []string{"room"}}))
	b := dialTCP(t, n).msgpack()
	rb := b.connect(token(t, n, pushwire.Claims{Client: "cb", User: "ub"}))
	c := dialWS(t, n, "mortar.msgpack")
	rc := c.connect(token(t, n, pushwire.Claims{Client: "cc", User: "ua"}))
	c.subscribe(&pushwire.Message{Channel: "room"})
	c.subscribe(&pushwire.Message{Channel: "lobby"})

	type conn struct{ Conn, Client, User, Node, Transport, Encoding, Channels string }
	summarize := func(cs []push.ConnInfo) []conn {
		var out []conn
		for _, ci := range cs {
			if ci.Remote == "" || ci.Since.IsZero() {
				t.Errorf("conn %s lacks remote address or start time", jsonString(ci))
			}
			out = append(out, conn{ci.Conn, ci.Client, ci.User, ci.Node, ci.Transport, ci.Encoding, fmt.Sprint(ci.Channels)})
		}
		return out
	}
	wa := conn{ra.Conn, "ca", "ua", "n1", "websocket", "json", "[room]"}
	wb := conn{rb.Conn, "cb", "ub", "n1", "tcp", "msgpack", "[]"}
	wc := conn{rc.Conn, "cc", "ua", "n1", "websocket", "msgpack", "[lobby room]"}
	for _, tc := range []struct {
		name  string
		get   func() (*push.Conns, error)
		want  []conn
		total int
	}{
		{"all", func() (*push.Conns, error) { return pc.Conns(ctx(t), nil) }, []conn{wa, wb, wc}, 3},
		{"client", func() (*push.Conns, error) { return pc.Conns(ctx(t), &push.ConnsFilter{Client: "cb"}) }, []conn{wb}, 1},
		{"user", func() (*push.Conns, error) { return pc.Conns(ctx(t), &push.ConnsFilter{User: "ua"}) }, []conn{wa, wc}, 2},
		{"channel", func() (*push.Conns, error) { return pc.Conns(ctx(t), &push.ConnsFilter{Channel: "lobby"}) }, []conn{wc}, 1},
		{"limit", func() (*push.Conns, error) { return pc.Conns(ctx(t), &push.ConnsFilter{Limit: 1}) }, []conn{wa}, 3},
		{"presence", func() (*push.Conns, error) { return pc.Presence(ctx(t), "room") }, []conn{wa, wc}, 2},
		{"nobody", func() (*push.Conns, error) { return pc.Presence(ctx(t), "empty") }, nil, 0},
	} {
		got, err := tc.get()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if g, w := jsonString(summarize(got.Conns)), jsonString(tc.want); g != w {
			t.Errorf("%s: conns = %s, want %s", tc.name, g, w)
		}
		if got.Total != tc.total || got.Nodes != 1 {
			t.Errorf("%s: total %d on %d nodes, want %d on 1", tc.name, got.Total, got.Nodes, tc.total)
		}
	}

	// A connection that closes is dropped, from its channels too.
	c.nc.Close()
	waitFor(t, "cc to leave the connection list", func() bool {
		got, err := pc.Conns(ctx(t), nil)
		return err == nil && !slices.ContainsFunc(got.Conns, func(ci push.ConnInfo) bool { return ci.Client == "cc" })
	})
	got, err := pc.Presence(ctx(t), "room")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := jsonString(summarize(got.Conns)), jsonString([]conn{wa}); g != w {
		t.Errorf("presence after close: conns = %s, want %s", g, w)
	}
}

func TestDisconnect(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	ws := dialWS(t, n)
	ws.connect(token(t, n, pushwire.Claims{Client: "k1", User: "kicked"}))
	tcp := dialTCP(t, n)
	tcp.connect(token(t, n, pushwire.Claims{Client: "k2", User: "kicked"}))
	stay := connected(t, n, "ws", "k3")

	if k, err := pc.Disconnect(ctx(t), push.ToClient("k1")); err != nil || k != 1 {
		t.Fatalf("Disconnect(k1) = %d, %v, want 1", k, err)
	}
	ws.expectClose(4007)
	if k, err := pc.Disconnect(ctx(t), push.ToUser("kicked")); err != nil || k != 1 {
		t.Fatalf("Disconnect(user kicked) = %d, %v, want 1 (k2; k1 is gone)", k, err)
	}
	if got := tcp.expectClose(4007); got.reconnect {
		t.Errorf("disconnect %+v: reconnect = true, want false", got)
	}
	if k, err := pc.Disconnect(ctx(t), push.ToClient("nobody")); err != nil || k != 0 {
		t.Errorf("Disconnect(nobody) = %d, %v, want 0", k, err)
	}
	send(t, pc, push.ToClient("k3"), "still here")
	if m := stay.nextPush(); string(m.Data) != `"still here"` {
		t.Errorf("push = %s, want %q", m.Data, "still here")
	}
}

func TestHistoryAndRecovery(t *testing.T) {
	t.Parallel()
	n := startNode(t, pushOpts{})
	pc := pushClient(t, n)
	const ch = "hist"
	var offsets []uint64
	for i := 1; i <= 3; i++ {
		offsets = append(offsets, send(t, pc, push.ToChannel(ch), i).Offset)
	}
	if !slices.IsSorted(offsets) || offsets[0] == 0 || offsets[0] == offsets[1] {
		t.Fatalf("offsets = %v, want increasing", offsets)
	}
	h, err := pc.History(ctx(t), ch, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []pushwire.Publication{{Offset: offsets[0], Data: []byte("1")}, {Offset: offsets[1], Data: []byte("2")}, {Offset: offsets[2], Data: []byte("3")}}
	if g, w := jsonString(h.Pubs), jsonString(want); g != w || h.Epoch == "" || h.Oldest != offsets[0] {
		t.Errorf("History(%s) = epoch %q, oldest %d, pubs %s; want an epoch, oldest %d, pubs %s", ch, h.Epoch, h.Oldest, g, offsets[0], w)
	}
	after, err := pc.History(ctx(t), ch, offsets[0], 1)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := jsonString(after.Pubs), jsonString(want[1:2]); g != w {
		t.Errorf("History(%s, after %d, limit 1) pubs = %s, want %s", ch, offsets[0], g, w)
	}
	empty, err := pc.History(ctx(t), "never", 0, 0)
	if err != nil || len(empty.Pubs) != 0 {
		t.Errorf("History(never) = %s, %v, want no pubs", jsonString(empty), err)
	}

	for _, tc := range []struct {
		name      string
		offset    uint64
		epoch     string
		recovered bool
		pubs      []pushwire.Publication
	}{
		{"missed two", offsets[0], h.Epoch, true, want[1:]},
		{"missed none", offsets[2], h.Epoch, true, nil},
		{"wrong epoch", offsets[0], "1", false, nil},
		{"no epoch", offsets[0], "", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connected(t, n, "ws", "rec")
			got := c.subscribe(&pushwire.Message{Channel: ch, Recover: true, Offset: tc.offset, Epoch: tc.epoch})
			if got.Recovered != tc.recovered || got.Epoch != h.Epoch || got.Offset != offsets[2] {
				t.Errorf("recovered %v, epoch %q, offset %d; want %v, %q, %d", got.Recovered, got.Epoch, got.Offset, tc.recovered, h.Epoch, offsets[2])
			}
			if g, w := jsonString(got.Pubs), jsonString(tc.pubs); g != w {
				t.Errorf("pubs = %s, want %s", g, w)
			}
		})
	}

	// Recovered messages come first, then live pushes, each once.
	c := connected(t, n, "tcp", "rec-live")
	got := c.subscribe(&pushwire.Message{Channel: ch, Recover: true, Offset: offsets[1], Epoch: h.Epoch})
	if g, w := jsonString(got.Pubs), jsonString(want[2:]); g != w || !got.Recovered {
		t.Errorf("recovered %v, pubs %s; want true, %s", got.Recovered, g, w)
	}
	off := send(t, pc, push.ToChannel(ch), "live").Offset
	if m := c.nextPush(); m.Offset != off || string(m.Data) != `"live"` {
		t.Errorf("push = %s, want live at %d", jsonString(m), off)
	}
	c.send(&pushwire.Message{Op: pushwire.OpPing})
	if m := c.nextMsg(); m.Op != pushwire.OpPong {
		t.Errorf("got %s, want pong (and no push twice)", jsonString(m))
	}
}
