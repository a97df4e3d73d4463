package registryserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/registry"
	"github.com/nats-io/nats.go/jetstream"
)

// maxAttempts bounds a read-then-compare-and-set loop under contention.
const maxAttempts = 16

// Register adds the registry's operations to mux.
func (s *Server) Register(mux *api.Mux) {
	mux.Handle("registry.register", api.Typed("registry:write:{Instance.Service}", s.register))
	mux.Handle("registry.deregister", api.Typed("registry:write:{Service}", s.deregister))
	mux.Handle("registry.renew", api.Typed("registry:write:{Service}", s.renew))
	mux.Handle("registry.get", api.Typed("registry:read:{Service}", s.get))
	mux.Handle("registry.list", api.Typed("registry:read:{Service}", s.list))
	mux.Handle("registry.services", api.Typed("registry:read", s.services))
}

type registerRequest struct {
	Instance registry.Instance `json:"instance"`
}

func invalid(format string, args ...any) error {
	return mortar.Errorf(mortar.CodeInvalidArgument, format, args...)
}

func checkRef(r *registrywire.Ref) error {
	if err := registrywire.CheckRef(r.Service, r.ID); err != nil {
		return invalid("%v", err)
	}
	return nil
}

func decodeRecord(key string, data []byte) (registry.Instance, error) {
	var in registry.Instance
	if err := json.Unmarshal(data, &in); err != nil {
		return in, err
	}
	if registrywire.Key(in.Service, in.ID) != key {
		return in, fmt.Errorf("record names %s/%s, not its key", in.Service, in.ID)
	}
	return in, nil
}

// register creates or replaces an instance, owned by this node.
func (s *Server) register(ctx context.Context, _ string, req *registerRequest) (any, error) {
	in := req.Instance
	if err := in.Normalize(); err != nil {
		return nil, err
	}
	if in.Node != "" || in.Status != "" || in.Output != "" || !in.Registered.IsZero() || in.Revision != 0 {
		return nil, invalid("instance: node, status, output, registered and revision are set by the node")
	}
	key := registrywire.Key(in.Service, in.ID)
	in.Node = s.self
	in.Status = registry.StatusPassing
	var rev uint64
	err := s.casLoop(ctx, key, func(old *registry.Instance) (*registry.Instance, error) {
		in.Registered = time.Now().UTC()
		in.Status, in.Output = registry.StatusPassing, ""
		if old != nil {
			in.Registered = old.Registered
			// Registering again (a client that reconnected) keeps what the
			// same health check found.
			if old.Check != nil && in.Check != nil && *old.Check == *in.Check {
				in.Status, in.Output = old.Status, old.Output
			}
		}
		return &in, nil
	}, &rev)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.beats[key] = time.Now()
	s.mu.Unlock()
	s.m.registrations.Inc()
	s.log.Debug("registered", "service", in.Service, "id", in.ID, "endpoint", in.Endpoint())
	in.Revision = rev
	return &in, nil
}

// casLoop reads key, asks change for the new record (nil: delete; the
// old one is nil if absent), writes it with compare-and-set, and retries
// on a lost race. rev receives the revision written (0 for nothing). It
// waits until this node's view includes the write.
func (s *Server) casLoop(ctx context.Context, key string, change func(old *registry.Instance) (*registry.Instance, error), rev *uint64) error {
	for range maxAttempts {
		var old *registry.Instance
		var oldRev uint64
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return store.APIError(err)
		default:
			in, derr := decodeRecord(key, e.Value())
			if derr == nil {
				old = &in
			}
			oldRev = e.Revision()
		}
		next, err := change(old)
		if err != nil {
			return err
		}
		*rev, err = s.write(ctx, key, next, oldRev)
		if mortar.ErrorCode(store.APIError(err)) == mortar.CodeConflict {
			continue
		}
		if err != nil {
			return store.APIError(err)
		}
		return nil
	}
	return mortar.Errorf(mortar.CodeConflict, "instance %s changed %d times while being written; retry", key, maxAttempts)
}

// write puts next (or deletes, if nil) under key if its revision is
// still rev (0: absent). It returns the revision written.
func (s *Server) write(ctx context.Context, key string, next *registry.Instance, rev uint64) (uint64, error) {
	if next == nil {
		if rev == 0 {
			return 0, nil
		}
		written, err := s.st.DeleteInstance(ctx, key, rev)
		if err == nil {
			s.applyLocal(key, nil, written)
		}
		return written, err
	}
	rec := *next
	rec.Revision = 0
	data, err := json.Marshal(&rec)
	if err != nil {
		return 0, err
	}
	var written uint64
	if rev == 0 {
		written, err = s.kv.Create(ctx, key, data)
	} else {
		written, err = s.kv.Update(ctx, key, data, rev)
	}
	if err == nil {
		s.applyLocal(key, &rec, written)
	}
	return written, err
}

func (s *Server) deregister(ctx context.Context, _ string, req *registrywire.Ref) (any, error) {
	if err := checkRef(req); err != nil {
		return nil, err
	}
	key := registrywire.Key(req.Service, req.ID)
	deleted := false
	var rev uint64
	err := s.casLoop(ctx, key, func(old *registry.Instance) (*registry.Instance, error) {
		deleted = old != nil
		return nil, nil
	}, &rev)
	if err != nil {
		return nil, err
	}
	if deleted {
		s.m.deregistrations.Inc()
		s.log.Debug("deregistered", "service", req.Service, "id", req.ID)
	}
	return &registrywire.DeregisterResponse{Deleted: deleted}, nil
}

// renew is a heartbeat through the API, for clients without NATS: it
// answers not_found if the instance is gone (the client registers
// again), and tells every node, as a NATS heartbeat does.
func (s *Server) renew(ctx context.Context, _ string, req *registrywire.Ref) (any, error) {
	if err := checkRef(req); err != nil {
		return nil, err
	}
	if err := s.waitLoaded(ctx); err != nil {
		return nil, err
	}
	key := registrywire.Key(req.Service, req.ID)
	s.mu.Lock()
	_, ok := s.entries[key]
	s.mu.Unlock()
	if !ok {
		// Registered a moment ago through another node, whose write this
		// node's view has not brought in yet? Ask the bucket before
		// sending the client to register again.
		_, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, mortar.Errorf(mortar.CodeNotFound, "instance %s/%s is not registered", req.Service, req.ID)
		}
		if err != nil {
			return nil, store.APIError(err)
		}
	}
	if err := s.nc.Publish(registrywire.HeartbeatPrefix+key, nil); err != nil {
		return nil, store.APIError(err)
	}
	return struct{}{}, nil
}

func (s *Server) get(ctx context.Context, _ string, req *registrywire.Ref) (any, error) {
	if err := checkRef(req); err != nil {
		return nil, err
	}
	if err := s.waitLoaded(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.entries[registrywire.Key(req.Service, req.ID)]
	var in registry.Instance
	if ok {
		in = e.inst
	}
	s.mu.Unlock()
	if !ok {
		return nil, mortar.Errorf(mortar.CodeNotFound, "instance %s/%s is not registered", req.Service, req.ID)
	}
	return &in, nil
}

// ListResponse is the answer to registry.list: the instances, sorted by
// service and ID, and the bucket revision they reflect (every write up to
// it, none after).
type ListResponse struct {
	Instances []registry.Instance `json:"instances"`
	Revision  uint64              `json:"revision"`
}

func (s *Server) list(ctx context.Context, _ string, req *registrywire.ListRequest) (any, error) {
	if req.Service != "" {
		if err := registrywire.CheckService(req.Service); err != nil {
			return nil, invalid("%v", err)
		}
	}
	if err := s.waitLoaded(ctx); err != nil {
		return nil, err
	}
	prefix := req.Service + "."
	resp := &ListResponse{Instances: []registry.Instance{}}
	s.mu.Lock()
	for k, e := range s.entries {
		if req.Service == "" || strings.HasPrefix(k, prefix) {
			resp.Instances = append(resp.Instances, e.inst)
		}
	}
	resp.Revision = s.seq
	s.mu.Unlock()
	slices.SortFunc(resp.Instances, func(a, b registry.Instance) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.ID, b.ID))
	})
	return resp, nil
}

func (s *Server) services(ctx context.Context, _ string, _ *struct{}) (any, error) {
	if err := s.waitLoaded(ctx); err != nil {
		return nil, err
	}
	byName := map[string]*registrywire.ServiceInfo{}
	s.mu.Lock()
	for _, e := range s.entries {
		si := byName[e.inst.Service]
		if si == nil {
			si = &registrywire.ServiceInfo{Name: e.inst.Service}
			byName[e.inst.Service] = si
		}
		si.Instances++
		switch e.inst.Status {
		case registry.StatusCritical:
			si.Critical++
		case registry.StatusWarning:
			si.Warning++
		default:
			si.Passing++
		}
	}
	s.mu.Unlock()
	out := make([]registrywire.ServiceInfo, 0, len(byName))
	for _, si := range byName {
		out = append(out, *si)
	}
	slices.SortFunc(out, func(a, b registrywire.ServiceInfo) int { return strings.Compare(a.Name, b.Name) })
	return map[string]any{"services": out}, nil
}
