package rpc_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar/rpc"
)

func TestEchoPreservesTypes(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, nil)
	c := dial(t, ep, nil)
	tests := []struct {
		in       any
		wantType string
	}{
		{nil, "nil"},
		{true, "bool"},
		{int64(0), "int"},
		{int64(-1), "int"},
		{int64(math.MinInt64), "int"},
		{uint64(math.MaxUint64), "int"},
		{float32(1.5), "float"},
		{1.5, "float"},
		{"", "str"},
		{"héllo", "str"},
		{[]byte{}, "bin"},
		{[]byte{0, 0xff}, "bin"},
		{[]any{int64(1), "a", []byte("b")}, "array"},
		{map[string]any{"k": []any{int64(1), int64(2)}}, "map"},
	}
	for _, tt := range tests {
		var got any
		if err := c.Call(t.Context(), "echo", &got, tt.in); err != nil {
			t.Fatalf("echo(%#v): %v", tt.in, err)
		}
		if !reflect.DeepEqual(got, tt.in) {
			t.Errorf("echo(%#v) = %#v (%T), want the same", tt.in, got, got)
		}
		var typ string
		if err := c.Call(t.Context(), "typeof", &typ, tt.in); err != nil || typ != tt.wantType {
			t.Errorf("typeof(%#v) = %q, %v; want %q", tt.in, typ, err, tt.wantType)
		}
	}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, nil)
	c := dial(t, ep, nil)
	tests := []struct {
		a, b, want any
	}{
		{int64(1), int64(2), int64(3)},
		{int64(1), 2.5, 3.5},
		{1.5, int64(1), 2.5},
		{int64(-5), int64(3), int64(-2)},
	}
	for _, tt := range tests {
		var got any
		if err := c.Call(t.Context(), "add", &got, tt.a, tt.b); err != nil || got != tt.want {
			t.Errorf("add(%v, %v) = %#v, %v; want %#v", tt.a, tt.b, got, err, tt.want)
		}
	}
}

func TestRemoteErrors(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, func(s *rpc.Server) {
		s.Handle("panics", func() int { panic("kaboom") }, nil)
		s.Handle("goerr", func() error { return errors.New("plain go error") }, nil)
	})
	c := dial(t, ep, nil)
	tests := []struct {
		method   string
		args     []any
		wantName string
		wantMsg  string
	}{
		{"fail", []any{"boom"}, "TestError", "boom"},
		{"nosuch", nil, rpc.NameErrorName, "nosuch"},
		{"add", []any{1}, rpc.TypeErrorName, "add() takes 2 arguments (1 given)"},
		{"add", []any{1, 2, 3}, rpc.TypeErrorName, "add() takes 2 arguments (3 given)"},
		{"count", []any{"x"}, rpc.TypeErrorName, ""},
		{"panics", nil, rpc.PanicErrorName, "kaboom"},
		{"goerr", nil, "Error", "plain go error"},
	}
	for _, tt := range tests {
		err := c.Call(t.Context(), tt.method, nil, tt.args...)
		re, ok := errors.AsType[*rpc.RemoteError](err)
		if !ok {
			t.Errorf("%s(%v) error = %v, want a RemoteError", tt.method, tt.args, err)
			continue
		}
		if re.Name != tt.wantName || (tt.wantMsg != "" && re.Message != tt.wantMsg) {
			t.Errorf("%s(%v) = %q %q, want %q %q", tt.method, tt.args, re.Name, re.Message, tt.wantName, tt.wantMsg)
		}
	}
	// The server survived the panic.
	var s string
	if err := c.Call(t.Context(), "hello", &s); err != nil || s != "hello" {
		t.Errorf("hello() after panic = %q, %v", s, err)
	}
}

func collect(t *testing.T, c *rpc.Client, method string, args ...any) ([]int, error) {
	t.Helper()
	var items []int
	for item, err := range c.Stream(t.Context(), method, args...) {
		if err != nil {
			return items, err
		}
		var n int
		if err := item.Decode(&n); err != nil {
			t.Fatalf("decode item: %v", err)
		}
		items = append(items, n)
	}
	return items, nil
}

func TestStreams(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, nil)
	c := dial(t, ep, nil)
	for _, n := range []int{0, 1, 5, 1000} {
		items, err := collect(t, c, "count", n)
		if err != nil || len(items) != n {
			t.Fatalf("count(%d) = %d items, %v", n, len(items), err)
		}
		for i, v := range items {
			if v != i {
				t.Fatalf("count(%d)[%d] = %d", n, i, v)
			}
		}
	}
	items, err := collect(t, c, "count_then_fail", 3, "late")
	if re, ok := errors.AsType[*rpc.RemoteError](err); !ok || re.Name != "TestError" || re.Message != "late" || len(items) != 3 {
		t.Errorf("count_then_fail(3) = %v, %v; want [0 1 2] then TestError late", items, err)
	}
	// Call collects a stream into a list.
	var all []int
	if err := c.Call(t.Context(), "count", &all, 4); err != nil || !reflect.DeepEqual(all, []int{0, 1, 2, 3}) {
		t.Errorf("Call(count, 4) = %v, %v", all, err)
	}
	// Stream yields a plain result once.
	items, err = collect(t, c, "add", 2, 3)
	if err != nil || !reflect.DeepEqual(items, []int{5}) {
		t.Errorf("Stream(add) = %v, %v; want [5]", items, err)
	}
}

func TestStreamBreakCancelsServer(t *testing.T) {
	t.Parallel()
	stopped := make(chan error, 1)
	_, ep := startServer(t, nil, func(s *rpc.Server) {
		s.Handle("forever", func(ctx context.Context, send func(int) error) error {
			for i := 0; ; i++ {
				if err := send(i); err != nil {
					stopped <- err
					return err
				}
			}
		}, nil)
	})
	c := dial(t, ep, nil)
	n := 0
	for _, err := range c.Stream(t.Context(), "forever") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 250 {
			break
		}
	}
	select {
	case err := <-stopped:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("server send error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server handler still streaming 10s after the client stopped")
	}
}

func TestDeadlinePropagates(t *testing.T) {
	t.Parallel()
	cause := make(chan error, 1)
	_, ep := startServer(t, nil, func(s *rpc.Server) {
		s.Handle("wait", func(ctx context.Context) error {
			<-ctx.Done()
			cause <- ctx.Err()
			return ctx.Err()
		}, nil)
	})
	c := dial(t, ep, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Call(ctx, "wait", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call() error = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Call() returned after %v", d)
	}
	select {
	case err := <-cause:
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Errorf("server ctx error = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server handler not cancelled")
	}
}

func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, nil)
	c := dial(t, ep, nil)
	// A slow call must not hold up fast ones on the same connection.
	slow := make(chan error, 1)
	go func() { slow <- c.Call(t.Context(), "sleep", nil, 1) }()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	start := time.Now()
	for i := range 64 {
		wg.Go(func() {
			var got int64
			if err := c.Call(t.Context(), "add", &got, i, 1); err != nil || got != int64(i+1) {
				errs <- errors.Join(err, errors.New("wrong sum"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("64 fast calls took %v, blocked behind sleep(1)?", d)
	}
	if err := <-slow; err != nil {
		t.Error(err)
	}
}

func TestInterceptorsAndHeader(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	auth := func(ctx context.Context, req *rpc.Request, next func(context.Context) error) error {
		// HeaderValue reads one key off the header as received.
		if v := req.HeaderValue("token"); req.Method != "hello" && string(v) != "\xa6secret" {
			return &rpc.RemoteError{Name: "Unauthorized", Message: "bad token"}
		}
		if req.Method != "hello" && req.Header().String("token") != "secret" {
			return &rpc.RemoteError{Name: "Unauthorized", Message: "bad token"}
		}
		mu.Lock()
		seen = append(seen, req.Method)
		mu.Unlock()
		return next(ctx)
	}
	_, ep := startServer(t, &rpc.ServerConfig{Interceptors: []rpc.Interceptor{auth}}, nil)
	anon := dial(t, ep, nil)
	err := anon.Call(t.Context(), "echo", nil, 1)
	if re, ok := errors.AsType[*rpc.RemoteError](err); !ok || re.Name != "Unauthorized" {
		t.Errorf("echo without token: %v, want Unauthorized", err)
	}
	withToken := func(ctx context.Context, req *rpc.Request, next func(context.Context) error) error {
		req.Header().Set("token", "secret")
		req.Header().Set("trace", map[string]any{"id": []byte{1, 2}})
		return next(ctx)
	}
	c := dial(t, ep, &rpc.ClientConfig{Interceptors: []rpc.Interceptor{withToken}})
	var got any
	if err := c.Call(t.Context(), "header", &got, "trace"); err != nil {
		t.Fatal(err)
	}
	if want := map[string]any{"id": []byte{1, 2}}; !reflect.DeepEqual(got, want) {
		t.Errorf("header(trace) = %#v, want %#v", got, want)
	}
	if err := c.Call(t.Context(), "header", &got, "missing"); err != nil || got != nil {
		t.Errorf("header(missing) = %#v, %v", got, err)
	}
	if err := c.Call(t.Context(), "header", &got, "v"); err != nil || got != int64(3) {
		t.Errorf("header(v) = %#v, %v; want 3", got, err)
	}
	if err := (&rpc.Header{}).Set("message_id", "x"); err == nil {
		t.Error("Set(message_id) succeeded, want an error")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Errorf("interceptor saw %v", seen)
	}
}

type calculator struct{ base int }

func (c *calculator) AddBase(x int) int  { return c.base + x }
func (c *calculator) HTTPStatus() string { return "ok" }
func (c *calculator) Div(a, b float64) (float64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	return a / b, nil
}

func TestHandleObject(t *testing.T) {
	t.Parallel()
	_, ep := startServer(t, nil, func(s *rpc.Server) {
		s.HandleObject(&calculator{base: 10}, map[string]*rpc.MethodOpts{
			"Div": {Doc: "Divide a by b.", Args: []string{"a", "b"}},
		})
	})
	c := dial(t, ep, nil)
	var n int
	if err := c.Call(t.Context(), "add_base", &n, 5); err != nil || n != 15 {
		t.Errorf("add_base(5) = %d, %v", n, err)
	}
	var s string
	if err := c.Call(t.Context(), "http_status", &s); err != nil || s != "ok" {
		t.Errorf("http_status() = %q, %v", s, err)
	}
	var doc string
	if err := c.Call(t.Context(), "_zerorpc_help", &doc, "div"); err != nil || doc != "Divide a by b." {
		t.Errorf("_zerorpc_help(div) = %q, %v", doc, err)
	}
	var names []string
	if err := c.Call(t.Context(), "_zerorpc_list", &names); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"add_base", "div", "http_status", "hello"} {
		if !contains(names, want) {
			t.Errorf("_zerorpc_list() = %v, missing %s", names, want)
		}
	}
	var ping []string
	if err := c.Call(t.Context(), "_zerorpc_ping", &ping); err != nil || !reflect.DeepEqual(ping, []string{"pong", "TestService"}) {
		t.Errorf("_zerorpc_ping() = %v, %v", ping, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestHandleRejectsBadSignatures(t *testing.T) {
	t.Parallel()
	bad := []any{
		nil,
		42,
		func() (int, int, error) { return 0, 0, nil },
		func(send func(int) error) iter2 { return nil },
	}
	for _, fn := range bad {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%T) did not panic", fn)
				}
			}()
			rpc.NewServer(nil).Handle("x", fn, nil)
		}()
	}
}

type iter2 func(yield func(int) bool)

// TestSlowLoneCallDoesNotBlockReading: a call alone on its connection runs
// on the reading goroutine; if it is slow, reading is handed over, so a
// second call on the same connection is still answered.
func TestSlowLoneCallDoesNotBlockReading(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	_, ep := startServer(t, nil, func(s *rpc.Server) {
		s.Handle("block", func() string {
			close(started)
			<-release
			return "released"
		}, nil)
	})
	c := dial(t, ep, nil)
	res := make(chan error, 1)
	go func() {
		var s string
		err := c.Call(t.Context(), "block", &s)
		if err == nil && s != "released" {
			err = errors.New("wrong result " + s)
		}
		res <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var s string
	if err := c.Call(ctx, "hello", &s); err != nil || s != "hello" {
		t.Errorf("hello() while a lone call blocks = %q, %v", s, err)
	}
	close(release)
	if err := <-res; err != nil {
		t.Error(err)
	}
}

func TestIPCEndpoint(t *testing.T) {
	t.Parallel()
	ep := "ipc://" + t.TempDir() + "/rpc.sock"
	l, err := rpc.Listen(ep)
	if err != nil {
		t.Fatal(err)
	}
	if got := rpc.Endpoint(l.Addr()); got != ep {
		t.Errorf("Endpoint() = %q, want %q", got, ep)
	}
	srv := rpc.NewServer(&rpc.ServerConfig{Logger: testLogger(t)})
	srv.Handle("hello", func() string { return "hello" }, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() { srv.Close(); <-done }()
	c := dial(t, ep, nil)
	var s string
	if err := c.Call(t.Context(), "hello", &s); err != nil || s != "hello" {
		t.Errorf("hello() over ipc = %q, %v", s, err)
	}
	for _, bad := range []string{"udp://x:1", "tcp://nohostport", "ipc://"} {
		if _, err := rpc.Listen(bad); err == nil {
			t.Errorf("Listen(%q) succeeded", bad)
		}
	}
}
