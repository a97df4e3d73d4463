package push_test

import (
	"testing"
	"time"

	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/push"
)

// TestPushCluster pushes from one node to devices connected to others.
func TestPushCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := mortartest.StartCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	pc, err := push.New(n1.Dial(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	d2 := startDevice(t, n2.PushURL(), token(t, n2, push.Claims{Client: "d2", User: "alice", Channels: []string{"news"}}), nil)
	d3 := startDevice(t, n3.PushTCPURL(), token(t, n3, push.Claims{Client: "d3", User: "alice"}), nil)
	if _, err := d3.Subscribe(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	for _, to := range []push.Target{push.ToClient("d2"), push.ToClient("d3")} {
		if _, err := pc.Send(ctx, to, to.String(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if p := d2.next(t); string(p.Data) != `"client d2"` {
		t.Errorf("d2 got %s", p.Data)
	}
	if p := d3.next(t); string(p.Data) != `"client d3"` {
		t.Errorf("d3 got %s", p.Data)
	}
	for _, to := range []push.Target{push.ToUser("alice"), push.ToChannel("news"), push.ToAll()} {
		res, err := pc.Send(ctx, to, to.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []*device{d2, d3} {
			p := d.next(t)
			if string(p.Data) != `"`+to.String()+`"` {
				t.Errorf("push to %s arrived as %s", to, p.Data)
			}
			if to == push.ToChannel("news") && (p.Offset == 0 || p.Offset != res.Offset) {
				t.Errorf("channel push offset %d, send reported %d", p.Offset, res.Offset)
			}
		}
	}
	// Presence and connection lists gather every node.
	pres, err := pc.Presence(ctx, "news")
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, ci := range pres.Conns {
		nodes[ci.Client] = ci.Node
	}
	if pres.Nodes != 3 || pres.Total != 2 || nodes["d2"] != "n2" || nodes["d3"] != "n3" {
		t.Errorf("presence = %+v", pres)
	}
	// Every node's directory knows where each client is.
	for _, n := range c.Nodes {
		pn, _ := push.New(n.Dial(t), nil)
		waitLocated(t, pn, "d2", "n2")
		waitLocated(t, pn, "d3", "n3")
	}
	// Acknowledgements come back across nodes.
	res, err := pc.Send(ctx, push.ToUser("alice"), "ack", &push.SendOpts{Ack: true, AckMin: 2, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Acks) != 2 {
		t.Errorf("acks = %+v, want 2", res.Acks)
	}
	d2.next(t)
	d3.next(t)
	// A connection with d2's client ID on another node replaces it.
	d2b := startDevice(t, n3.PushURL(), token(t, n3, push.Claims{Client: "d2"}), nil)
	select {
	case disc := <-d2.discs:
		if disc.Code != 4003 || disc.Reconnect {
			t.Errorf("replaced device: %+v, want 4003 without reconnect", disc)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first d2 was not replaced")
	}
	pc.Send(ctx, push.ToClient("d2"), "new", nil)
	if p := d2b.next(t); string(p.Data) != `"new"` {
		t.Errorf("new d2 got %s", p.Data)
	}
	waitLocated(t, pc, "d2", "n3")
	d3.Stop(ctx)
	waitLocated(t, pc, "d3", "")
}

// waitLocated waits until pc locates client on node alone ("" for
// nowhere).
func waitLocated(t *testing.T, pc *push.Client, client, node string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		locs, err := pc.Locate(t.Context(), client)
		if err != nil {
			t.Fatal(err)
		}
		if node == "" && len(locs) == 0 || len(locs) == 1 && locs[0].Node == node && locs[0].Conns == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Locate(%s) = %+v, want %q", client, locs, node)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
