// Package node wires a mortar node: the embedded NATS server with
// JetStream (or a connection to an external NATS cluster), mortar's store
// layout, the control-plane servers of each part, and the admin HTTP
// server with the API, /healthz, /readyz and /metrics.
package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // schedules in any time zone, on any base image

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/authserver"
	"github.com/mortarhq/mortar/internal/configserver"
	"github.com/mortarhq/mortar/internal/natslog"
	"github.com/mortarhq/mortar/internal/pushserver"
	"github.com/mortarhq/mortar/internal/registryserver"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/internal/taskserver"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
)

// Node is one mortar node. Create it with New and run it with Run.
type Node struct {
	cfg     Config
	log     *slog.Logger
	metrics *prometheus.Registry
	mux     *api.Mux
	ready   chan struct{}
	push    atomic.Pointer[pushserver.Server] // set once the push gateway exists
	auth    atomic.Pointer[authserver.Server] // set once the security layer exists
	// internal is the credential of the node's own connections and
	// in-process calls; natsAuth admits connections to the embedded
	// engine.
	internal string
	natsAuth *authserver.NATSAuth

	mu        sync.Mutex // guards the fields below, set during startup
	ns        *server.Server
	clientURL string
	adminAddr string
	store     *store.Store
}

// New validates cfg (nil means all defaults) and returns a Node that is
// not yet running.
func New(cfg *Config) (*Node, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := c.Logger.With("node", c.Name)
	internal := authserver.NewInternalCredential()
	mux := api.NewMux(log, reg)
	// Until the security layer registers, the API refuses everything but
	// unknown operations: it never serves unguarded.
	mux.SetAuthenticator(starting{})
	return &Node{
		internal: internal,
		natsAuth: authserver.NewNATSAuth(internal),
		cfg:      c,
		log:      log,
		metrics:  reg,
		mux:      mux,
		ready:    make(chan struct{}),
	}, nil
}

// starting is the API's authenticator while the node starts.
type starting struct{}

func (starting) Authenticate(context.Context, string, string) (*auth.Subject, error) {
	return nil, mortar.Errorf(mortar.CodeUnavailable, "the node is starting")
}

func (starting) Denied(context.Context, *auth.Subject, string, string) {}

func (starting) RunAs(context.Context, *auth.Subject, string) (*auth.Subject, error) {
	return nil, mortar.Errorf(mortar.CodeUnavailable, "the node is starting")
}

// Ready is closed once the node serves: the engine answers, the layout
// exists and every part runs.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// ClientURL returns the NATS URL SDK clients connect to (valid after
// Ready; empty with DontListen).
func (n *Node) ClientURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clientURL
}

// ClusterAddr returns the cluster route listen address, or "" when the
// node is not clustered or not running.
func (n *Node) ClusterAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ns == nil || n.ns.ClusterAddr() == nil {
		return ""
	}
	return n.ns.ClusterAddr().String()
}

// AdminAddr returns the admin HTTP address (valid after Ready; empty when
// disabled).
func (n *Node) AdminAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.adminAddr
}

// Metrics returns the node's Prometheus registry.
func (n *Node) Metrics() *prometheus.Registry { return n.metrics }

// Mux returns the node's API operations, for in-process calls.
func (n *Node) Mux() *api.Mux { return n.mux }

// InProcessConn returns a connection to the embedded NATS server without
// a socket, for nats.InProcessServer. It fails with an external NATS.
func (n *Node) InProcessConn() (net.Conn, error) {
	n.mu.Lock()
	ns := n.ns
	n.mu.Unlock()
	if ns == nil {
		return nil, errors.New("node: no embedded NATS server")
	}
	return ns.InProcessConn()
}

// Run starts the node and serves until ctx ends, then shuts down
// gracefully: the admin server and parts stop, in-flight API requests
// finish, and the engine flushes and stops. A startup failure is
// returned at once.
func (n *Node) Run(ctx context.Context) error {
	start := time.Now()
	ns, err := n.startEngine()
	if err != nil {
		return err
	}
	if ns != nil {
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
	}
	nc, err := n.connect(ctx, ns)
	if err != nil {
		return err
	}
	defer nc.Close()

	adminLn, err := n.listenAdmin()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	var ready atomic.Bool
	if adminLn != nil {
		srv := n.adminServer(ready.Load)
		g.Go(func() error {
			if err := srv.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("node: admin server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return n.fail(g, fmt.Errorf("node: jetstream: %w", err))
	}
	replicas := n.cfg.Replicas
	if replicas == 0 {
		replicas = 1
		if n.cfg.ClusterListen != "" || (n.cfg.NATSURL != "" && nc.ConnectedClusterName() != "") {
			replicas = 3
		}
	}
	st, err := store.Open(gctx, js, &store.Config{Replicas: replicas, Logger: n.log, PushHistory: store.PushHistory{
		Size: n.cfg.Push.HistorySize, TTL: n.cfg.Push.HistoryTTL,
	}})
	if err != nil {
		return n.fail(g, fmt.Errorf("node: %w", err))
	}
	n.mu.Lock()
	n.store = st
	n.mu.Unlock()

	authSrv, err := authserver.New(authserver.Config{
		Store: st, NodeName: n.cfg.Name, DataDir: n.cfg.DataDir, Internal: n.internal,
		AdminPassword: n.cfg.Auth.AdminPassword, Announce: n.cfg.Auth.Announce,
		SessionIdle: n.cfg.Auth.SessionIdle, SessionMax: n.cfg.Auth.SessionMax,
		OIDC: n.cfg.Auth.OIDC, Logger: n.log, Metrics: n.metrics,
	})
	if err != nil {
		return n.fail(g, fmt.Errorf("node: auth: %w", err))
	}
	n.auth.Store(authSrv)
	parts, err := n.parts(st, nc)
	if err != nil {
		return n.fail(g, err)
	}
	parts = append([]part{authSrv}, parts...)
	if n.cfg.CalloutIssuerSeed != "" {
		co, err := authserver.NewCallout(authSrv, nc, authserver.CalloutConfig{
			IssuerSeed: n.cfg.CalloutIssuerSeed, XKeySeed: n.cfg.CalloutXKeySeed, Logger: n.log,
		})
		if err != nil {
			return n.fail(g, fmt.Errorf("node: %w", err))
		}
		parts = append(parts, co)
	}
	for _, p := range parts {
		p.Register(n.mux)
	}
	n.registerOps(st, replicas)
	subscribed := make(chan struct{})
	g.Go(func() error { return n.mux.ServeNATS(gctx, nc, 0, func() { close(subscribed) }) })
	g.Go(func() error { return n.renewLiveness(gctx, st) })
	for _, p := range parts {
		g.Go(func() error { return p.Run(gctx) })
	}
	// Ready means the API answers and every part serves.
	select {
	case <-subscribed:
	case <-gctx.Done():
		return g.Wait()
	}
	for _, p := range parts {
		r, ok := p.(interface{ Ready() <-chan struct{} })
		if !ok {
			continue
		}
		select {
		case <-r.Ready():
		case <-gctx.Done():
			return g.Wait()
		}
	}
	if ns != nil {
		n.natsAuth.Attach(authSrv, ns)
	}
	ready.Store(true)
	close(n.ready)
	n.log.Info("mortar node ready",
		"nats", cmp.Or(n.ClientURL(), "in-process"),
		"cluster", n.ClusterAddr(),
		"admin", adminURL(n.AdminAddr()),
		"data_dir", n.dataDirOrExternal(),
		"durability", n.cfg.Durability,
		"replicas", replicas,
		"version", mortar.Version(),
		"startup", time.Since(start).Round(time.Millisecond))
	err = g.Wait()
	n.log.Info("mortar node stopped")
	return err
}

type part interface {
	Register(*api.Mux)
	Run(context.Context) error
}

func (n *Node) parts(st *store.Store, nc *nats.Conn) ([]part, error) {
	reg, err := registryserver.New(registryserver.Config{Store: st, Conn: nc, NodeName: n.cfg.Name, NodeTTL: n.cfg.NodeTTL, SelfPreservation: n.cfg.SelfPreservation, Logger: n.log, Metrics: n.metrics})
	if err != nil {
		return nil, fmt.Errorf("node: registry: %w", err)
	}
	cfg, err := configserver.New(configserver.Config{Store: st, Conn: nc, NodeName: n.cfg.Name, Logger: n.log, Metrics: n.metrics})
	if err != nil {
		return nil, fmt.Errorf("node: config: %w", err)
	}
	conn, err := mortar.NewConn(nc, &mortar.Options{Logger: n.log, Token: n.internal})
	if err != nil {
		return nil, fmt.Errorf("node: task: %w", err)
	}
	client, err := task.New(conn, nil)
	if err != nil {
		return nil, fmt.Errorf("node: task: %w", err)
	}
	tasks, err := taskserver.New(taskserver.Config{Store: st, Conn: nc, Client: client, Logger: n.log, Metrics: n.metrics})
	if err != nil {
		return nil, fmt.Errorf("node: task: %w", err)
	}
	push, err := n.pushServer(st, nc)
	if err != nil {
		return nil, err
	}
	return []part{reg, cfg, tasks, push}, nil
}

// fail stops what started and returns err.
func (n *Node) fail(g *errgroup.Group, err error) error {
	g.Go(func() error { return err })
	g.Wait()
	return err
}

// startEngine starts the embedded NATS server, or returns nil with an
// external NATS.
func (n *Node) startEngine() (*server.Server, error) {
	if n.cfg.NATSURL != "" {
		return nil, nil
	}
	opts := &server.Options{
		ServerName:            n.cfg.Name,
		Host:                  n.cfg.Host,
		Port:                  n.cfg.Port,
		DontListen:            n.cfg.DontListen,
		JetStream:             true,
		StoreDir:              filepath.Join(n.cfg.DataDir, "jetstream"),
		SyncAlways:            n.cfg.Durability == DurabilityAlways,
		SyncInterval:          n.cfg.SyncInterval,
		NoSigs:                true,
		MaxPayload:            MaxPayload,
		MaxPending:            64 << 20,
		HTTPPort:              0,
		DisableShortFirstPing: true,
		// Every connection authenticates with a mortar credential.
		CustomClientAuthentication: n.natsAuth,
	}
	if n.cfg.ClusterListen != "" {
		host, port, _ := net.SplitHostPort(n.cfg.ClusterListen)
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("node: cluster listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Cluster = server.ClusterOpts{Name: n.cfg.ClusterName, Host: host, Port: p}
		for _, r := range n.cfg.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("node: route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	if err := os.MkdirAll(opts.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	// nats-server reports a taken port only in its log, and then never
	// becomes ready; check first for a clear error.
	if !opts.DontListen && opts.Port > 0 {
		if err := probeListen(net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))); err != nil {
			return nil, fmt.Errorf("node: nats client port: %w", err)
		}
	}
	if opts.Cluster.Port > 0 {
		if err := probeListen(net.JoinHostPort(opts.Cluster.Host, strconv.Itoa(opts.Cluster.Port))); err != nil {
			return nil, fmt.Errorf("node: cluster port: %w", err)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("node: embedded nats: %w", err)
	}
	ns.SetLoggerV2(natslog.New(n.log), false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("node: embedded nats did not start listening on %s:%d within 10s (is the port in use? see the log)", n.cfg.Host, n.cfg.Port)
	}
	n.mu.Lock()
	n.ns = ns
	if !n.cfg.DontListen {
		n.clientURL = ns.ClientURL()
	}
	n.mu.Unlock()
	return ns, nil
}

// connect opens the node's own NATS connection.
func (n *Node) connect(ctx context.Context, ns *server.Server) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("mortar-node-" + n.cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			n.log.Warn("nats async error", "subject", subj, "err", err)
		}),
	}
	url := n.cfg.NATSURL
	if ns == nil && n.cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(n.cfg.NATSUser, n.cfg.NATSPassword))
	}
	if ns != nil {
		opts = append(opts, nats.InProcessServer(ns), nats.Token(n.internal))
		url = ""
	}
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			n.mu.Lock()
			if ns == nil {
				n.clientURL = n.cfg.NATSURL
			}
			n.mu.Unlock()
			return nc, nil
		}
		if ns == nil && errors.Is(err, nats.ErrAuthorization) {
			return nil, fmt.Errorf("node: connect to %s as %q (the node's user must be one of the server's users, and with an auth callout one of its auth_users): %w", url, n.cfg.NATSUser, err)
		}
		if ns != nil || !errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("node: connect to nats: %w", err)
		}
		n.log.Info("waiting for external nats", "url", url, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("node: connect to %s: %w", url, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// renewLiveness keeps the node's key in the nodes bucket alive: created
// with a key TTL, renewed with a message TTL (a plain Put would drop the
// TTL), deleted on a clean stop.
func (n *Node) renewLiveness(ctx context.Context, st *store.Store) error {
	ttl := n.cfg.NodeTTL
	val := []byte(fmt.Sprintf(`{"name":%q,"version":%q,"started":%q}`, n.cfg.Name, mortar.Version(), time.Now().UTC().Format(time.RFC3339)))
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		if err := st.RenewNode(ctx, n.cfg.Name, val, ttl); err != nil && ctx.Err() == nil {
			n.log.Warn("renew node liveness", "err", err)
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := st.Nodes.Delete(dctx, n.cfg.Name); err != nil {
				n.log.Debug("delete node liveness", "err", err)
			}
			return nil
		case <-tick.C:
		}
	}
}

// probeListen reports whether addr can be listened on now.
func probeListen(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

func (n *Node) listenAdmin() (net.Listener, error) {
	if n.cfg.AdminAddr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", n.cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("node: admin listen: %w", err)
	}
	n.mu.Lock()
	n.adminAddr = ln.Addr().String()
	n.mu.Unlock()
	return ln, nil
}

func (n *Node) dataDirOrExternal() string {
	if n.cfg.NATSURL != "" {
		return "(external nats " + n.cfg.NATSURL + ")"
	}
	return n.cfg.DataDir
}

func adminURL(addr string) string {
	if addr == "" {
		return "off"
	}
	return "http://" + addr
}
