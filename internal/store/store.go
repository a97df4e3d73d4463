// Package store is the only package that knows how mortar lays its state
// out in JetStream: which buckets and streams exist, their subjects, keys,
// limits and replication. One file per bucket or stream; the servers of
// each part use the typed handles it returns.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures Open.
type Config struct {
	// Replicas is the replication factor of every bucket and stream: 1 on
	// a single node, 3 (or 5) in a cluster. Defaults to 1.
	Replicas int
	// Logger reports waits for the engine. Defaults to slog.Default().
	Logger *slog.Logger
	// PushHistory sizes the push gateway's channel history (push.go).
	PushHistory PushHistory
}

// Store holds the handles of mortar's buckets and streams.
type Store struct {
	js       jetstream.JetStream
	replicas int
	log      *slog.Logger

	Nodes    jetstream.KeyValue // node liveness: one key per node, with a TTL
	Registry jetstream.KeyValue // service registry: one key per instance (registry.go)
	Config   jetstream.Stream   // config center: versions, gray records, namespaces (config.go)
	Push     jetstream.Stream   // push channel history (push.go); nil when history is off
	Auth     jetstream.KeyValue // users, roles, API keys, signing keys (auth.go)
	Sessions jetstream.KeyValue // login sessions, each with a TTL (auth.go)
	Audit    jetstream.Stream   // security audit log (auth.go)

	pushHistory PushHistory

	configCommitOnce sync.Once
	configCommit     *Committer // group commit of config writes
}

// Open creates or updates mortar's buckets and streams and returns their
// handles. While the engine cannot answer (a cluster electing its meta
// leader, peers not yet joined) it waits and retries until ctx ends.
func Open(ctx context.Context, js jetstream.JetStream, cfg *Config) (*Store, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	s := &Store{js: js, replicas: cmp.Or(c.Replicas, 1), log: c.Logger, pushHistory: c.PushHistory}
	if s.pushHistory.Size == 0 {
		s.pushHistory.Size = PushHistorySizeDefault
	}
	s.pushHistory.TTL = cmp.Or(s.pushHistory.TTL, PushHistoryTTLDefault)
	s.pushHistory.Bytes = cmp.Or(s.pushHistory.Bytes, PushHistoryBytesDefault)
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "store")
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"nodes", s.openNodes},
		{"registry", s.openRegistry},
		{"config", s.openConfig},
		{"tasks", s.openTasks},
		{"push", s.openPush},
		{"auth", s.openAuth},
	}
	for _, step := range steps {
		if err := s.retry(ctx, step.name, step.fn); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// JetStream returns the JetStream context the store was opened on.
func (s *Store) JetStream() jetstream.JetStream { return s.js }

// Replicas reports the replication factor of the layout.
func (s *Store) Replicas() int { return s.replicas }

// retry runs fn until it succeeds, fails with an error that waiting
// cannot cure, or ctx ends.
func (s *Store) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	wait := 50 * time.Millisecond
	var lastLog time.Time
	start := time.Now()
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("store: open %s: %w (last error: %w)", what, ctx.Err(), err)
		}
		if !Transient(err) {
			return fmt.Errorf("store: open %s: %w", what, err)
		}
		if time.Since(lastLog) > 5*time.Second {
			s.log.Info("waiting for the engine", "layout", what, "waited", time.Since(start).Round(time.Millisecond), "err", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: open %s: %w (last error: %w)", what, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}

// jsErrCodeClusterNoPeers is nats-server's JSClusterNoPeersErrF.
const jsErrCodeClusterNoPeers jetstream.ErrorCode = 10005

// Transient reports whether err means the engine cannot answer now but
// may soon: no meta leader or stream leader yet, not enough peers while a
// cluster forms, no responders, a timeout, a reconnecting connection.
func Transient(err error) bool {
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok {
		// 503: no leader / temporarily unavailable; 500: "insufficient
		// resources" or "no suitable peers" while a cluster forms; 408.
		// "No suitable peers" also comes as a 400 (err_code 10005) when
		// the meta leader does not yet know every peer of a forming
		// cluster.
		return apiErr.Code == 503 || apiErr.Code == 500 || apiErr.Code == 408 ||
			apiErr.ErrorCode == jsErrCodeClusterNoPeers
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// APIError turns an engine error into what the API answers: transient
// conditions become unavailable (clients retry), a lost compare-and-set
// becomes conflict; anything else is returned as is, for the API to log
// and answer as internal.
func APIError(err error) error {
	if err == nil {
		return nil
	}
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return &mortar.Error{Code: mortar.CodeConflict, Message: "changed since it was read"}
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return &mortar.Error{Code: mortar.CodeConflict, Message: "changed since it was read"}
	}
	if Transient(err) {
		return &mortar.Error{Code: mortar.CodeUnavailable, Message: "the engine is not available now; retry"}
	}
	return err
}
