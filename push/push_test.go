package push_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/push"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// device is a started Device whose pushes arrive on a channel.
type device struct {
	*push.Device
	pushes chan push.Push
	discs  chan push.Disconnect
}

func startDevice(t *testing.T, url string, token string, cfg *push.DeviceConfig) *device {
	t.Helper()
	d := &device{pushes: make(chan push.Push, 1000), discs: make(chan push.Disconnect, 10)}
	var c push.DeviceConfig
	if cfg != nil {
		c = *cfg
	}
	c.URL, c.Token = url, token
	c.OnPush = func(p push.Push) { d.pushes <- p }
	c.OnDisconnect = func(x push.Disconnect) { d.discs <- x }
	c.MinBackoff = 20 * time.Millisecond
	var err error
	if d.Device, err = push.NewDevice(&c); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop(context.Background()) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := d.WaitConnected(ctx); err != nil {
		t.Fatalf("device %s: %v", url, err)
	}
	return d
}

func (d *device) next(t *testing.T) push.Push {
	t.Helper()
	select {
	case p := <-d.pushes:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no push within 10s")
	}
	return push.Push{}
}

func token(t *testing.T, n *mortartest.Node, c push.Claims) string {
	t.Helper()
	tok, err := push.SignToken(n.PushSecret(), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestPushTargets(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	pc, err := push.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		url  string
		cfg  *push.DeviceConfig
	}{
		{"ws-json", n.PushURL(), nil},
		{"ws-msgpack", n.PushURL(), &push.DeviceConfig{Msgpack: true}},
		{"tcp-json", n.PushTCPURL(), nil},
		{"tcp-msgpack", n.PushTCPURL(), &push.DeviceConfig{Msgpack: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := "dev-" + tc.name
			d := startDevice(t, tc.url, token(t, n, push.Claims{Client: client, User: "u-" + tc.name}), tc.cfg)
			if _, err := d.Subscribe(ctx, "news-"+tc.name); err != nil {
				t.Fatal(err)
			}
			type msg struct {
				N int    `json:"n"`
				S string `json:"s"`
			}
			for i, to := range []push.Target{push.ToClient(client), push.ToUser("u-" + tc.name), push.ToChannel("news-" + tc.name), push.ToAll()} {
				want := msg{N: i, S: to.String()}
				if _, err := pc.Send(ctx, to, want, nil); err != nil {
					t.Fatalf("Send(%s): %v", to, err)
				}
				p := d.next(t)
				var got msg
				if err := json.Unmarshal(p.Data, &got); err != nil || got != want {
					t.Fatalf("push to %s = %s (%v), want %+v", to, p.Data, err, want)
				}
				if ch := "news-" + tc.name; (to == push.ToChannel(ch)) != (p.Channel == ch) {
					t.Errorf("push to %s has channel %q", to, p.Channel)
				}
			}
			// Acknowledged delivery.
			res, err := pc.Send(ctx, push.ToClient(client), "ack me", &push.SendOpts{Ack: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Acks) != 1 {
				t.Errorf("acks = %+v, want one", res.Acks)
			}
			d.next(t)
			// The client publishes to a channel it is subscribed to.
			off, err := d.Publish(ctx, "news-"+tc.name, map[string]string{"from": "device"})
			if err != nil {
				t.Fatal(err)
			}
			if p := d.next(t); p.Offset != off || string(p.Data) != `{"from":"device"}` {
				t.Errorf("own publish came back as %+v, offset %d", p, off)
			}
		})
	}
}

func TestPushRecovery(t *testing.T) {
	n := mortartest.StartNode(t)
	pc, _ := push.New(n.Dial(t), nil)
	ctx := t.Context()
	proxy := mortartest.NewProxy(t, strings.TrimPrefix(n.AdminURL(), "http://"))
	url := "ws://" + strings.TrimPrefix(proxy.URL(), "nats://") + "/push/ws"
	recovered := make(chan bool, 10)
	d := startDevice(t, url, token(t, n, push.Claims{Client: "r1"}), &push.DeviceConfig{
		OnRecovery: func(ch string, ok bool) { recovered <- ok },
	})
	// Give the channel a message so that the subscription has a position.
	if _, err := pc.Send(ctx, push.ToChannel("feed"), 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Subscribe(ctx, "feed"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		pc.Send(ctx, push.ToChannel("feed"), i, nil)
		if p := d.next(t); string(p.Data) != fmt.Sprint(i) {
			t.Fatalf("push %d = %s", i, p.Data)
		}
	}
	// Cut the device off; while it is away, three more are published.
	proxy.Cut()
	select {
	case <-d.discs:
	case <-time.After(10 * time.Second):
		t.Fatal("no disconnect after the cut")
	}
	for i := 4; i <= 6; i++ {
		if _, err := pc.Send(ctx, push.ToChannel("feed"), i, nil); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Restore()
	for i := 4; i <= 6; i++ {
		if p := d.next(t); string(p.Data) != fmt.Sprint(i) || p.Channel != "feed" {
			t.Fatalf("recovered push %d = %+v", i, p)
		}
	}
	select {
	case ok := <-recovered:
		if !ok {
			t.Error("recovery reported missing messages")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no recovery report")
	}
	// New pushes follow, once each.
	pc.Send(ctx, push.ToChannel("feed"), 7, nil)
	if p := d.next(t); string(p.Data) != "7" {
		t.Fatalf("push after recovery = %s", p.Data)
	}
	select {
	case p := <-d.pushes:
		t.Errorf("unexpected extra push %+v", p)
	default:
	}
}

// TestPushPermissions: what a connection may subscribe and publish to is
// checked per channel, for push tokens with perms and for connections
// with a mortar session.
func TestPushPermissions(t *testing.T) {
	n := mortartest.StartNode(t)
	ctx := t.Context()
	limited := startDevice(t, n.PushURL(), token(t, n, push.Claims{Client: "p1", Perms: []string{"push:subscribe:news", "push:publish:chat"}}), nil)
	if _, err := limited.Subscribe(ctx, "news"); err != nil {
		t.Fatalf("permitted subscribe: %v", err)
	}
	if _, err := limited.Publish(ctx, "chat", "hi"); err != nil {
		t.Fatalf("permitted publish: %v", err)
	}
	if _, err := limited.Subscribe(ctx, "sports"); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Errorf("subscribe beyond the token's perms = %v, want permission_denied", err)
	}
	if _, err := limited.Publish(ctx, "news", "x"); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Errorf("publish beyond the token's perms = %v, want permission_denied", err)
	}

	// A user's session connects as the user, with the user's permissions.
	admin := n.Dial(t)
	if err := admin.Do(ctx, "auth.user.add", map[string]any{"name": "ann", "password": "ann-password", "permissions": []string{"push:subscribe:alerts", "push:token"}}, nil); err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	if err := admin.Do(ctx, "auth.login", map[string]string{"user": "ann", "password": "ann-password"}, &login); err != nil {
		t.Fatal(err)
	}
	var info push.ConnectInfo
	got := make(chan push.ConnectInfo, 1)
	d := startDevice(t, n.PushURL(), login.Token, &push.DeviceConfig{Client: "ann-phone", OnConnect: func(i push.ConnectInfo) { got <- i }})
	info = <-got
	if info.Client != "ann-phone" || info.User != "ann" {
		t.Errorf("session connect = %+v, want client ann-phone of user ann", info)
	}
	if _, err := d.Subscribe(ctx, "alerts"); err != nil {
		t.Fatalf("permitted subscribe: %v", err)
	}
	if _, err := d.Subscribe(ctx, "news"); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Errorf("subscribe without the permission = %v, want permission_denied", err)
	}
	// A token carries no more than its issuer holds.
	ann := n.DialAs(t, login.Token)
	c, err := push.New(ann, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Token(ctx, push.Claims{Client: "x", Perms: []string{"push:subscribe:alerts"}}, time.Minute); err != nil {
		t.Errorf("token with the issuer's own permission: %v", err)
	}
	if _, err := c.Token(ctx, push.Claims{Client: "x", Perms: []string{"push:publish:*"}}, time.Minute); mortar.ErrorCode(err) != mortar.CodePermissionDenied {
		t.Errorf("token with more than the issuer holds = %v, want permission_denied", err)
	}
	// A bad credential is refused as any bad token.
	bad, err := push.NewDevice(&push.DeviceConfig{URL: n.PushURL(), Token: "mk_bogus", MinBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := bad.WaitConnected(wctx); err == nil {
		t.Error("a bogus credential connected")
	}
	bad.Stop(context.Background())
}
