package registry_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/registry"
	"github.com/mortarhq/mortar/rpc"
)

func TestRegisterGetListDeregister(t *testing.T) {
	n := mortartest.StartNode(t)
	c := client(t, n.Dial(t))
	ctx := ctxT(t)
	in := inst("orders", "orders-1", 4242)
	in.Zone, in.Version, in.Tags, in.Metadata = "eu-1", "1.2.0", []string{"primary"}, map[string]string{"git": "abc"}
	in.TTL = 3 * time.Second
	reg, err := c.Register(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "orders", "orders-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Node != n.Name() || got.Status != registry.StatusPassing || got.Registered.IsZero() || got.Revision == 0 ||
		got.Weight != registry.WeightDefault || got.Protocol != "zerorpc" || got.Zone != "eu-1" || got.Metadata["git"] != "abc" ||
		got.Endpoint() != "tcp://127.0.0.1:4242" {
		t.Fatalf("Get = %+v", got)
	}
	if ri := reg.Instance(); ri.Revision != got.Revision {
		t.Fatalf("Registration.Instance revision %d, Get %d", ri.Revision, got.Revision)
	}
	if _, err := c.Register(ctx, inst("orders", "orders-2", 4243)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, inst("billing", "b-1", 5000)); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx, "orders")
	if err != nil || len(list) != 2 || list[0].ID != "orders-1" || list[1].ID != "orders-2" {
		t.Fatalf("List(orders) = %v, %v", list, err)
	}
	all, err := c.List(ctx, "")
	if err != nil || len(all) != 3 || all[0].Service != "billing" {
		t.Fatalf("List() = %v, %v", all, err)
	}
	svcs, err := c.Services(ctx)
	if err != nil || len(svcs) != 2 || svcs[1].Name != "orders" || svcs[1].Instances != 2 || svcs[1].Passing != 2 {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	if err := reg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-reg.Stopped()
	if _, err := c.Get(ctx, "orders", "orders-1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get after Stop: %v, want not found", err)
	}
	if ok, err := c.Deregister(ctx, "orders", "orders-1"); ok || err != nil {
		t.Fatalf("Deregister of a gone instance = %v, %v; want false, nil", ok, err)
	}
	if ok, err := c.Deregister(ctx, "orders", "orders-2"); !ok || err != nil {
		t.Fatalf("Deregister = %v, %v; want true, nil", ok, err)
	}
}

func TestBadInput(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	c := client(t, conn)
	ctx := ctxT(t)
	bad := []registry.Instance{
		inst("", "x", 1),
		inst("-svc", "x", 1),
		inst("a.b", "x", 1),
		inst("svc", "", 1),
		inst("svc", "bad\nid", 1),
		inst("svc", "x", 0),
		inst("svc", "x", 70000),
		{Service: "svc", ID: "x", Port: 1},
		{Service: "svc", ID: "x", Address: "h", Port: 1, Weight: -1},
		{Service: "svc", ID: "x", Address: "h", Port: 1, TTL: time.Millisecond},
		{Service: "svc", ID: "x", Address: "h", Port: 1, Check: &registry.Check{Type: "icmp"}},
		{Service: "svc", ID: "x", Address: "h", Port: 1, Check: &registry.Check{Type: registry.CheckHTTP, URL: "ftp://x"}},
		{Service: "svc", ID: "x", Address: "h", Port: 1, Check: &registry.Check{Type: registry.CheckTCP, Interval: time.Second, Timeout: 2 * time.Second}},
	}
	for _, in := range bad {
		// Client-side validation.
		if _, err := c.Register(ctx, in); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
			t.Errorf("Register(%+v) = %v, want invalid_argument", in, err)
		}
		// The node validates too.
		err := conn.Do(ctx, "registry.register", map[string]any{"instance": in}, nil)
		if mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
			t.Errorf("registry.register(%+v) = %v, want invalid_argument", in, err)
		}
	}
	for _, body := range []any{
		map[string]any{"instance": inst("svc", "x", 1), "extra": 1},
		map[string]any{"instance": map[string]any{"service": "svc", "id": "x", "address": "h", "port": 1, "node": "forged"}},
		map[string]any{"instance": "nope"},
	} {
		if err := conn.Do(ctx, "registry.register", body, nil); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
			t.Errorf("registry.register(%v) = %v, want invalid_argument", body, err)
		}
	}
	if _, err := c.Get(ctx, "bad.name", "x"); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Errorf("Get(bad.name) = %v", err)
	}
	if _, err := c.List(ctx, "bad name"); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Errorf("List(bad name) = %v", err)
	}
	if err := c.Renew(ctx, "svc", "nobody"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Renew(unknown) = %v, want not found", err)
	}
	if _, err := c.Watch(ctx, "bad.name"); err == nil {
		t.Error("Watch(bad.name) succeeded")
	}
}

// rawRegister registers without a Registration: no heartbeats.
func rawRegister(t *testing.T, conn *mortar.Conn, in registry.Instance) {
	t.Helper()
	if err := conn.Do(ctxT(t), "registry.register", map[string]any{"instance": in}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestWatchAndLeases(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	c := client(t, conn)
	ctx := ctxT(t)
	if _, err := c.Register(ctx, inst("api", "a0", 1000)); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "api")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, registry.EventPut, "a0") // the snapshot

	// A heartbeating registration outlives a silent one with the same lease.
	alive := inst("api", "alive", 1001)
	alive.TTL = time.Second
	reg, err := c.Register(ctx, alive)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop(context.Background())
	expect(t, w, registry.EventPut, "alive")
	silent := inst("api", "silent", 1002)
	silent.TTL = time.Second
	rawRegister(t, conn, silent)
	expect(t, w, registry.EventPut, "silent")
	expect(t, w, registry.EventDelete, "silent")
	if _, err := c.Get(ctx, "api", "alive"); err != nil {
		t.Fatalf("heartbeating instance: %v", err)
	}
	if got := metric(t, n, `mortar_registry_evictions_total{reason="lease"}`); got != "1" {
		t.Fatalf("lease evictions = %q, want 1", got)
	}
	// Heartbeats through the API keep a lease too, and tell the caller
	// when the instance is gone.
	viaAPI := inst("api", "http-client", 1003)
	viaAPI.TTL = time.Second
	rawRegister(t, conn, viaAPI)
	expect(t, w, registry.EventPut, "http-client")
	for range 6 {
		if err := c.Renew(ctx, "api", "http-client"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // a client's renewal period
	}
	if _, err := c.Get(ctx, "api", "http-client"); err != nil {
		t.Fatalf("renewed instance evicted: %v", err)
	}
	if ok, err := c.Deregister(ctx, "api", "http-client"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	expect(t, w, registry.EventDelete, "http-client")

	// An operator's deregister (another client) of a live registration:
	// the registration puts it back.
	operator := client(t, conn)
	if ok, err := operator.Deregister(ctx, "api", "alive"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	expect(t, w, registry.EventDelete, "alive")
	expect(t, w, registry.EventPut, "alive")
	if err := reg.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	expect(t, w, registry.EventDelete, "alive")
}

func TestWatchResumesAfterOutage(t *testing.T) {
	n := mortartest.StartNode(t)
	c := client(t, n.Dial(t))
	ctx := ctxT(t)
	p := mortartest.NewProxy(t, n.URL())
	wconn := p.Dial(t, n.Token())
	wc := client(t, wconn)
	for i := range 3 {
		if _, err := c.Register(ctx, inst("svc", "i"+strconv.Itoa(i), 2000+i)); err != nil {
			t.Fatal(err)
		}
	}
	w, err := wc.Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	res, err := wc.Resolve(ctx, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for i := range 3 {
		expect(t, w, registry.EventPut, "i"+strconv.Itoa(i))
	}
	if _, err := wc.List(ctx, "svc"); err != nil {
		t.Fatal(err)
	}

	p.Cut()
	waitFor(t, "disconnect", func() bool { return !wconn.NATS().IsConnected() })
	// While the control plane is unreachable, the cache and the resolver
	// keep answering.
	list, err := wc.List(ctx, "svc")
	if err != nil || len(list) != 3 {
		t.Fatalf("List while unreachable = %d instances, %v", len(list), err)
	}
	if got := len(res.Healthy()); got != 3 {
		t.Fatalf("resolver while unreachable: %d instances", got)
	}
	if _, _, err := res.Pick(""); err != nil {
		t.Fatal(err)
	}
	// Changes made meanwhile reach the watcher after it reconnects.
	if _, err := c.Deregister(ctx, "svc", "i1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, inst("svc", "i3", 2003)); err != nil {
		t.Fatal(err)
	}
	changed := res.Changed()
	p.Restore()
	got := map[string]registry.EventType{}
	for len(got) < 2 {
		ev := next(t, w)
		got[ev.Instance.ID] = ev.Type
	}
	if got["i1"] != registry.EventDelete || got["i3"] != registry.EventPut {
		t.Fatalf("events after the outage: %v", got)
	}
	select {
	case <-changed:
	case <-time.After(15 * time.Second):
		t.Fatal("resolver did not catch up")
	}
	waitFor(t, "resolver view", func() bool { return len(res.Healthy()) == 3 })
	ids := map[string]bool{}
	for _, in := range res.Healthy() {
		ids[in.ID] = true
	}
	if !ids["i0"] || !ids["i2"] || !ids["i3"] {
		t.Fatalf("resolver view %v", ids)
	}
}

func TestSelfPreservation(t *testing.T) {
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	c := client(t, conn)
	ctx := ctxT(t)
	for i := range 6 {
		in := inst("fleet", "f"+strconv.Itoa(i), 3000+i)
		in.TTL = time.Second
		rawRegister(t, conn, in)
	}
	// All six lapse at once: the node holds back.
	waitFor(t, "self-preservation", func() bool { return metric(t, n, "mortar_registry_self_preservation") == "1" })
	if list, _ := c.List(ctx, "fleet"); len(list) != 6 {
		t.Fatalf("evicted under self-preservation: %d left", len(list))
	}
	// Four come back: 2 of 6 lapsed is under the threshold; the two go.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for i := range 4 {
				conn.NATS().Publish(registrywire.HeartbeatSubject("fleet", "f"+strconv.Itoa(i)), nil)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitFor(t, "eviction of the two", func() bool {
		list, _ := c.List(ctx, "fleet")
		return len(list) == 4
	})
	if got := metric(t, n, "mortar_registry_self_preservation"); got != "0" {
		t.Fatalf("self-preservation gauge = %q after recovery", got)
	}
}

func TestActiveChecks(t *testing.T) {
	n := mortartest.StartNode(t)
	c := client(t, n.Dial(t))
	ctx := ctxT(t)
	var code atomic.Int32
	code.Store(200)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer hs.Close()
	host, port, _ := net.SplitHostPort(hs.Listener.Addr().String())
	pn, _ := strconv.Atoi(port)
	in := registry.Instance{Service: "web", ID: "w1", Address: host, Port: pn, Protocol: "http",
		Check: &registry.Check{Type: registry.CheckHTTP, Interval: time.Second, WarningAfter: 1, CriticalAfter: 2}}
	if _, err := c.Register(ctx, in); err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expect(t, w, registry.EventPut, "w1")
	code.Store(500)
	if ev := expect(t, w, registry.EventPut, "w1"); ev.Instance.Status != registry.StatusWarning || ev.Instance.Output == "" {
		t.Fatalf("after one failure: %s %q", ev.Instance.Status, ev.Instance.Output)
	}
	if ev := expect(t, w, registry.EventPut, "w1"); ev.Instance.Status != registry.StatusCritical {
		t.Fatalf("after two failures: %s", ev.Instance.Status)
	}
	// Registering again with the same check (a client that reconnected)
	// keeps the status the check found.
	if got, err := c.RegisterOnce(ctx, in); err != nil || got.Status != registry.StatusCritical {
		t.Fatalf("register again: %+v, %v; want it still critical", got, err)
	}
	if ev := expect(t, w, registry.EventPut, "w1"); ev.Instance.Status != registry.StatusCritical {
		t.Fatalf("after registering again: %s", ev.Instance.Status)
	}
	code.Store(429)
	if ev := expect(t, w, registry.EventPut, "w1"); ev.Instance.Status != registry.StatusWarning {
		t.Fatalf("on 429: %s", ev.Instance.Status)
	}
	code.Store(204)
	if ev := expect(t, w, registry.EventPut, "w1"); ev.Instance.Status != registry.StatusPassing {
		t.Fatalf("on 204: %s", ev.Instance.Status)
	}

	// RPC check against a real zerorpc server, and TCP check against a
	// port nobody listens on.
	srv := rpc.NewServer(nil)
	l, err := rpc.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	rp := l.Addr().(*net.TCPAddr).Port
	rin := registry.Instance{Service: "rpcsvc", ID: "r1", Address: "127.0.0.1", Port: rp,
		Check: &registry.Check{Type: registry.CheckRPC, Interval: time.Second, CriticalAfter: 1}}
	if _, err := c.Register(ctx, rin); err != nil {
		t.Fatal(err)
	}
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	dp := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	tin := registry.Instance{Service: "rpcsvc", ID: "t1", Address: "127.0.0.1", Port: dp,
		Check: &registry.Check{Type: registry.CheckTCP, Interval: time.Second, CriticalAfter: 1}}
	if _, err := c.Register(ctx, tin); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tcp check critical", func() bool {
		got, err := c.Get(ctx, "rpcsvc", "t1")
		return err == nil && got.Status == registry.StatusCritical
	})
	if got := metric(t, n, `mortar_registry_checks_total{result="passing",type="rpc"}`); got == "" || got == "0" {
		t.Fatalf("rpc checks passing = %q", got)
	}
	got, err := c.Get(ctx, "rpcsvc", "r1")
	if err != nil || got.Status != registry.StatusPassing {
		t.Fatalf("rpc-checked instance: %+v, %v", got, err)
	}
	srv.Close()
	waitFor(t, "rpc check critical", func() bool {
		got, err := c.Get(ctx, "rpcsvc", "r1")
		return err == nil && got.Status == registry.StatusCritical
	})
}

func TestRestartKeepsInstances(t *testing.T) {
	n := mortartest.StartNode(t)
	ctx := ctxT(t)
	c := client(t, n.Dial(t))
	plain := inst("keep", "plain", 1)
	leased := inst("keep", "leased", 2)
	leased.TTL = time.Hour
	leased.Check = &registry.Check{Type: registry.CheckTCP, Interval: time.Hour}
	for _, in := range []registry.Instance{plain, leased} {
		if _, err := c.RegisterOnce(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	n.Restart()
	c = client(t, n.Dial(t))
	list, err := c.List(ctx, "keep")
	if err != nil || len(list) != 2 || list[0].ID != "leased" || list[0].TTL != time.Hour || list[0].Check == nil || list[1].ID != "plain" {
		t.Fatalf("after a restart: %+v, %v", list, err)
	}
}

// TestRPCCheckOverTLS: an rpc.Server with TLS registers itself (with
// metadata tls=true) and its RPC health check passes.
func TestRPCCheckOverTLS(t *testing.T) {
	n := mortartest.StartNode(t)
	c := client(t, n.Dial(t))
	ctx := ctxT(t)
	hs := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate
	defer hs.Close()
	srv := rpc.NewServer(&rpc.ServerConfig{
		Name:      "secure",
		TLSConfig: hs.TLS,
		Registry:  c,
		Instance:  registry.Instance{TTL: time.Minute, Check: &registry.Check{Type: registry.CheckRPC, Interval: time.Second, CriticalAfter: 1}},
	})
	l, err := rpc.Listen("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() { srv.Close(); <-done }()
	waitFor(t, "an RPC check over TLS", func() bool {
		list, err := c.List(ctx, "secure")
		return err == nil && len(list) == 1 && list[0].Metadata["tls"] == "true" &&
			metric(t, n, `mortar_registry_checks_total{result="passing",type="rpc"}`) != ""
	})
	if list, _ := c.List(ctx, "secure"); list[0].Status != registry.StatusPassing {
		t.Fatalf("status %s (%s)", list[0].Status, list[0].Output)
	}
}
