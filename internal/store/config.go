package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConfigDuplicateWindow is how long the config stream remembers a
// Nats-Msg-Id, so that a write retried within it is stored once.
const ConfigDuplicateWindow = 2 * time.Minute

// openConfig creates the config center's stream: every version of every
// key (mortar.cfg.v.<ns>.<group>.<base64url key>), every gray record
// (mortar.cfg.g.…) and every namespace record (mortar.cfg.ns.<ns>), with
// unlimited history per subject. The stream leader republishes each
// stored message once on mortar.cfg.ev.…, which watchers subscribe to
// with plain core NATS subscriptions (no engine consumer per watcher).
//
// Direct get is off so that reads go to the stream leader and see every
// acknowledged write (a direct get may be answered by a lagging replica).
func (s *Store) openConfig(ctx context.Context) error {
	st, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        configwire.Stream,
		Description: "mortar config center: versions, gray records, namespaces",
		Subjects: []string{
			configwire.ValuePrefix + "*.*.*",
			configwire.GrayPrefix + "*.*.*",
			configwire.NSPrefix + "*",
		},
		Storage:            jetstream.FileStorage,
		Replicas:           s.replicas,
		Retention:          jetstream.LimitsPolicy,
		MaxMsgsPerSubject:  -1,
		MaxMsgSize:         configwire.MaxValueBytes + 64<<10,
		Duplicates:         ConfigDuplicateWindow,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowAtomicPublish: true,
		RePublish: &jetstream.RePublish{
			Source:      configwire.SubjectPrefix + ">",
			Destination: configwire.EventPrefix + ">",
		},
	})
	if err != nil {
		return err
	}
	s.Config = st
	return nil
}

// ConfigLast returns the last message stored on subj, or nil when there
// is none.
func (s *Store) ConfigLast(ctx context.Context, subj string) (*jetstream.RawStreamMsg, error) {
	m, err := s.Config.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// ConfigGet returns the message at seq.
func (s *Store) ConfigGet(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	return s.Config.GetMsg(ctx, seq)
}

// ConfigSubjects counts the messages of each subject matching filter.
func (s *Store) ConfigSubjects(ctx context.Context, filter string) (map[string]uint64, error) {
	info, err := s.Config.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// ConfigScan calls fn with the sequence and headers of each of the n
// messages on subj, oldest first, without their bodies. It reads through
// a short-lived ephemeral consumer, deleted when it returns.
func (s *Store) ConfigScan(ctx context.Context, subj string, n uint64, fn func(seq uint64, h nats.Header) error) error {
	if n == 0 {
		return nil
	}
	cons, err := s.Config.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     subj,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.Config.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var got uint64
	for got < n {
		batch, err := cons.Fetch(int(min(n-got, 10000)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			return err
		}
		before := got
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			got++
			if err := fn(md.Sequence.Stream, m.Headers()); err != nil {
				for range batch.Messages() {
				}
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if got == before {
			return fmt.Errorf("store: scan %s: no messages delivered", subj)
		}
	}
	return nil
}

// ConfigPublish stores one message.
//
// Concurrent writes share fsyncs through a group-commit Committer.
func (s *Store) ConfigPublish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	s.configCommitOnce.Do(func() { s.configCommit = NewCommitter(s.js, 0, 0) })
	return s.configCommit.Publish(ctx, msg)
}

// ConfigPublishAtomic stores msgs as one atomic batch: all or none. Each
// may carry its own Nats-Expected-Last-Subject-Sequence.
func (s *Store) ConfigPublishAtomic(ctx context.Context, msgs []*nats.Msg) error {
	id := nats.NewInbox()[7:]
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := s.js.Conn().PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set(hdrBatchCommit, "1")
		reply, err := s.js.Conn().RequestMsgWithContext(ctx, m)
		if err != nil {
			return err
		}
		var ack batchAck
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return fmt.Errorf("store: batch ack: %w", err)
		}
		if ack.Error != nil {
			return ack.Error
		}
	}
	return nil
}
