package store

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodesBucket holds one key per live node ("<node name>"), created with a
// key TTL and renewed with a message TTL, so that a node that stops
// renewing disappears and every watcher sees its expiry as a purge.
const NodesBucket = "mortar_nodes"

func (s *Store) openNodes(ctx context.Context) error {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         NodesBucket,
		Description:    "mortar node liveness",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       s.replicas,
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return err
	}
	s.Nodes = kv
	return nil
}

// RenewNode creates the node's key with a TTL, or renews it by publishing
// with a message TTL.
func (s *Store) RenewNode(ctx context.Context, name string, val []byte, ttl time.Duration) error {
	_, err := s.js.Publish(ctx, "$KV."+NodesBucket+"."+name, val, jetstream.WithMsgTTL(ttl))
	return err
}
