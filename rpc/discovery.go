package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mortarhq/mortar/registry"
)

// Discovery: a Client dialled with "mortar://NAME" resolves NAME through
// the service registry, keeps one connection per instance it calls, picks
// an instance per call with a balancer, follows registrations live, and
// fails over: a call that never reached its instance (the dial failed,
// the connection was already broken, the server was shutting down or
// busy) is retried on another instance, and the instance is set aside
// for a moment.

// ejectFor is how long an instance that failed a call is passed over
// while others remain.
const ejectFor = 2 * time.Second

// retireAfter is how long a connection to an instance that left the
// registry stays open for the calls still on it.
const retireAfter = 30 * time.Second

// maxFailover bounds the instances one call tries.
const maxFailover = 3

// notSentError marks an error that happened before the request left:
// retrying it elsewhere cannot run the call twice.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

type balanceKey struct{}

// WithBalanceKey returns a context whose calls on a mortar:// client carry
// key for consistent hashing (registry.ConsistentHash): calls with the
// same key go to the same instance while it lives.
func WithBalanceKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, balanceKey{}, key)
}

// pool is the discovery half of a mortar:// Client.
type pool struct {
	service   string
	res       *registry.Resolver
	bal       registry.Balancer
	cfg       ClientConfig // for the per-instance clients: no interceptors
	retryLost bool

	mu      sync.Mutex
	clients map[string]*Client  // by endpoint
	view    []registry.Instance // the resolver view clients was pruned against
	retired []retiredClient
	ejected map[string]time.Time // endpoint → until
	closed  bool
}

type retiredClient struct {
	c     *Client
	since time.Time
}

func dialService(ctx context.Context, name string, cfg ClientConfig) (*Client, error) {
	if cfg.Registry == nil {
		return nil, fmt.Errorf("rpc: dial mortar://%s: set ClientConfig.Registry to resolve service names", name)
	}
	bal := cfg.Balancer
	if bal == nil {
		bal = registry.P2C()
	}
	res, err := cfg.Registry.Resolve(ctx, name, &registry.ResolverConfig{Balancer: bal})
	if err != nil {
		return nil, fmt.Errorf("rpc: dial mortar://%s: %w", name, err)
	}
	sub := cfg
	sub.Interceptors = nil
	p := &pool{
		service: name, res: res, bal: bal, cfg: sub, retryLost: cfg.RetryLostCalls,
		clients: map[string]*Client{}, ejected: map[string]time.Time{},
	}
	return &Client{cfg: cfg, endpoint: "mortar://" + name, pool: p, dialSem: make(chan struct{}, 1)}, nil
}

// pick chooses an instance not yet tried by this call, preferring those
// not ejected, and returns its client.
func (p *pool) pick(ctx context.Context, tried map[string]bool) (*Client, string, registry.Done, error) {
	key, _ := ctx.Value(balanceKey{}).(string)
	all := p.res.Healthy()
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, "", nil, ErrClosed
	}
	p.pruneLocked(now)
	fresh := all
	// The common case, a first attempt with nobody set aside, picks from
	// the resolver's slice as it is.
	if len(tried) > 0 || len(p.ejected) > 0 || !allZeroRPC(all) {
		fresh = make([]registry.Instance, 0, len(all))
		var ejected []registry.Instance
		eligible := 0
		for _, in := range all {
			if !isZeroRPC(&in) {
				continue // an instance of the service that speaks something else
			}
			eligible++
			ep := in.Endpoint()
			switch {
			case tried[ep]:
			case now.Before(p.ejected[ep]):
				ejected = append(ejected, in)
			default:
				fresh = append(fresh, in)
			}
		}
		if len(fresh) == 0 {
			fresh = ejected
		}
		if len(fresh) == 0 && eligible > 0 {
			p.mu.Unlock()
			return nil, "", nil, nil // every instance tried
		}
	}
	p.mu.Unlock()
	if len(fresh) == 0 {
		return nil, "", nil, fmt.Errorf("rpc: mortar://%s: %w", p.service, registry.ErrNoInstances)
	}
	in, done := p.bal.Pick(fresh, key)
	ep := in.Endpoint()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, "", nil, ErrClosed
	}
	c := p.clients[ep]
	if c == nil {
		c = newInstanceClient(ep, p.cfg)
		p.clients[ep] = c
	}
	return c, ep, done, nil
}

func isZeroRPC(in *registry.Instance) bool {
	return in.Protocol == "" || in.Protocol == registry.ProtocolDefault
}

func allZeroRPC(ins []registry.Instance) bool {
	for i := range ins {
		if !isZeroRPC(&ins[i]) {
			return false
		}
	}
	return true
}

func newInstanceClient(endpoint string, cfg ClientConfig) *Client {
	network, address, err := splitEndpoint(endpoint)
	if err != nil { // an instance registered with a protocol we cannot dial
		network, address = "tcp", endpoint
	}
	return &Client{cfg: cfg, endpoint: endpoint, network: network, address: address, dialSem: make(chan struct{}, 1)}
}

// pruneLocked retires the clients of instances that left the registry,
// once per change of the resolver's view, and closes retired clients
// whose grace has passed.
func (p *pool) pruneLocked(now time.Time) {
	all := p.res.Instances()
	if len(all) != len(p.view) || (len(all) > 0 && &all[0] != &p.view[0]) {
		p.view = all
		live := make(map[string]bool, len(all))
		for _, in := range all {
			live[in.Endpoint()] = true
		}
		for ep, c := range p.clients {
			if !live[ep] {
				delete(p.clients, ep)
				delete(p.ejected, ep)
				p.retired = append(p.retired, retiredClient{c, now})
			}
		}
	}
	for ep, until := range p.ejected {
		if now.After(until) {
			delete(p.ejected, ep)
		}
	}
	for len(p.retired) > 0 && now.Sub(p.retired[0].since) > retireAfter {
		p.retired[0].c.Close()
		p.retired = p.retired[1:]
	}
}

// failed decides whether err lets the call move to another instance, and
// if so sets the instance aside for a moment.
func (p *pool) failed(ep string, err error) bool {
	retry, broken := false, false
	if _, ok := errors.AsType[*notSentError](err); ok {
		retry = !errors.Is(err, ErrClosed) || !p.isClosed()
	} else if re, ok := errors.AsType[*RemoteError](err); ok {
		retry = re.Name == errShuttingDown.Name || re.Name == errBusy.Name
	} else if errors.Is(err, ErrConnLost) || errors.Is(err, ErrLostRemote) {
		retry, broken = p.retryLost, true
	}
	if retry || broken {
		p.eject(ep)
	}
	return retry
}

func (p *pool) eject(ep string) {
	p.mu.Lock()
	p.ejected[ep] = time.Now().Add(ejectFor)
	p.mu.Unlock()
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// do runs one attempt per instance until one succeeds, fails in a way
// that must not be retried, or maxFailover instances were tried.
func (p *pool) do(ctx context.Context, attempt func(c *Client) (retryable bool, err error)) error {
	tried := map[string]bool{}
	var last error
	for range maxFailover {
		c, ep, done, err := p.pick(ctx, tried)
		if err != nil {
			return err
		}
		if c == nil {
			break // every instance tried; last holds the latest failure
		}
		tried[ep] = true
		start := time.Now()
		retry, err := attempt(c)
		done(time.Since(start), instanceFault(err))
		if err == nil {
			return nil
		}
		last = err
		if !retry || ctx.Err() != nil || !p.failed(ep, err) {
			return err
		}
	}
	return last
}

// instanceFault is what a balancer should hold against an instance for
// err: nothing for a reply the application chose to send, or for the
// caller's own cancellation.
func instanceFault(err error) error {
	if re, ok := errors.AsType[*RemoteError](err); ok && re.Name != errShuttingDown.Name && re.Name != errBusy.Name {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (p *pool) call(ctx context.Context, req *Request, result any, args []any) error {
	return p.do(ctx, func(c *Client) (bool, error) {
		return true, c.callOnce(ctx, req, result, args)
	})
}

func (p *pool) stream(ctx context.Context, req *Request, args []any, yield func(Raw, error) bool) (stopped bool, err error) {
	err = p.do(ctx, func(c *Client) (bool, error) {
		var yielded bool
		var err error
		stopped, yielded, err = c.streamOnce(ctx, req, args, yield)
		return !yielded, err // once items flowed, a retry would repeat them
	})
	return stopped, err
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	clients := p.clients
	retired := p.retired
	p.clients, p.retired = nil, nil
	p.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	for _, r := range retired {
		r.c.Close()
	}
	p.res.Close()
}

// advertise returns the address and port to register for a listener: the
// configured address, or the listener's if it is specific, or the
// machine's first non-loopback address for a wildcard listener.
func advertise(addr net.Addr, configured string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, err
	}
	if configured != "" {
		return configured, p, nil
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return host, p, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String(), p, nil
			}
		}
	}
	return "127.0.0.1", p, nil
}
