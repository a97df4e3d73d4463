package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// ResolverConfig configures a Resolver. A nil *ResolverConfig means all
// defaults.
type ResolverConfig struct {
	// Balancer picks an instance per call. Defaults to RoundRobin().
	Balancer Balancer
}

// Resolver keeps a live view of one service's instances, fed by a
// Watcher in its own goroutine, and picks one per call with a Balancer.
// Its view survives an unreachable control plane: it keeps serving the
// last instances it knew and catches up once a node answers again.
type Resolver struct {
	w      *Watcher
	bal    Balancer
	view   atomic.Pointer[[]Instance] // healthy instances
	all    atomic.Pointer[[]Instance]
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	changed chan struct{}
}

// Resolve starts following service. The first list is read before
// Resolve returns. Close the Resolver when done.
func (c *Client) Resolve(ctx context.Context, service string, cfg *ResolverConfig) (*Resolver, error) {
	w, err := c.Watch(ctx, service)
	if err != nil {
		return nil, err
	}
	r := &Resolver{w: w, bal: RoundRobin(), done: make(chan struct{}), changed: make(chan struct{})}
	if cfg != nil && cfg.Balancer != nil {
		r.bal = cfg.Balancer
	}
	// The first list is already in the watcher's state.
	for len(w.pending) > 0 && w.pending[0].Type == EventPut {
		w.pending = w.pending[1:]
	}
	r.publish()
	rctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.run(rctx)
	}()
	return r, nil
}

func (r *Resolver) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		_, err := r.w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.w.c.log.Debug("resolver: waiting for the control plane", "service", r.w.service, "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if !r.w.more() {
			r.publish()
		}
	}
}

func (r *Resolver) publish() {
	all := r.w.Instances()
	healthy := Healthy(all)
	r.all.Store(&all)
	r.view.Store(&healthy)
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// Instances returns every instance the resolver knows, critical ones
// included. The slice is shared: do not modify it.
func (r *Resolver) Instances() []Instance { return *r.all.Load() }

// Healthy returns the instances fit to serve (not critical). The slice is
// shared: do not modify it.
func (r *Resolver) Healthy() []Instance { return *r.view.Load() }

// Changed returns a channel closed at the next change of the view.
func (r *Resolver) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Pick chooses an instance for a call with the resolver's balancer; key
// is the consistent-hash key, or "". Call done when the call ends. It
// fails with ErrNoInstances if no instance is fit to serve.
func (r *Resolver) Pick(key string) (Instance, Done, error) {
	ins := r.Healthy()
	if len(ins) == 0 {
		return Instance{}, nil, ErrNoInstances
	}
	in, done := r.bal.Pick(ins, key)
	return in, done, nil
}

// Balancer returns the resolver's balancer.
func (r *Resolver) Balancer() Balancer { return r.bal }

// Close stops following the service. It is idempotent.
func (r *Resolver) Close() {
	r.cancel()
	<-r.done
	r.w.Stop()
}
