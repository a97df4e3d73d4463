package auth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/rpc"
)

// rpcFixture is a node, a service checking calls with a Verifier, and an
// API key of a user permitted to call one of its methods.
type rpcFixture struct {
	node  *mortartest.Node
	admin *mortar.Conn
	ep    string
	key   string // may call echo16 of greeter, nothing else
	v     *auth.Verifier
}

func startRPCFixture(tb testing.TB, checked bool) *rpcFixture {
	tb.Helper()
	ctx := context.Background()
	n := mortartest.StartNode(tb)
	admin := n.Dial(tb)
	f := &rpcFixture{node: n, admin: admin}
	if err := admin.Do(ctx, "auth.user.add", authwire.UserRequest{Name: "caller", Permissions: []string{"rpc:call:greeter:echo16"}}, nil); err != nil {
		tb.Fatal(err)
	}
	var k authwire.APIKey
	if err := admin.Do(ctx, "auth.apikey.create", authwire.APIKeyRequest{User: "caller"}, &k); err != nil {
		tb.Fatal(err)
	}
	f.key = k.Key
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &rpc.ServerConfig{Name: "greeter", Logger: quiet}
	if checked {
		v, err := auth.NewVerifier(n.Dial(tb), nil)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(v.Close)
		f.v = v
		cfg.Interceptors = []rpc.Interceptor{v.RPCServer("greeter")}
	}
	srv := rpc.NewServer(cfg)
	srv.Handle("echo16", func(ctx context.Context, p []byte) ([]byte, error) { return p, nil }, nil)
	srv.Handle("whoami", func(ctx context.Context) (string, error) {
		s, _ := auth.SubjectFrom(ctx)
		return s.Principal(), nil
	}, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	tb.Cleanup(func() { srv.Shutdown(context.Background()); <-done })
	f.ep = rpc.Endpoint(l.Addr())
	return f
}

func (f *rpcFixture) client(tb testing.TB, credential string) *rpc.Client {
	tb.Helper()
	cfg := &rpc.ClientConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if credential != "" {
		cfg.Interceptors = []rpc.Interceptor{auth.RPCClient(credential)}
	}
	c, err := rpc.Dial(context.Background(), f.ep, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func remoteName(err error) string {
	if re, ok := errors.AsType[*rpc.RemoteError](err); ok {
		return re.Name
	}
	return ""
}

func TestVerifierRPC(t *testing.T) {
	f := startRPCFixture(t, true)
	ctx := t.Context()
	var out []byte
	if err := f.client(t, f.key).Call(ctx, "echo16", &out, []byte("hi")); err != nil || string(out) != "hi" {
		t.Fatalf("permitted call = %q, %v", out, err)
	}
	for _, tc := range []struct {
		cred, method, want string
	}{
		{f.key, "whoami", "PermissionDenied"},
		{"", "echo16", "Unauthenticated"},
		{"mk_junk", "echo16", "Unauthenticated"},
	} {
		if err := f.client(t, tc.cred).Call(ctx, tc.method, nil); remoteName(err) != tc.want {
			t.Errorf("call %s with %.10q = %v, want %s", tc.method, tc.cred, err, tc.want)
		}
	}
	// A grant reaches the service's cached subject at once (the node's
	// change notice purges it), and so does a revocation.
	if err := f.admin.Do(ctx, "auth.user.grant", authwire.GrantRequest{Name: "caller", Permissions: []string{"rpc:call:greeter:*"}}, nil); err != nil {
		t.Fatal(err)
	}
	c := f.client(t, f.key)
	var who string
	waitUntil(t, "the grant", func() bool { return c.Call(ctx, "whoami", &who) == nil })
	if who != "caller" {
		t.Errorf("handler's subject = %q, want caller", who)
	}
	var keys struct{ Apikeys []authwire.APIKey }
	if err := f.admin.Do(ctx, "auth.apikey.list", authwire.APIKeyRef{User: "caller"}, &keys); err != nil || len(keys.Apikeys) != 1 {
		t.Fatalf("apikey.list = %+v, %v", keys, err)
	}
	if err := f.admin.Do(ctx, "auth.apikey.revoke", authwire.APIKeyRef{ID: keys.Apikeys[0].ID}, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the revocation", func() bool { return remoteName(c.Call(ctx, "echo16", &out, []byte("x"))) == "Unauthenticated" })
}

// waitUntil polls cond, which a change notice makes true, for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkRPCChecked measures what checking a call costs: the same echo
// round trip unchecked, and checked by a Verifier (a cached subject, the
// header read, the compiled grants walked). The goal is under 2 µs
// per call; bench/ (go run ./bench auth) reports the difference.
func BenchmarkRPCChecked(b *testing.B) {
	payload := bytes.Repeat([]byte{'x'}, 16)
	for _, checked := range []bool{false, true} {
		name := "unchecked"
		if checked {
			name = "checked"
		}
		b.Run(name, func(b *testing.B) {
			f := startRPCFixture(b, checked)
			c := f.client(b, f.key)
			ctx := context.Background()
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Call(ctx, "echo16", &out, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
