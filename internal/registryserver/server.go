// Package registryserver is the control-plane half of the service
// registry. Every node keeps the whole registry in memory, fed by one
// watcher on the registry bucket, and answers reads from it; writes go to
// the bucket with compare-and-set. Heartbeats arrive over core NATS and
// only touch memory: every node hears every heartbeat, and the node that
// owns an instance (the one that accepted its registration, or adopted it)
// evicts it when its lease lapses and runs its active health check. When a
// node's liveness key expires, one survivor, the one that wins a create
// of a marker key, adopts that node's live instances and removes the
// rest. A node that sees most of its instances lapse at once stops
// evicting (Eureka's self-preservation): it is more likely cut off than
// they are all dead.
package registryserver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/registry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config.
const (
	SelfPreservationDefault    = 0.5
	SelfPreservationMinDefault = 5
	SweepIntervalDefault       = time.Second
	NodeTTLDefault             = 10 * time.Second
	MaxChecksDefault           = 64
)

// Config configures a Server.
type Config struct {
	Store    *store.Store
	Conn     *nats.Conn
	NodeName string
	// NodeTTL is how long a node's liveness key outlives it; a node
	// waits this long after starting before it adopts instances of nodes
	// it does not see. Defaults to NodeTTLDefault.
	NodeTTL time.Duration
	// SelfPreservation is the fraction of a node's leased instances that
	// may lapse in one sweep before it stops evicting. Defaults to
	// SelfPreservationDefault; negative disables self-preservation.
	SelfPreservation float64
	// SelfPreservationMin is the fewest leased instances a node must own
	// for self-preservation to apply. Defaults to
	// SelfPreservationMinDefault.
	SelfPreservationMin int
	// SweepInterval is how often the node looks for lapsed leases, dead
	// nodes and due health checks. Defaults to SweepIntervalDefault.
	SweepInterval time.Duration
	// MaxChecks bounds the health checks running at once. Defaults to
	// MaxChecksDefault.
	MaxChecks int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics is where the server registers its metrics; nil means
	// nowhere.
	Metrics prometheus.Registerer
}

// entry is one instance as this node knows it.
type entry struct {
	inst registry.Instance // Revision is the bucket revision
	seen time.Time         // when this node last applied a write of it
}

// Server is the registry's control-plane half on one node.
type Server struct {
	cfg  Config
	log  *slog.Logger
	kv   jetstream.KeyValue
	st   *store.Store
	nc   *nats.Conn
	self string
	m    metrics

	mu         sync.Mutex
	entries    map[string]*entry    // by registrywire.Key
	beats      map[string]time.Time // last heartbeat heard, by key
	seq        uint64               // last bucket revision applied
	loaded     bool                 // the first snapshot is applied
	changed    chan struct{}        // closed and replaced when seq or loaded moves
	nodes      map[string]bool      // live nodes
	nodesOK    bool                 // nodes holds the first snapshot
	checks     map[string]*checkState
	preserving bool
	started    time.Time

	wg      sync.WaitGroup // health checks
	sem     chan struct{}  // bounds the checks running at once
	stopped chan struct{}  // closed when Run returns: nothing follows the bucket
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Store.Registry == nil || cfg.Conn == nil || cfg.NodeName == "" {
		return nil, errors.New("registryserver: store, connection and node name are required")
	}
	cfg.NodeTTL = cmp.Or(cfg.NodeTTL, NodeTTLDefault)
	cfg.SelfPreservation = cmp.Or(cfg.SelfPreservation, SelfPreservationDefault)
	cfg.SelfPreservationMin = cmp.Or(cfg.SelfPreservationMin, SelfPreservationMinDefault)
	cfg.SweepInterval = cmp.Or(cfg.SweepInterval, SweepIntervalDefault)
	cfg.MaxChecks = cmp.Or(cfg.MaxChecks, MaxChecksDefault)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "registry"),
		kv:      cfg.Store.Registry,
		st:      cfg.Store,
		nc:      cfg.Conn,
		self:    cfg.NodeName,
		m:       newMetrics(),
		entries: make(map[string]*entry),
		beats:   make(map[string]time.Time),
		changed: make(chan struct{}),
		nodes:   make(map[string]bool),
		checks:  make(map[string]*checkState),
		sem:     make(chan struct{}, cfg.MaxChecks),
		stopped: make(chan struct{}),
	}
	if cfg.Metrics != nil {
		if err := s.m.register(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("registryserver: metrics: %w", err)
		}
	}
	return s, nil
}

// Run follows the registry bucket and the nodes bucket, hears heartbeats,
// and sweeps for lapsed leases, dead nodes and due checks, until ctx
// ends.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.stopped)
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	sub, err := s.nc.Subscribe(registrywire.HeartbeatPrefix+">", s.onHeartbeat)
	if err != nil {
		return fmt.Errorf("registryserver: subscribe heartbeats: %w", err)
	}
	sub.SetPendingLimits(1<<20, 64<<20)
	defer sub.Unsubscribe()

	var wg sync.WaitGroup
	wg.Go(func() { s.follow(ctx, s.kv, s.applyInstance, s.resetInstances) })
	wg.Go(func() { s.follow(ctx, s.st.Nodes, s.applyNode, s.resetNodes) })
	wg.Go(func() { s.sweepLoop(ctx) })
	wg.Go(func() { s.purgeLoop(ctx) })
	wg.Wait()
	s.wg.Wait()
	return nil
}

func (s *Server) onHeartbeat(m *nats.Msg) {
	key := m.Subject[len(registrywire.HeartbeatPrefix):]
	now := time.Now()
	s.mu.Lock()
	s.beats[key] = now
	s.mu.Unlock()
	s.m.heartbeats.Inc()
}

// follow watches every key of kv and applies what it sees: first a
// snapshot (reset, then apply each key), then every change. If the watch
// breaks, or the bucket's stream elects a new leader (the watch's
// consumer may have died with the old one, and would only notice after
// missed heartbeats), it starts again from a new snapshot.
func (s *Server) follow(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry), reset func(initial bool)) {
	restart := make(chan struct{}, 1)
	sub, err := s.nc.Subscribe(leaderElectedPrefix+"KV_"+kv.Bucket(), func(*nats.Msg) {
		select {
		case restart <- struct{}{}:
		default:
		}
	})
	if err == nil {
		defer sub.Unsubscribe()
	}
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		w, err := kv.WatchAll(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("watch bucket", "bucket", kv.Bucket(), "err", err, "retry_in", wait)
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
		reset(true)
		s.drain(ctx, w, apply, reset, restart)
		w.Stop()
	}
}

// leaderElectedPrefix is the subject of the engine's advisory that a
// stream elected a leader, without the stream's name.
const leaderElectedPrefix = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."

// drain applies w's entries until it ends, ctx ends or restart fires.
func (s *Server) drain(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry), reset func(bool), restart <-chan struct{}) {
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				reset(false)
				continue
			}
			apply(e)
		case <-restart:
			s.log.Debug("bucket leader changed; watching again", "bucket", w)
			return
		case <-ctx.Done():
			return
		}
	}
}

// resetInstances starts a new snapshot (initial) or marks it complete.
// Keys the new snapshot does not bring back are dropped when it
// completes.
func (s *Server) resetInstances(initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if initial {
		for _, e := range s.entries {
			e.seen = time.Time{} // unmarked: not yet in the new snapshot
		}
		return
	}
	for k, e := range s.entries {
		if e.seen.IsZero() {
			delete(s.entries, k)
		}
	}
	s.loaded = true
	s.notifyLocked()
}

func (s *Server) applyInstance(e jetstream.KeyValueEntry) {
	key := e.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq = max(s.seq, e.Revision())
	defer s.notifyLocked()
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.entries, key)
		delete(s.beats, key)
		return
	}
	in, err := decodeRecord(key, e.Value())
	if err != nil {
		s.log.Warn("skipping a malformed registry record", "key", key, "err", err)
		return
	}
	in.Revision = e.Revision()
	s.entries[key] = &entry{inst: in, seen: time.Now()}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) resetNodes(initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if initial {
		clear(s.nodes)
		s.nodesOK = false
		return
	}
	s.nodesOK = true
}

func (s *Server) applyNode(e jetstream.KeyValueEntry) {
	name := e.Key()
	if len(name) > 0 && name[0] == '_' { // adoption markers
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Operation() == jetstream.KeyValuePut {
		s.nodes[name] = true
	} else {
		delete(s.nodes, name)
	}
}

// catchUpWait bounds how long a write waits for this node's view to
// include it. The write is done either way; the wait only makes a read
// through the same node right after it see it.
const catchUpWait = 2 * time.Second

var errStopping = &mortar.Error{Code: mortar.CodeUnavailable, Message: "the node is stopping; retry"}

// waitFor waits until the node has applied the bucket up to revision seq,
// or catchUpWait passes; with seq 0, until the first snapshot is in (an
// unavailable error if the node stops first).
func (s *Server) waitFor(ctx context.Context, seq uint64) error {
	var timeout <-chan time.Time
	if seq > 0 {
		t := time.NewTimer(catchUpWait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		s.mu.Lock()
		ok := s.loaded && s.seq >= seq
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-timeout:
			return nil
		case <-s.stopped:
			if seq > 0 {
				return nil
			}
			return errStopping
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// purgeLoop removes delete markers older than half an hour, every hour,
// so that a registry with churn does not keep one marker per instance
// that ever left.
func (s *Server) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		if err := s.kv.PurgeDeletes(pctx); err != nil && ctx.Err() == nil {
			s.log.Warn("purge registry delete markers", "err", err)
		}
		cancel()
	}
}
