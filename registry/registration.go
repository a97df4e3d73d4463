package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/nats-io/nats.go"
)

// Registration keeps one instance registered: it heartbeats every third
// of the lease over core NATS, and registers the instance again if the
// registry removed it (an eviction after a long pause, an operator's
// deregister) or the connection to the node came back. Stop deregisters.
type Registration struct {
	c      *Client
	key    string
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	inst Instance

	stopOnce sync.Once
	stopErr  error
}

// Register registers in and keeps it registered until Stop, or until the
// connection is closed. The node fills in Node, Status, Registered and
// Revision; read them with Instance. Registering an instance that exists
// replaces it (and this client's earlier Registration of it, if any,
// stops heartbeating).
func (c *Client) Register(ctx context.Context, in Instance) (*Registration, error) {
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	key := in.key()
	nc := c.conn.NATS()
	// Follow our own key from before the write, so no removal is missed.
	events := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(registrywire.EventPrefix+key, events)
	if err != nil {
		return nil, fmt.Errorf("registry: register %s/%s: %w", in.Service, in.ID, err)
	}
	status := nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
	out, err := c.register(ctx, &in)
	if err != nil {
		sub.Unsubscribe()
		nc.RemoveStatusListener(status)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Registration{c: c, key: key, cancel: cancel, done: make(chan struct{}), inst: *out}
	c.mu.Lock()
	old := c.regs[key]
	c.regs[key] = r
	c.mu.Unlock()
	if old != nil {
		old.halt()
	}
	go func() {
		defer close(r.done)
		defer sub.Unsubscribe()
		defer nc.RemoveStatusListener(status)
		r.run(rctx, in, events, status)
	}()
	return r, nil
}

// Instance returns the instance as last registered.
func (r *Registration) Instance() Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inst
}

// Stopped is closed once the registration has stopped heartbeating.
func (r *Registration) Stopped() <-chan struct{} { return r.done }

// Stop stops heartbeating and deregisters the instance; ctx bounds the
// deregistration. It is idempotent.
func (r *Registration) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		if r.halt() {
			in := r.Instance()
			_, r.stopErr = r.c.deregister(ctx, in.Service, in.ID)
		}
	})
	return r.stopErr
}

// halt stops the heartbeats without deregistering. It reports whether
// the registration was still this client's current one for its key.
func (r *Registration) halt() bool {
	r.cancel()
	<-r.done
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	if r.c.regs[r.key] != r {
		return false
	}
	delete(r.c.regs, r.key)
	return true
}

func (r *Registration) run(ctx context.Context, in Instance, events chan *nats.Msg, status chan nats.Status) {
	nc := r.c.conn.NATS()
	hbSubject := registrywire.HeartbeatPrefix + r.key
	var tick <-chan time.Time
	if in.TTL > 0 {
		t := time.NewTicker(in.TTL / 3)
		defer t.Stop()
		tick = t.C
	}
	var retry <-chan time.Time
	backoff := 100 * time.Millisecond
	reregister := func(why string) {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := r.c.register(rctx, &in)
		if errors.Is(err, nats.ErrConnectionClosed) {
			r.c.log.Info("registration stopped: connection closed", "service", in.Service, "id", in.ID)
			r.cancel()
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				r.c.log.Warn("register again failed; retrying", "service", in.Service, "id", in.ID, "why", why, "err", err, "retry_in", backoff)
				retry = time.After(backoff)
				backoff = min(2*backoff, 5*time.Second)
			}
			return
		}
		backoff = 100 * time.Millisecond
		retry = nil
		r.mu.Lock()
		r.inst = *out
		r.mu.Unlock()
		r.c.log.Info("registered again", "service", in.Service, "id", in.ID, "why", why)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			nc.Publish(hbSubject, nil)
		case st := <-status:
			if st == nats.CLOSED {
				return
			}
			reregister("reconnected")
		case <-retry:
			reregister("retry")
		case m := <-events:
			ev, err := registrywire.DecodeEvent(m.Subject, m.Header, m.Data)
			if err != nil {
				continue
			}
			r.mu.Lock()
			mine := ev.Seq > r.inst.Revision
			if mine && !ev.Deleted {
				if err := decodeInto(&r.inst, ev); err != nil {
					mine = false
				}
			}
			r.mu.Unlock()
			if mine && ev.Deleted {
				reregister("removed by the registry")
			}
		}
	}
}

// decodeInto decodes a put event's record into in.
func decodeInto(in *Instance, ev registrywire.Event) error {
	next, err := decodeRecord(ev)
	if err != nil {
		return err
	}
	*in = next
	return nil
}
