// Package taskserver is the task queue's control-plane half on a node: it
// serves the task API operations (send, result, revoke, queue counters,
// pause, purge, dead letters, workers, inspection) for the CLI, the admin
// HTTP API and other languages, and tracks workers from their heartbeats.
// Producers and workers do not go through it: they publish to and consume
// from the engine directly (package task).
package taskserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// workerMemory is how long a worker stays listed after its last event.
const workerMemory = 5 * time.Minute

// Config configures a Server.
type Config struct {
	Store *store.Store
	// Conn is the node's own connection, and Client a task client on it.
	Conn   *nats.Conn
	Client *task.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics is where the server registers its metrics; nil means
	// nowhere.
	Metrics prometheus.Registerer
}

// Server is the task queue's control-plane half on one node.
type Server struct {
	js     jetstream.JetStream
	nc     *nats.Conn
	client *task.Client
	log    *slog.Logger

	mu      sync.Mutex
	workers map[string]*task.WorkerInfo
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Conn == nil || cfg.Client == nil {
		return nil, errors.New("taskserver: store, connection and client are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		js: cfg.Store.JetStream(), nc: cfg.Conn, client: cfg.Client,
		log: log.With("component", "task"), workers: map[string]*task.WorkerInfo{},
	}
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(newCollector(s)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run tracks workers from their events until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	var subs []*nats.Subscription
	defer func() {
		for _, sub := range subs {
			sub.Unsubscribe()
		}
	}()
	for _, typ := range []string{task.EventWorkerOnline, task.EventWorkerHeartbeat, task.EventWorkerOffline} {
		sub, err := s.nc.Subscribe(taskwire.EventPrefix+typ, s.onWorkerEvent)
		if err != nil {
			return err
		}
		subs = append(subs, sub)
	}
	sub, err := s.nc.Subscribe(taskwire.MaxDeliveriesPrefix+taskwire.Stream+".*", s.onMaxDeliveries)
	if err != nil {
		return err
	}
	subs = append(subs, sub)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.forget(time.Now())
		case <-ctx.Done():
			return nil
		}
	}
}

func (s *Server) onWorkerEvent(m *nats.Msg) {
	var e task.Event
	if json.Unmarshal(m.Data, &e) != nil || e.Worker == "" {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.workers[e.Worker] = &task.WorkerInfo{Event: e, LastSeen: now, Online: e.Type != task.EventWorkerOffline}
}

func (s *Server) forget(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, w := range s.workers {
		if now.Sub(w.LastSeen) > workerMemory {
			delete(s.workers, name)
		}
	}
}

// listWorkers returns the known workers, by name; a worker whose
// heartbeats stopped for three intervals is offline.
func (s *Server) listWorkers(now time.Time) []task.WorkerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]task.WorkerInfo, 0, len(s.workers))
	for _, w := range s.workers {
		wi := *w
		if now.Sub(wi.LastSeen) > 3*task.HeartbeatInterval {
			wi.Online = false
		}
		out = append(out, wi)
	}
	slices.SortFunc(out, func(a, b task.WorkerInfo) int { return strings.Compare(a.Worker, b.Worker) })
	return out
}

func invalid(format string, args ...any) error {
	return mortar.Errorf(mortar.CodeInvalidArgument, format, args...)
}

func checkQueue(q string) error {
	if err := taskwire.CheckQueue(q); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// onMaxDeliveries moves a task that the engine delivered too often
// without an acknowledgement to its queue's dead letters. Every node may
// hear the advisory; the dead letter's ID makes the move single.
func (s *Server) onMaxDeliveries(m *nats.Msg) {
	var adv struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	q, ok := "", false
	if json.Unmarshal(m.Data, &adv) == nil {
		q, ok = strings.CutPrefix(adv.Consumer, "q_")
	}
	if !ok || adv.Stream != taskwire.Stream {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, taskwire.Stream)
	if err != nil {
		s.log.Warn("task max deliveries: stream", "err", err)
		return
	}
	msg, err := st.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return // acknowledged or purged meanwhile
	}
	why := fmt.Sprintf("delivered %d times without an acknowledgement: its worker died running it each time, or retried it at once too often", adv.Deliveries)
	d := taskwire.DeadLetter(msg.Header, msg.Data, q, "max_deliveries", why, "maxdeliver-"+strconv.FormatUint(adv.StreamSeq, 10))
	if _, err := s.js.PublishMsg(ctx, d); err != nil {
		s.log.Warn("task max deliveries: dead letter", "queue", q, "seq", adv.StreamSeq, "err", err)
		return
	}
	if id := msg.Header.Get(taskwire.HdrID); id != "" && msg.Header.Get(taskwire.HdrIgnoreResult) == "" {
		if err := s.client.MarkFailed(ctx, id, msg.Header.Get(taskwire.HdrTask), "max_deliveries", why); err != nil {
			s.log.Warn("task max deliveries: result", "id", id, "err", err)
		}
	}
	if err := st.DeleteMsg(ctx, adv.StreamSeq); err != nil {
		s.log.Warn("task max deliveries: delete", "queue", q, "seq", adv.StreamSeq, "err", err)
	}
	s.log.Warn("task dead", "queue", q, "reason", "max_deliveries", "task", msg.Header.Get(taskwire.HdrTask), "id", msg.Header.Get(taskwire.HdrID))
}
