package registryserver

import (
	"context"
	"errors"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/registry"
	"github.com/nats-io/nats.go/jetstream"
)

// adoptMarkerTTL is how long a survivor's claim on a dead node's
// instances lasts: if it dies while adopting, another survivor tries
// once the marker expires.
const adoptMarkerTTL = 30 * time.Second

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// sweep is one pass: evict lapsed leases this node owns (unless
// self-preservation holds), adopt the instances of dead nodes, start due
// health checks.
func (s *Server) sweep(ctx context.Context, now time.Time) {
	var lapsed []registry.Instance
	leased := 0
	orphans := map[string][]registry.Instance{}
	s.mu.Lock()
	if !s.loaded {
		s.mu.Unlock()
		return
	}
	adoptable := s.nodesOK && now.Sub(s.started) > s.cfg.NodeTTL
	total := len(s.entries)
	for key, e := range s.entries {
		in := &e.inst
		switch {
		case in.Node == s.self:
			if in.TTL > 0 {
				leased++
				if now.Sub(s.lastBeatLocked(key, e)) > in.TTL {
					lapsed = append(lapsed, *in)
				}
			}
			if in.Check != nil {
				s.scheduleCheckLocked(ctx, key, in, now)
			}
		case adoptable && !s.nodes[in.Node]:
			orphans[in.Node] = append(orphans[in.Node], *in)
		}
	}
	for key, st := range s.checks {
		if e, ok := s.entries[key]; !ok || e.inst.Node != s.self || e.inst.Check == nil {
			if !st.running {
				delete(s.checks, key)
			}
		}
	}
	for key, t := range s.beats {
		if _, ok := s.entries[key]; !ok && now.Sub(t) > time.Minute {
			delete(s.beats, key)
		}
	}
	preserve := s.cfg.SelfPreservation >= 0 && leased >= s.cfg.SelfPreservationMin &&
		float64(len(lapsed)) > s.cfg.SelfPreservation*float64(leased)
	changed := preserve != s.preserving
	s.preserving = preserve
	s.mu.Unlock()

	s.m.instances.Set(float64(total))
	if changed {
		if preserve {
			s.m.selfPreservation.Set(1)
			s.log.Warn("self-preservation: most leases lapsed at once; not evicting until heartbeats return (is this node cut off?)",
				"lapsed", len(lapsed), "leased", leased, "threshold", s.cfg.SelfPreservation)
		} else {
			s.m.selfPreservation.Set(0)
			s.log.Info("self-preservation over; evicting lapsed leases again", "lapsed", len(lapsed), "leased", leased)
		}
	}
	if !preserve {
		for i := range lapsed {
			s.evict(ctx, &lapsed[i], "lease")
		}
	}
	for node, ins := range orphans {
		s.adopt(ctx, node, ins, now)
	}
}

// lastBeatLocked is when key last showed life: its last heartbeat, or
// when this node last saw it written (registered, changed, or loaded at
// start), whichever is later.
func (s *Server) lastBeatLocked(key string, e *entry) time.Time {
	if t := s.beats[key]; t.After(e.seen) {
		return t
	}
	return e.seen
}

// evict removes an instance whose lease lapsed or whose node died, unless
// it changed since this node read it.
func (s *Server) evict(ctx context.Context, in *registry.Instance, reason string) {
	key := registrywire.Key(in.Service, in.ID)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	written, err := s.st.DeleteInstance(wctx, key, in.Revision)
	switch code := mortar.ErrorCode(store.APIError(err)); {
	case err == nil:
		s.applyLocal(key, nil, written)
		s.m.evictions.WithLabelValues(reason).Inc()
		s.log.Info("evicted instance", "service", in.Service, "id", in.ID, "reason", reason, "ttl", in.TTL)
	case code == mortar.CodeConflict:
		// Re-registered or changed meanwhile: the next sweep judges it again.
	case ctx.Err() == nil:
		s.log.Warn("evict instance", "service", in.Service, "id", in.ID, "err", err)
	}
}

// adopt claims the instances of a node that is gone: the survivor that
// creates the marker key wins; it takes over the instances that still
// heartbeat (or have no lease) and removes the others.
func (s *Server) adopt(ctx context.Context, node string, ins []registry.Instance, now time.Time) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	marker := "_adopt." + node
	_, err := s.st.Nodes.Create(wctx, marker, []byte(s.self), jetstream.KeyTTL(adoptMarkerTTL))
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Ours from an earlier sweep whose writes did not all succeed (a
		// stream electing a leader): go on. Another survivor's: skip.
		e, gerr := s.st.Nodes.Get(wctx, marker)
		err = gerr
		if gerr == nil && string(e.Value()) != s.self {
			cancel()
			return
		}
	}
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("claim a dead node's instances", "dead_node", node, "err", err)
		}
		return
	}
	adopted, removed := 0, 0
	for i := range ins {
		in := ins[i]
		key := registrywire.Key(in.Service, in.ID)
		s.mu.Lock()
		e, ok := s.entries[key]
		alive := ok && (in.TTL == 0 || now.Sub(s.lastBeatLocked(key, e)) <= in.TTL)
		s.mu.Unlock()
		if !ok {
			continue
		}
		if !alive {
			s.evict(ctx, &in, "node")
			removed++
			continue
		}
		in.Node = s.self
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := s.write(wctx, key, &in, in.Revision)
		cancel()
		if err != nil {
			if mortar.ErrorCode(store.APIError(err)) != mortar.CodeConflict && ctx.Err() == nil {
				s.log.Warn("adopt instance", "service", in.Service, "id", in.ID, "err", err)
			}
			continue
		}
		adopted++
	}
	s.m.adoptions.Add(float64(adopted))
	s.log.Info("took over a dead node's instances", "dead_node", node, "adopted", adopted, "removed", removed)
}
