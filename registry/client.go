package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
)

// ResyncIntervalDefault is how often a watcher re-reads its service as a
// safety net; see Config.ResyncInterval.
const ResyncIntervalDefault = 30 * time.Second

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: the instance is not registered.
	ErrNotFound = &mortar.Error{Code: mortar.CodeNotFound}
	// ErrNoInstances: a service has no instance fit to serve.
	ErrNoInstances = errors.New("registry: no instances")
	// ErrStopped is returned by a Watcher's Next after Stop, and by a
	// closed Resolver.
	ErrStopped = errors.New("registry: stopped")
)

// Config configures a Client. A nil *Config means all defaults.
type Config struct {
	// ResyncInterval is how often a watcher re-reads its service as a
	// safety net for a change notice lost without a gap to show it.
	// Defaults to ResyncIntervalDefault; negative means never.
	ResyncInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Client registers, finds and watches instances through a mortar node.
// It is safe for concurrent use. It remembers the last answer to each
// List, and answers from that memory while no node can be reached.
type Client struct {
	conn *mortar.Conn
	cfg  Config
	log  *slog.Logger

	mu    sync.Mutex
	cache map[string][]Instance    // last List answer, by service ("" for all)
	regs  map[string]*Registration // live registrations, by key
}

// New returns a Client on conn.
func New(conn *mortar.Conn, cfg *Config) (*Client, error) {
	if conn == nil {
		return nil, errors.New("registry: nil connection")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.ResyncInterval = cmp.Or(c.ResyncInterval, ResyncIntervalDefault)
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Client{conn: conn, cfg: c, log: log.With("component", "registry"), cache: map[string][]Instance{}, regs: map[string]*Registration{}}, nil
}

// Conn returns the connection the client uses.
func (c *Client) Conn() *mortar.Conn { return c.conn }

type registerRequest struct {
	Instance *Instance `json:"instance"`
}

// RegisterOnce registers in and returns the record the node stored,
// without keeping it registered: no heartbeats, nothing re-registers it.
// Meant for instances without a lease (TTL 0), which stay until
// deregistered, and for callers that heartbeat themselves (Renew).
func (c *Client) RegisterOnce(ctx context.Context, in Instance) (*Instance, error) {
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	return c.register(ctx, &in)
}

// register writes in once and returns the record the node stored.
func (c *Client) register(ctx context.Context, in *Instance) (*Instance, error) {
	var out Instance
	if err := c.conn.Do(ctx, "registry.register", &registerRequest{Instance: in}, &out); err != nil {
		return nil, fmt.Errorf("registry: register %s/%s: %w", in.Service, in.ID, err)
	}
	return &out, nil
}

// Deregister removes an instance. It reports whether the instance was
// registered; removing one that is not is not an error. If this client
// keeps the instance registered (Register), that Registration stops;
// another client's Registration registers its instance again.
func (c *Client) Deregister(ctx context.Context, service, id string) (bool, error) {
	c.mu.Lock()
	r := c.regs[registrywire.Key(service, id)]
	c.mu.Unlock()
	if r != nil {
		r.halt()
	}
	return c.deregister(ctx, service, id)
}

func (c *Client) deregister(ctx context.Context, service, id string) (bool, error) {
	var out registrywire.DeregisterResponse
	if err := c.conn.Do(ctx, "registry.deregister", &registrywire.Ref{Service: service, ID: id}, &out); err != nil {
		return false, fmt.Errorf("registry: deregister %s/%s: %w", service, id, err)
	}
	return out.Deleted, nil
}

// Get returns one instance, or an error matching ErrNotFound.
func (c *Client) Get(ctx context.Context, service, id string) (*Instance, error) {
	var out Instance
	if err := c.conn.Do(ctx, "registry.get", &registrywire.Ref{Service: service, ID: id}, &out); err != nil {
		return nil, fmt.Errorf("registry: get %s/%s: %w", service, id, err)
	}
	return &out, nil
}

// Renew heartbeats an instance through the API: what a Registration does
// over NATS, for callers that manage leases themselves. It fails with
// ErrNotFound if the instance is not registered (register it again).
func (c *Client) Renew(ctx context.Context, service, id string) error {
	if err := c.conn.Do(ctx, "registry.renew", &registrywire.Ref{Service: service, ID: id}, nil); err != nil {
		return fmt.Errorf("registry: renew %s/%s: %w", service, id, err)
	}
	return nil
}

// listResponse is registry.list's answer.
type listResponse struct {
	Instances []Instance `json:"instances"`
	Revision  uint64     `json:"revision"`
}

func (c *Client) list(ctx context.Context, service string) (*listResponse, error) {
	var out listResponse
	if err := c.conn.Do(ctx, "registry.list", &registrywire.ListRequest{Service: service}, &out); err != nil {
		return nil, fmt.Errorf("registry: list %s: %w", cmp.Or(service, "all services"), err)
	}
	return &out, nil
}

// List returns the instances of service ("" for every service), sorted
// by service and ID, critical ones included. While no node can be
// reached it returns the last list it got for service, if it has one.
func (c *Client) List(ctx context.Context, service string) ([]Instance, error) {
	if !c.conn.NATS().IsConnected() {
		if cached, ok := c.cached(service); ok {
			return cached, nil
		}
	}
	out, err := c.list(ctx, service)
	if err != nil {
		if code := mortar.ErrorCode(err); code == mortar.CodeUnavailable || code == mortar.CodeInternal || code == mortar.CodeDeadlineExceeded {
			if cached, ok := c.cached(service); ok {
				c.log.Debug("serving a cached list: the control plane is unreachable", "service", service, "err", err)
				return cached, nil
			}
		}
		return nil, err
	}
	c.mu.Lock()
	c.cache[service] = out.Instances
	c.mu.Unlock()
	return slices.Clone(out.Instances), nil
}

func (c *Client) cached(service string) ([]Instance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.cache[service]
	return slices.Clone(v), ok
}

// ServiceInfo summarises one service.
type ServiceInfo = registrywire.ServiceInfo

// Services lists the registered services with their instance counts by
// health.
func (c *Client) Services(ctx context.Context) ([]ServiceInfo, error) {
	var out struct {
		Services []ServiceInfo `json:"services"`
	}
	if err := c.conn.Do(ctx, "registry.services", struct{}{}, &out); err != nil {
		return nil, fmt.Errorf("registry: services: %w", err)
	}
	return out.Services, nil
}
