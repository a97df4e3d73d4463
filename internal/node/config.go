package node

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authserver"
)

// Defaults for Config.
const (
	DataDirDefault      = mortar.DataDirDefault
	HostDefault         = "127.0.0.1"
	PortDefault         = 4222
	AdminAddrDefault    = "127.0.0.1:7070"
	ClusterNameDefault  = "mortar"
	SyncIntervalDefault = 2 * time.Minute
	NodeTTLDefault      = 10 * time.Second
	PushTCPAddrDefault  = "127.0.0.1:7071"
	// MaxPayload lets a 1 MiB config value travel with its metadata.
	MaxPayload = 4 << 20
)

// Durability says when the embedded engine fsyncs its file store.
type Durability string

// Durability settings.
const (
	// DurabilityAlways fsyncs every write before it is acknowledged
	// (nats-server's sync_always). The default.
	DurabilityAlways Durability = "always"
	// DurabilityInterval fsyncs every SyncInterval; an acknowledged write
	// can be lost if every replica's machine crashes within the interval.
	DurabilityInterval Durability = "interval"
)

// Config configures a Node. Its zero value runs a single node with its
// data in ./mortar-data, NATS clients on 127.0.0.1:4222 and the admin HTTP
// API on 127.0.0.1:7070.
type Config struct {
	// Name is this node's name, stable across restarts: the NATS server
	// name and the node's identity in the cluster. Defaults to the host
	// name.
	Name string
	// DataDir holds the engine's file store. Defaults to DataDirDefault.
	DataDir string
	// Host and Port are where NATS clients (the SDK) connect. Host
	// defaults to HostDefault; Port 0 means PortDefault and -1 a random
	// port.
	Host string
	Port int
	// DontListen serves NATS clients in process only (tests).
	DontListen bool
	// ClusterName names the NATS cluster. Defaults to ClusterNameDefault.
	ClusterName string
	// ClusterListen is host:port for cluster routes; empty means a
	// single node. Port 0 picks a random port.
	ClusterListen string
	// Routes are the other nodes' cluster addresses (host:port or
	// nats-route://host:port).
	Routes []string
	// NATSURL, when set, makes the node use that NATS cluster instead of
	// embedding one; DataDir, Host, Port and the cluster fields are then
	// unused.
	NATSURL string
	// NATSUser and NATSPassword are the credentials of the node's own
	// connection to NATSURL. Default: none.
	NATSUser, NATSPassword string
	// CalloutIssuerSeed, with NATSURL, makes the node answer that NATS
	// server's auth callout (authserver.Callout): the seed ("SA…") of the
	// account key pair the server's auth_callout names as issuer. The
	// node's own user (NATSUser) must be one of its auth_users. Empty: no
	// callout; connections to the external NATS are the operator's to
	// secure.
	CalloutIssuerSeed string
	// CalloutXKeySeed is the seed ("SX…") of the curve key pair whose
	// public key the server's auth_callout names as xkey, when the server
	// encrypts callout requests. Empty: requests come in the clear.
	CalloutXKeySeed string
	// Durability defaults to DurabilityAlways.
	Durability Durability
	// SyncInterval is the fsync period with DurabilityInterval. Defaults
	// to SyncIntervalDefault (nats-server's own default).
	SyncInterval time.Duration
	// Replicas is the replication factor of mortar's buckets and streams.
	// Defaults to 3 when the node is clustered (ClusterListen set, or an
	// external clustered NATS), else 1.
	Replicas int
	// AdminAddr is the admin HTTP listen address (API, /healthz, /readyz,
	// /metrics). Defaults to AdminAddrDefault; "off" disables it.
	AdminAddr string
	// NodeTTL is how long the node's liveness key outlives its last
	// renewal. Defaults to NodeTTLDefault.
	NodeTTL time.Duration
	// SelfPreservation is the fraction of the registry instances this
	// node owns (if it owns at least 5 with a lease) that may lapse at
	// once before it stops evicting, taking itself to be cut off rather
	// than them all dead. Defaults to 0.5; negative disables it.
	SelfPreservation float64
	// Push configures the push gateway.
	Push PushConfig
	// Auth configures the security layer.
	Auth AuthConfig
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// PushConfig configures the push gateway (docs/push.md). Zero values mean
// the defaults of package pushserver.
type PushConfig struct {
	// TCPAddr is the length-prefixed TCP listener. Defaults to
	// PushTCPAddrDefault; "off" disables it. WebSocket and SSE are served
	// on the admin address.
	TCPAddr string
	// Secrets verify connect tokens, the first also signs them: several
	// while one is rotated. Empty means the secret in the data dir's
	// push.secret, generated on first start.
	Secrets []string
	// Ping, Pong, Idle and ConnectTimeout are the heartbeat and deadline
	// settings.
	Ping, Pong, Idle, ConnectTimeout time.Duration
	// SameClient is "replace" (the default) or "keep".
	SameClient string
	// MaxFrame, SendQueue, Rate and Burst are the per-connection limits.
	MaxFrame, SendQueue int
	Rate                float64
	Burst               int
	// HistorySize is the messages kept per channel (default 100; -1
	// turns history off); HistoryTTL how long (default 10m).
	HistorySize int
	HistoryTTL  time.Duration
	// TokenPerms are the permissions of a connection whose push token
	// names none (pushserver.TokenPermsDefault when empty).
	TokenPerms []string
}

// AuthConfig configures the security layer (docs/security.md). Zero
// values mean the defaults of package authserver.
type AuthConfig struct {
	// AdminPassword is the password of the admin user a new installation
	// creates. Defaults to a generated one, printed once to Announce.
	AdminPassword string
	// Announce receives the generated admin password. Defaults to the
	// log.
	Announce io.Writer
	// SessionIdle and SessionMax are the idle and absolute timeouts of a
	// login session.
	SessionIdle, SessionMax time.Duration
	// OIDC turns on logins through an OpenID Connect identity provider:
	// the browser flow on the admin address (/auth/oidc/login) and ID
	// tokens on auth.login. Nil: off.
	OIDC *authserver.OIDCConfig
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// withDefaults validates c and returns a copy with defaults applied.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		h, _ := os.Hostname()
		c.Name = sanitizeName(h)
	}
	if !nameRE.MatchString(c.Name) {
		return c, fmt.Errorf("node: name %q: use 1 to 64 of A-Z a-z 0-9 _ -", c.Name)
	}
	c.DataDir = cmp.Or(c.DataDir, DataDirDefault)
	c.Host = cmp.Or(c.Host, HostDefault)
	switch {
	case c.Port == 0:
		c.Port = PortDefault
	case c.Port < -1 || c.Port > 65535:
		return c, fmt.Errorf("node: port %d out of range", c.Port)
	}
	c.ClusterName = cmp.Or(c.ClusterName, ClusterNameDefault)
	if !nameRE.MatchString(c.ClusterName) {
		return c, fmt.Errorf("node: cluster name %q: use 1 to 64 of A-Z a-z 0-9 _ -", c.ClusterName)
	}
	if c.ClusterListen != "" {
		if _, _, err := net.SplitHostPort(c.ClusterListen); err != nil {
			return c, fmt.Errorf("node: cluster listen address %q: %w", c.ClusterListen, err)
		}
	}
	if len(c.Routes) > 0 && c.ClusterListen == "" {
		return c, fmt.Errorf("node: routes need a cluster listen address")
	}
	c.Routes = slices.Clone(c.Routes)
	for i, r := range c.Routes {
		if !strings.Contains(r, "://") {
			r = "nats-route://" + r
			c.Routes[i] = r
		}
	}
	switch c.Durability {
	case "":
		c.Durability = DurabilityAlways
	case DurabilityAlways, DurabilityInterval:
	default:
		return c, fmt.Errorf("node: durability %q: want %q or %q", c.Durability, DurabilityAlways, DurabilityInterval)
	}
	c.SyncInterval = cmp.Or(c.SyncInterval, SyncIntervalDefault)
	if c.Replicas < 0 || c.Replicas > 5 {
		return c, fmt.Errorf("node: replicas %d: want 1 to 5", c.Replicas)
	}
	c.AdminAddr = cmp.Or(c.AdminAddr, AdminAddrDefault)
	c.NodeTTL = cmp.Or(c.NodeTTL, NodeTTLDefault)
	c.Push.TCPAddr = cmp.Or(c.Push.TCPAddr, PushTCPAddrDefault)
	if c.Push.TCPAddr != "off" {
		if _, _, err := net.SplitHostPort(c.Push.TCPAddr); err != nil {
			return c, fmt.Errorf("node: push tcp address %q: %w", c.Push.TCPAddr, err)
		}
	}
	switch c.Push.SameClient {
	case "", "replace", "keep":
	default:
		return c, fmt.Errorf("node: push same-client policy %q: want replace or keep", c.Push.SameClient)
	}
	if p := c.Push; p.Ping < 0 || p.Pong < 0 || p.Idle < 0 || p.ConnectTimeout < 0 || p.MaxFrame < 0 || p.SendQueue < 0 || p.Rate < 0 || p.Burst < 0 || p.HistoryTTL < 0 {
		return c, errors.New("node: push durations and limits must not be negative")
	}
	if c.Push.HistorySize < -1 {
		return c, fmt.Errorf("node: push history size %d: want -1 (off) or more", c.Push.HistorySize)
	}
	if c.SelfPreservation >= 1 {
		return c, fmt.Errorf("node: self-preservation %v: want a fraction below 1, or negative to disable it", c.SelfPreservation)
	}
	if a := c.Auth; a.SessionIdle < 0 || a.SessionMax < 0 {
		return c, errors.New("node: session timeouts must not be negative")
	}
	if c.Auth.OIDC != nil {
		if err := c.Auth.OIDC.Validate(); err != nil {
			return c, fmt.Errorf("node: %w", err)
		}
	}
	if (c.NATSUser != "" || c.NATSPassword != "") && c.NATSURL == "" {
		return c, errors.New("node: a NATS user and password are for an external NATS (NATSURL); the node's own connection to an embedded one needs none")
	}
	if c.CalloutIssuerSeed != "" || c.CalloutXKeySeed != "" {
		if c.NATSURL == "" {
			return c, errors.New("node: the NATS auth callout needs an external NATS (NATSURL); an embedded one authenticates in process")
		}
		co := authserver.CalloutConfig{IssuerSeed: c.CalloutIssuerSeed, XKeySeed: c.CalloutXKeySeed}
		if err := co.Validate(); err != nil {
			return c, fmt.Errorf("node: %w", err)
		}
	}
	if c.NodeTTL < time.Second {
		return c, fmt.Errorf("node: node TTL %v: at least 1s", c.NodeTTL)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	return c, nil
}

// sanitizeName turns a host name into a node name.
func sanitizeName(h string) string {
	h, _, _ = strings.Cut(h, ".")
	b := []byte(h)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "mortar"
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
