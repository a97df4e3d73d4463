// Package mortartest starts real mortar nodes for tests and examples, as
// net/http/httptest starts real HTTP servers: an embedded NATS server with
// JetStream on a random loopback port, data in a temporary directory, the
// admin HTTP API on a random port, logs on the test's output. Cleanup
// stops every node and waits for all its goroutines.
package mortartest

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authserver"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/nats-io/nats.go"
)

// StartTimeout bounds how long a node may take to become ready (a cluster
// waits for its meta leader).
const StartTimeout = 90 * time.Second

// Options adjust a test node. A nil *Options means defaults.
type Options struct {
	// Name of the node. Defaults to "n1" (in a cluster n1, n2, …).
	Name string
	// DataDir defaults to a new tb.TempDir().
	DataDir string
	// NATSURL makes the node use an external NATS instead of embedding.
	NATSURL string
	// NATSUser and NATSPassword are the node's credentials on NATSURL.
	NATSUser, NATSPassword string
	// CalloutSeed makes the node answer NATSURL's auth callout, signing
	// with this account seed; CalloutXKeySeed decrypts its requests
	// (node.Config.CalloutIssuerSeed, CalloutXKeySeed).
	CalloutSeed, CalloutXKeySeed string
	// DurabilityInterval turns off fsync on every write.
	DurabilityInterval bool
	// LogLevel defaults to the MORTAR_TEST_LOG environment variable
	// (debug, info, warn, error), else warn.
	LogLevel slog.Level
	// Push adjusts the push gateway.
	Push PushOptions
	// AdminPassword is the bootstrap admin's password. Defaults to
	// AdminPasswordDefault.
	AdminPassword string
	// SessionIdle is the idle timeout of login sessions (the node's
	// default when zero).
	SessionIdle time.Duration
	// OIDC turns on the node's OIDC login (nil: off).
	OIDC *authserver.OIDCConfig

	clusterListen string
	routes        []string
	clusterName   string
}

// PushOptions adjust a test node's push gateway; zero values mean the
// node's defaults (docs/push.md).
type PushOptions struct {
	Ping, Pong, Idle, ConnectTimeout time.Duration
	SameClient                       string // "replace" or "keep"
	MaxFrame, SendQueue              int
	Rate                             float64
	Burst                            int
	HistorySize                      int // -1 turns history off
	Secret                           string
}

// AdminPasswordDefault is the password of a test node's admin user.
const AdminPasswordDefault = "mortartest-admin"

// Node is a running test node.
type Node struct {
	tb   testing.TB
	cfg  node.Config
	mu   sync.Mutex
	n    *node.Node
	stop context.CancelFunc
	done chan error
}

// StartNode starts a single node with defaults and returns once it is
// ready.
func StartNode(tb testing.TB) *Node { return Start(tb, nil) }

// Start starts a single node with opts and returns once it is ready.
func Start(tb testing.TB, opts *Options) *Node {
	tb.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	n := newNode(tb, o)
	n.start()
	n.waitReady()
	return n
}

func newNode(tb testing.TB, o Options) *Node {
	if o.Name == "" {
		o.Name = "n1"
	}
	if o.DataDir == "" {
		o.DataDir = tb.TempDir()
	}
	level := o.LogLevel
	if level == 0 {
		level = envLevel()
	}
	cfg := node.Config{
		Name:      o.Name,
		DataDir:   o.DataDir,
		Host:      "127.0.0.1",
		Port:      -1,
		AdminAddr: "127.0.0.1:0",
		Push: node.PushConfig{
			TCPAddr: "127.0.0.1:0",
			Ping:    o.Push.Ping, Pong: o.Push.Pong, Idle: o.Push.Idle, ConnectTimeout: o.Push.ConnectTimeout,
			SameClient: o.Push.SameClient, MaxFrame: o.Push.MaxFrame, SendQueue: o.Push.SendQueue,
			Rate: o.Push.Rate, Burst: o.Push.Burst, HistorySize: o.Push.HistorySize,
		},
		NATSURL:       o.NATSURL,
		ClusterName:   o.clusterName,
		ClusterListen: o.clusterListen,
		Routes:        o.routes,
		NodeTTL:       3 * time.Second,
		Auth:          node.AuthConfig{AdminPassword: cmp.Or(o.AdminPassword, AdminPasswordDefault), SessionIdle: o.SessionIdle, OIDC: o.OIDC},
		Logger:        slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: level})),
	}
	cfg.NATSUser, cfg.NATSPassword = o.NATSUser, o.NATSPassword
	cfg.CalloutIssuerSeed, cfg.CalloutXKeySeed = o.CalloutSeed, o.CalloutXKeySeed
	if o.DurabilityInterval {
		cfg.Durability = node.DurabilityInterval
	}
	if o.Push.Secret != "" {
		cfg.Push.Secrets = []string{o.Push.Secret}
	}
	n := &Node{tb: tb, cfg: cfg}
	tb.Cleanup(n.Stop)
	return n
}

func envLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("MORTAR_TEST_LOG"))); err != nil {
		return slog.LevelWarn
	}
	return l
}

func (n *Node) start() {
	n.tb.Helper()
	nd, err := node.New(&n.cfg)
	if err != nil {
		n.tb.Fatalf("mortartest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	n.mu.Lock()
	n.n, n.stop, n.done = nd, cancel, done
	n.mu.Unlock()
}

func (n *Node) waitReady() {
	n.tb.Helper()
	n.mu.Lock()
	nd, done := n.n, n.done
	n.mu.Unlock()
	select {
	case <-nd.Ready():
		// Pin the client port so that a restart comes back where clients
		// reconnect to.
		if u := nd.ClientURL(); u != "" {
			if _, port, err := net.SplitHostPort(strings.TrimPrefix(u, "nats://")); err == nil {
				fmt.Sscan(port, &n.cfg.Port)
			}
		}
	case err := <-done:
		done <- err
		n.tb.Fatalf("mortartest: node %s failed to start: %v", n.cfg.Name, err)
	case <-time.After(StartTimeout):
		n.tb.Fatalf("mortartest: node %s not ready after %v", n.cfg.Name, StartTimeout)
	}
}

// Stop stops the node and waits until it has shut down. It is safe to
// call more than once; cleanup calls it.
func (n *Node) Stop() {
	n.mu.Lock()
	stop, done := n.stop, n.done
	n.stop, n.done = nil, nil
	n.mu.Unlock()
	if stop == nil {
		return
	}
	stop()
	if err := <-done; err != nil {
		n.tb.Errorf("mortartest: node %s: %v", n.cfg.Name, err)
	}
}

// Restart stops the node if it runs and starts it again on the same data
// directory and cluster address (the client port may change).
func (n *Node) Restart() {
	n.tb.Helper()
	n.Stop()
	n.start()
	n.waitReady()
}

// StartAsync starts a stopped node without waiting for it to be ready;
// WaitReady waits.
func (n *Node) StartAsync() { n.tb.Helper(); n.start() }

// WaitReady waits until the node is ready.
func (n *Node) WaitReady() { n.tb.Helper(); n.waitReady() }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// DataDir returns the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// URL returns the NATS URL SDK clients use.
func (n *Node) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.n.ClientURL()
}

// PushURL returns the node's WebSocket push endpoint,
// ws://127.0.0.1:PORT/push/ws.
func (n *Node) PushURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "ws://" + n.n.AdminAddr() + "/push/ws"
}

// PushTCPURL returns the node's length-prefixed TCP push endpoint,
// tcp://127.0.0.1:PORT.
func (n *Node) PushTCPURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "tcp://" + n.n.PushTCPAddr()
}

// PushSecret returns the secret the node verifies connect tokens with
// (generated in its data dir).
func (n *Node) PushSecret() []byte {
	n.tb.Helper()
	if len(n.cfg.Push.Secrets) > 0 {
		return []byte(n.cfg.Push.Secrets[0])
	}
	s, err := node.ReadPushSecret(n.cfg.DataDir)
	if err != nil {
		n.tb.Fatalf("mortartest: push secret: %v", err)
	}
	return s
}

// AdminURL returns the admin HTTP base URL, e.g. http://127.0.0.1:41234.
func (n *Node) AdminURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "http://" + n.n.AdminAddr()
}

// AdminPassword returns the password of the node's admin user.
func (n *Node) AdminPassword() string { return n.cfg.Auth.AdminPassword }

// Token returns the node's local admin credential (an API key of the
// admin user, in its data dir), which Dial presents.
func (n *Node) Token() string {
	n.tb.Helper()
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, mortar.LocalCredentialFile))
	if err != nil {
		n.tb.Fatalf("mortartest: local credential: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// HTTPClient returns an HTTP client that presents the node's admin
// credential (Authorization: Bearer) on every request, for the admin API
// and /metrics.
func (n *Node) HTTPClient() *http.Client {
	n.tb.Helper()
	return &http.Client{Transport: bearer{token: n.Token(), next: http.DefaultTransport}}
}

// bearer adds an Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// NATSOptions returns the options a plain NATS client needs to connect
// to the node as its admin: the credential and its inbox prefix.
func (n *Node) NATSOptions() []nats.Option {
	n.tb.Helper()
	tok := n.Token()
	return []nats.Option{nats.Token(tok), nats.CustomInboxPrefix(mortar.InboxPrefix(tok, ""))}
}

// Dial connects to the node as its admin; cleanup closes the connection.
func (n *Node) Dial(tb testing.TB) *mortar.Conn { return dial(tb, n.URL(), n.Token()) }

// DialAs connects to the node with the credential token (an API key or a
// session token); cleanup closes the connection.
func (n *Node) DialAs(tb testing.TB, token string) *mortar.Conn { return dial(tb, n.URL(), token) }

func dial(tb testing.TB, urls, token string) *mortar.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mortar.Dial(ctx, urls, &mortar.Options{
		Name:   "mortartest",
		Token:  token,
		Logger: slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: envLevel()})),
	})
	if err != nil {
		tb.Fatalf("mortartest: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Cluster is a set of nodes forming one NATS cluster with R3 state.
type Cluster struct {
	Nodes []*Node
}

// StartCluster starts size nodes (3 or 5) on 127.0.0.1 that route to each
// other, and returns once every node is ready.
func StartCluster(tb testing.TB, size int) *Cluster {
	tb.Helper()
	return StartClusterWith(tb, size, nil)
}

// StartClusterWith is StartCluster with options for every node (their
// names are set by the cluster). The nodes share one push secret.
func StartClusterWith(tb testing.TB, size int, opts *Options) *Cluster {
	tb.Helper()
	var base Options
	if opts != nil {
		base = *opts
	}
	if base.Push.Secret == "" {
		base.Push.Secret = "cluster-secret-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if size < 3 {
		tb.Fatalf("mortartest: a cluster needs at least 3 nodes, not %d", size)
	}
	addrs := make([]string, size)
	for i := range addrs {
		addrs[i] = freeAddr(tb)
	}
	c := &Cluster{}
	for i := range size {
		o := base
		o.Name, o.DataDir = fmt.Sprintf("n%d", i+1), ""
		o.clusterName, o.clusterListen, o.routes = "test", addrs[i], addrs
		n := newNode(tb, o)
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		n.start()
	}
	for _, n := range c.Nodes {
		n.waitReady()
	}
	return c
}

// URLs returns every running node's NATS URL, comma-separated, for Dial.
func (c *Cluster) URLs() string {
	var urls []string
	for _, n := range c.Nodes {
		n.mu.Lock()
		if n.stop != nil {
			urls = append(urls, n.n.ClientURL())
		}
		n.mu.Unlock()
	}
	return strings.Join(urls, ",")
}

// Dial connects to the cluster through every node; cleanup closes it.
func (c *Cluster) Dial(tb testing.TB) *mortar.Conn { return dial(tb, c.URLs(), c.Nodes[0].Token()) }

// freeAddr reserves a loopback port for a cluster route listener.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mortartest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// StreamLeader returns the node that leads the JetStream stream named
// stream ("KV_<bucket>" for a bucket), asking through conn.
func (c *Cluster) StreamLeader(tb testing.TB, conn *mortar.Conn, stream string) *Node {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		s, err := conn.JetStream().Stream(ctx, stream)
		if err == nil {
			info, err := s.Info(ctx)
			if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
				for _, n := range c.Nodes {
					if n.Name() == info.Cluster.Leader {
						return n
					}
				}
				tb.Fatalf("mortartest: stream %s led by unknown node %q", stream, info.Cluster.Leader)
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("mortartest: no leader for stream %s: %v", stream, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
