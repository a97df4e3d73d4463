package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The security layer's state (internal/authserver documents the values):
//
//   - AuthBucket holds users ("u.<name>"), roles ("r.<name>"), API keys
//     ("k.<key id>") and token signing keys ("s.<key id>"), names
//     base64url-encoded. Every node watches the whole bucket and drops what
//     it compiled from it on any change, so a revoked role or key stops
//     working on every node within a watch round trip. Small, rarely
//     written: a few revisions of history for an operator's forensics.
//   - SessionsBucket holds one key per login session, "<user>.<session
//     id>" (the user base64url-encoded, so a user's sessions list by
//     prefix), created with a key TTL, the idle timeout, and renewed with
//     a message TTL while the session is used. An expiry reaches watchers
//     as a purge.
//   - AuditStream records security events on "mortar.audit.<kind>" for
//     AuditMaxAgeDefault, bounded in bytes; the oldest go first.
const (
	AuthBucket     = "mortar_auth"
	SessionsBucket = "mortar_sessions"
	AuditStream    = "MORTAR_AUDIT"
	AuditPrefix    = "mortar.audit."

	AuditMaxAgeDefault   = 90 * 24 * time.Hour
	AuditMaxBytesDefault = 1 << 30
)

func (s *Store) openAuth(ctx context.Context) error {
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      AuthBucket,
		Description: "mortar security: users, roles, API keys, signing keys",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
	})
	if err != nil {
		return err
	}
	sessions, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         SessionsBucket,
		Description:    "mortar security: login sessions, each with its idle TTL",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       s.replicas,
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return err
	}
	audit, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        AuditStream,
		Description: "mortar security audit log",
		Subjects:    []string{AuditPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      AuditMaxAgeDefault,
		MaxBytes:    AuditMaxBytesDefault,
		AllowDirect: true,
	})
	if err != nil {
		return err
	}
	s.Auth, s.Sessions, s.Audit = kv, sessions, audit
	return nil
}

// RenewSession creates a session's key with a TTL (lastRev 0: the key
// must not exist), or renews it by publishing with a message TTL (a plain
// Put would drop the TTL) if its revision is still lastRev, so that a
// renewal racing a revocation or an expiry cannot bring the session back.
// It returns the new revision.
func (s *Store) RenewSession(ctx context.Context, key string, val []byte, ttl time.Duration, lastRev uint64) (uint64, error) {
	ack, err := s.js.Publish(ctx, "$KV."+SessionsBucket+"."+key, val, jetstream.WithMsgTTL(ttl), jetstream.WithExpectLastSequencePerSubject(lastRev))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// LeaderGet reads the last message on subject in stream from the stream's
// leader. A KV bucket's Get is a direct get, which any replica may answer,
// one that lags the leader among them; what must see every acknowledged
// write (a credential just created, a compare-and-set's revision) reads
// here. It returns jetstream.ErrMsgNotFound when there is none.
func (s *Store) LeaderGet(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": subject})
	reply, err := s.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("store: get %s: %w", subject, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, resp.Error
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("store: get %s: empty reply", subject)
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Seq, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("store: get %s: headers: %w", subject, err)
		}
	}
	return m, nil
}

// KVGet reads key of bucket from the stream leader: its value and
// revision, or jetstream.ErrKeyNotFound when it does not exist, was
// deleted or expired.
func (s *Store) KVGet(ctx context.Context, bucket, key string) ([]byte, uint64, error) {
	m, err := s.LeaderGet(ctx, "KV_"+bucket, "$KV."+bucket+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return m.Data, m.Sequence, nil
}
