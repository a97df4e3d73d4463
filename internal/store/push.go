package store

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The push gateway's channel history: one stream whose subjects are
// "mortar.push.h.<channel>" (the channel name base64url-encoded). Every
// stored message is republished to "mortar.push.to.chan.<channel>" with
// its sequence, the message's offset, so every node delivers it in the
// stream's order. Memory storage: history is a recent window for clients
// that reconnect, not a record, and must not cost an fsync per push.
const (
	PushStream        = "MORTAR_PUSH"
	PushHistoryPrefix = "mortar.push.h."
	PushChannelPrefix = "mortar.push.to.chan."
)

// Defaults of the push history.
const (
	PushHistorySizeDefault  = 100
	PushHistoryTTLDefault   = 10 * time.Minute
	PushHistoryBytesDefault = 256 << 20
)

// PushHistory configures the push stream. A Size below zero turns
// history off (the stream is not created); zero means the default.
type PushHistory struct {
	Size  int           // messages kept per channel
	TTL   time.Duration // how long a message is kept
	Bytes int64         // the whole history's bound; the oldest go first
}

func (s *Store) openPush(ctx context.Context) error {
	h := s.pushHistory
	if h.Size < 0 {
		return nil
	}
	st, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              PushStream,
		Description:       "mortar push channel history",
		Subjects:          []string{PushHistoryPrefix + ">"},
		Storage:           jetstream.MemoryStorage,
		Replicas:          s.replicas,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: int64(h.Size),
		MaxAge:            h.TTL,
		MaxBytes:          h.Bytes,
		AllowDirect:       true,
		RePublish: &jetstream.RePublish{
			Source:      PushHistoryPrefix + ">",
			Destination: PushChannelPrefix + ">",
		},
	})
	if err != nil {
		return err
	}
	s.Push = st
	return nil
}

// ErrNoHistory is returned by push history reads when history is off.
var ErrNoHistory = errors.New("store: push history is off")
