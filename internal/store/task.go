package store

import (
	"context"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go/jetstream"
)

// TaskDuplicateWindow is how long the task stream remembers a
// Nats-Msg-Id (the task ID), so that a send retried within it is queued
// once.
const TaskDuplicateWindow = 2 * time.Minute

// ResultTTLDefault is how long a result is kept (Celery's result_expires).
const ResultTTLDefault = 24 * time.Hour

// openTasks creates the task queue's layout (taskwire): the work-queue
// stream of queued and delayed tasks, the dead-letter stream, and the
// results bucket, which republishes every result for waiters.
func (s *Store) openTasks(ctx context.Context) error {
	if _, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:               taskwire.Stream,
		Description:        "mortar task queues: queued and delayed tasks, schedules",
		Subjects:           []string{taskwire.QueuePrefix + "*", taskwire.QueuePrefix + "*.*", taskwire.DelayPrefix + "*.*", taskwire.SchedulePrefix + "*"},
		Retention:          jetstream.WorkQueuePolicy,
		Storage:            jetstream.FileStorage,
		Replicas:           s.replicas,
		MaxMsgSize:         taskwire.MaxMessageBytes + 64<<10,
		Duplicates:         TaskDuplicateWindow,
		AllowMsgSchedules:  true,
		AllowRollup:        true,
		AllowAtomicPublish: true,
	}); err != nil {
		return err
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        taskwire.DeadStream,
		Description: "mortar task queues: dead letters, kept until retried or discarded",
		Subjects:    []string{taskwire.DeadPrefix + "*"},
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
		MaxMsgSize:  taskwire.MaxMessageBytes + 64<<10,
	}); err != nil {
		return err
	}
	if _, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      taskwire.RevokedBucket,
		Description: "mortar revoked task IDs",
		History:     1,
		TTL:         taskwire.RevokedTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
	}); err != nil {
		return err
	}
	if _, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         taskwire.UniqueBucket,
		Description:    "mortar unique task keys, each for its window",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       s.replicas,
		LimitMarkerTTL: time.Second,
	}); err != nil {
		return err
	}
	if _, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      taskwire.RateBucket,
		Description: "mortar task rate limits and their token buckets",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
	}); err != nil {
		return err
	}
	if _, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      taskwire.ChordBucket,
		Description: "mortar chords: which header tasks are done",
		History:     1,
		TTL:         taskwire.ChordTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
	}); err != nil {
		return err
	}
	_, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      taskwire.ResultBucket,
		Description: "mortar task results, by task ID",
		History:     1,
		TTL:         ResultTTLDefault,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
		RePublish: &jetstream.RePublish{
			Source:      "$KV." + taskwire.ResultBucket + ".>",
			Destination: taskwire.ResultPrefix + ">",
		},
	})
	return err
}
