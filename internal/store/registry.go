package store

import (
	"context"

	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// openRegistry creates the registry's bucket: one key per instance
// (registrywire.Key), one revision each, every write republished on core
// NATS for watchers (registrywire.EventPrefix). Liveness is not in the
// bucket: an instance is written on register, on a status or owner change
// and on removal, never per heartbeat.
func (s *Store) openRegistry(ctx context.Context) error {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      registrywire.Bucket,
		Description: "mortar service registry: instances",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
		RePublish: &jetstream.RePublish{
			Source:      "$KV." + registrywire.Bucket + ".>",
			Destination: registrywire.EventPrefix + ">",
		},
	})
	if err != nil {
		return err
	}
	s.Registry = kv
	return nil
}

// DeleteInstance deletes key from the registry bucket if its revision is
// still rev, as KeyValue.Delete does, and returns the revision of the
// delete marker (which KeyValue.Delete does not tell).
func (s *Store) DeleteInstance(ctx context.Context, key string, rev uint64) (uint64, error) {
	msg := &nats.Msg{Subject: "$KV." + registrywire.Bucket + "." + key, Header: nats.Header{"KV-Operation": []string{"DEL"}}}
	ack, err := s.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(rev))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}
