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
	gen  uint64            // the snapshot that last brought it
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
	tombs      map[string]uint64    // revision of each delete seen since the last snapshot began
	gen        uint64               // snapshots taken
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
	rewatch chan struct{}  // asks the registry bucket's watch to start over
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
		tombs:   make(map[string]uint64),
		beats:   make(map[string]time.Time),
		changed: make(chan struct{}),
		nodes:   make(map[string]bool),
		checks:  make(map[string]*checkState),
		sem:     make(chan struct{}, cfg.MaxChecks),
		stopped: make(chan struct{}),
		rewatch: make(chan struct{}, 1),
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
	wg.Go(func() { s.followRegistry(ctx) })
	wg.Go(func() { s.follow(ctx, s.st.Nodes, s.applyNode, s.resetNodes, make(chan struct{}, 1)) })
	wg.Go(func() { every(ctx, s.cfg.SweepInterval, func() { s.sweep(ctx, time.Now()) }) })
	wg.Go(func() { every(ctx, time.Hour, func() { s.purge(ctx) }) })
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

// follow (used for the nodes bucket) watches every key of kv and applies what it sees: first a
// snapshot (reset, then apply each key), then every change. If the watch
// breaks, or the bucket's stream elects a new leader (the watch's
// consumer may have died with the old one, and would only notice after
// missed heartbeats), it starts again from a new snapshot.
func (s *Server) follow(ctx context.Context, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry), reset func(initial bool), restart chan struct{}) {
	sub, err := s.nc.Subscribe(leaderElectedPrefix+"KV_"+kv.Bucket(), func(*nats.Msg) { kick(restart) })
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
		if s.drain(ctx, w, apply, reset, restart) {
			s.log.Debug("bucket leader changed; watching again", "bucket", kv.Bucket())
		}
		w.Stop()
	}
}

// kick signals ch without blocking.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// leaderElectedPrefix is the subject of the engine's advisory that a
// stream elected a leader, without the stream's name.
const leaderElectedPrefix = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."

// drain applies w's entries until it ends, ctx ends or restart fires;
// it reports the restart.
func (s *Server) drain(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry), reset func(bool), restart <-chan struct{}) bool {
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return false
			}
			if e == nil {
				reset(false)
				continue
			}
			apply(e)
		case <-restart:
			return true
		case <-ctx.Done():
			return false
		}
	}
}

// followRegistry keeps this node's view of the registry: a snapshot of
// the bucket (a short-lived watch), then the changes the bucket
// republishes on core NATS, the same notices SDK watchers follow. A
// notice that shows a gap (its key's previous revision is not the one
// the view holds), a dropped notice, a reconnect, a new leader of the
// bucket's stream and every resnapshotEvery take a new snapshot. Nothing
// here depends on an engine consumer staying alive, so the view keeps
// moving while the cluster replaces a dead node.
func (s *Server) followRegistry(ctx context.Context) {
	events := make(chan *nats.Msg, 1<<16)
	sub, err := s.nc.ChanSubscribe(registrywire.EventPrefix+">", events)
	if err != nil {
		s.log.Error("subscribe to registry changes", "err", err)
		return
	}
	defer sub.Unsubscribe()
	if adv, err := s.nc.Subscribe(leaderElectedPrefix+"KV_"+registrywire.Bucket, func(*nats.Msg) { kick(s.rewatch) }); err == nil {
		defer adv.Unsubscribe()
	}
	status := s.nc.StatusChanged(nats.CONNECTED)
	defer s.nc.RemoveStatusListener(status)
	resync := time.NewTicker(resnapshotEvery)
	defer resync.Stop()
	need, dropped := true, 0
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		if d, _ := sub.Dropped(); d != dropped {
			dropped, need = d, true
		}
		if need {
			if err := s.snapshot(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("read the registry bucket; serving the last view meanwhile", "err", err, "retry_in", wait)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, 5*time.Second)
				continue
			}
			need, wait = false, 100*time.Millisecond
		}
		select {
		case m := <-events:
			need = s.applyEvent(m)
		case <-s.rewatch:
			need = true
		case <-status:
			need = true
		case <-resync.C:
			need = true
		case <-ctx.Done():
			return
		}
	}
}

// resnapshotEvery is the safety net against a lost notice that no later
// notice reveals.
const resnapshotEvery = 5 * time.Minute

// snapshotStall bounds the wait for the next entry of a snapshot.
const snapshotStall = 10 * time.Second

// snapshot reads every key of the bucket into the view and drops what
// the bucket no longer has.
func (s *Server) snapshot(ctx context.Context) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.kv.WatchAll(wctx)
	if err != nil {
		return err
	}
	defer w.Stop()
	start := time.Now()
	s.mu.Lock()
	s.gen++
	gen := s.gen
	clear(s.tombs)
	s.mu.Unlock()
	stall := time.NewTimer(snapshotStall)
	defer stall.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("registry: the bucket's watch ended during a snapshot")
			}
			if e == nil {
				s.finishSnapshot(gen, start)
				return nil
			}
			s.applyEntry(e.Key(), e.Revision(), e.Operation() != jetstream.KeyValuePut, e.Value(), gen)
			stall.Reset(snapshotStall)
		case <-stall.C:
			return errors.New("registry: snapshot stalled")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finishSnapshot drops the entries the snapshot did not bring back,
// unless this node wrote them after the snapshot began.
func (s *Server) finishSnapshot(gen uint64, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.entries {
		if e.gen != gen && e.seen.Before(start) {
			delete(s.entries, k)
		}
	}
	s.loaded = true
	s.notifyLocked()
}

// applyEvent applies one change notice; it reports a gap, after which the
// view needs a new snapshot.
func (s *Server) applyEvent(m *nats.Msg) (gap bool) {
	ev, err := registrywire.DecodeEvent(m.Subject, m.Header, m.Data)
	if err != nil {
		s.log.Warn("skipping a malformed registry notice", "subject", m.Subject, "err", err)
		return false
	}
	s.mu.Lock()
	known := s.tombs[ev.Key]
	if e, ok := s.entries[ev.Key]; ok {
		known = e.inst.Revision
	}
	s.mu.Unlock()
	switch {
	case ev.Seq <= known:
		return false // already in the view
	case ev.LastSeq > known:
		return true // a change of this key was missed
	}
	s.applyEntry(ev.Key, ev.Seq, ev.Deleted, ev.Data, 0)
	return false
}

// applyEntry puts revision rev of key into the view (a delete if
// deleted), unless the view holds a later one. gen marks entries a
// snapshot brought (0 outside snapshots).
func (s *Server) applyEntry(key string, rev uint64, deleted bool, data []byte, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq = max(s.seq, rev)
	if rev <= s.tombs[key] {
		return
	}
	cur, ok := s.entries[key]
	switch {
	case ok && cur.inst.Revision > rev:
		return
	case ok && cur.inst.Revision == rev:
		cur.gen = max(cur.gen, gen)
		return
	}
	defer s.notifyLocked()
	if deleted {
		delete(s.entries, key)
		delete(s.beats, key)
		s.tombs[key] = rev
		return
	}
	in, err := decodeRecord(key, data)
	if err != nil {
		s.log.Warn("skipping a malformed registry record", "key", key, "err", err)
		return
	}
	in.Revision = rev
	delete(s.tombs, key)
	s.entries[key] = &entry{inst: in, seen: time.Now(), gen: gen}
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
		return
	}
	delete(s.nodes, name)
	// The registry watch's consumer may have lived on the node that left,
	// and would only notice after missed heartbeats.
	kick(s.rewatch)
}

var errStopping = &mortar.Error{Code: mortar.CodeUnavailable, Message: "the node is stopping; retry"}

// waitLoaded waits until the first snapshot of the bucket is in (an
// unavailable error if the node stops first).
func (s *Server) waitLoaded(ctx context.Context) error {
	for {
		s.mu.Lock()
		ok := s.loaded
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-s.stopped:
			return errStopping
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// applyLocal puts a write this node made into its view at once (in nil:
// a delete), so that a read through this node right after sees it even
// while the bucket's watch lags (a node of the cluster died with the
// watch's consumer). The watch brings the same revision later; older
// ones never replace it.
func (s *Server) applyLocal(key string, in *registry.Instance, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.entries[key]; ok && cur.inst.Revision >= rev || s.tombs[key] >= rev {
		return
	}
	if in == nil {
		delete(s.entries, key)
		s.tombs[key] = rev
	} else {
		rec := *in
		rec.Revision = rev
		s.entries[key] = &entry{inst: rec, seen: time.Now()}
		delete(s.tombs, key)
	}
	s.notifyLocked()
}

// purge removes delete markers older than half an hour (run every
// hour), so that a registry with churn does not keep one marker per
// instance that ever left.
func (s *Server) purge(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.kv.PurgeDeletes(pctx); err != nil && ctx.Err() == nil {
		s.log.Warn("purge registry delete markers", "err", err)
	}
}
