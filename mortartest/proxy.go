package mortartest

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/nats-io/nats.go"
)

// Proxy is a TCP proxy in front of a node's NATS port that a test can
// cut, to make the control plane unreachable for the clients that dial
// through it (Dial) while the node runs on.
type Proxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

// NewProxy starts a proxy to target (a nats:// URL or host:port) on a
// loopback port; cleanup stops it. Connect with Dial.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mortartest: proxy: %v", err)
	}
	p := &Proxy{l: l, target: strings.TrimPrefix(target, "nats://")}
	p.wg.Go(p.accept)
	tb.Cleanup(func() { l.Close(); p.Cut(); p.wg.Wait() })
	return p
}

// Dial connects to the node through the proxy, never around it, with the
// credential token (Node.Token); cleanup closes the connection. Its
// requests give up an attempt after a second, so that a test sees a cut
// quickly.
func (p *Proxy) Dial(tb testing.TB, token string) *mortar.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mortar.Dial(ctx, p.URL(), &mortar.Options{
		Name:           "mortartest-proxied",
		Token:          token,
		AttemptTimeout: time.Second,
		Logger:         slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: envLevel()})),
		NATSOptions:    []nats.Option{nats.IgnoreDiscoveredServers()},
	})
	if err != nil {
		tb.Fatalf("mortartest: dial through the proxy: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// URL is the proxy's NATS URL.
func (p *Proxy) URL() string { return "nats://" + p.l.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(up, c); up.Close() })
		p.wg.Go(func() { io.Copy(c, up); c.Close() })
	}
}

// Cut closes every proxied connection and refuses new ones until
// Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
