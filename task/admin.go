package task

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// QueueStats are a queue's counters, read from the engine.
type QueueStats struct {
	Queue       string    `json:"queue"`
	Waiting     uint64    `json:"waiting"`     // queued, not yet taken by a worker
	Taken       int       `json:"taken"`       // taken by a worker and not yet acknowledged: running or prefetched
	Delayed     uint64    `json:"delayed"`     // held by the engine until an ETA or a retry's backoff
	Dead        uint64    `json:"dead"`        // dead letters
	Redelivered int       `json:"redelivered"` // taken again after a worker died or returned them
	Pulling     int       `json:"pulling"`     // worker fetch requests waiting for tasks
	Paused      bool      `json:"paused"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Visibility  string    `json:"visibility"` // a Go duration
}

// QueueRef names a queue in API requests.
type QueueRef struct {
	Queue string `json:"queue"`
}

// Queues returns the counters of every queue that a worker has bound.
func (c *Client) Queues(ctx context.Context) ([]QueueStats, error) {
	var out []QueueStats
	if err := c.conn.Do(ctx, "task.queues", struct{}{}, &out); err != nil {
		return nil, fmt.Errorf("task: queues: %w", err)
	}
	return out, nil
}

// QueueStats returns a queue's counters.
func (c *Client) QueueStats(ctx context.Context, queue string) (*QueueStats, error) {
	var out QueueStats
	if err := c.conn.Do(ctx, "task.queue.stats", QueueRef{queue}, &out); err != nil {
		return nil, fmt.Errorf("task: queue %s: %w", queue, err)
	}
	return &out, nil
}

// PauseRequest pauses a queue.
type PauseRequest struct {
	Queue string    `json:"queue"`
	Until time.Time `json:"until,omitzero"` // zero: until resumed
}

// PauseQueue stops every worker from taking tasks from queue until it is
// resumed (until zero) or until then. Running tasks go on; sends go on.
func (c *Client) PauseQueue(ctx context.Context, queue string, until time.Time) error {
	if err := c.conn.Do(ctx, "task.queue.pause", PauseRequest{queue, until}, nil); err != nil {
		return fmt.Errorf("task: pause %s: %w", queue, err)
	}
	return nil
}

// ResumeQueue undoes PauseQueue.
func (c *Client) ResumeQueue(ctx context.Context, queue string) error {
	if err := c.conn.Do(ctx, "task.queue.resume", QueueRef{queue}, nil); err != nil {
		return fmt.Errorf("task: resume %s: %w", queue, err)
	}
	return nil
}

// PurgeRequest empties a queue.
type PurgeRequest struct {
	Queue   string `json:"queue"`
	Delayed bool   `json:"delayed,omitempty"` // also the delayed tasks
}

// Purged says how many tasks a purge removed.
type Purged struct {
	Purged uint64 `json:"purged"`
}

// PurgeQueue removes the queue's waiting tasks (and, with delayed, its
// delayed ones) and returns how many. Tasks already taken by a worker
// run to their end.
func (c *Client) PurgeQueue(ctx context.Context, queue string, delayed bool) (uint64, error) {
	var out Purged
	if err := c.conn.Do(ctx, "task.queue.purge", PurgeRequest{queue, delayed}, &out); err != nil {
		return 0, fmt.Errorf("task: purge %s: %w", queue, err)
	}
	return out.Purged, nil
}

// DeadLetter is a task that failed for good, as kept in its queue's
// dead letters.
type DeadLetter struct {
	Seq     uint64          `json:"seq"` // its position in the dead letters: pass it to RetryDead and DiscardDead
	Queue   string          `json:"queue"`
	ID      string          `json:"id"`
	Task    string          `json:"task"`
	Reason  string          `json:"reason"` // a TaskError type
	Error   string          `json:"error"`
	Retries int             `json:"retries"`
	Time    time.Time       `json:"time"` // when it died
	Args    json.RawMessage `json:"args,omitempty"`
	Kwargs  json.RawMessage `json:"kwargs,omitempty"`
}

// DeadListRequest lists dead letters.
type DeadListRequest struct {
	Queue string `json:"queue"`
	After uint64 `json:"after,omitempty"` // only those with a greater Seq
	Limit int    `json:"limit,omitempty"` // defaults to 100, at most 1000
}

// DeadLetters lists up to limit (0: 100) of queue's dead letters after
// Seq after, oldest first.
func (c *Client) DeadLetters(ctx context.Context, queue string, after uint64, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	if err := c.conn.Do(ctx, "task.dead.list", DeadListRequest{queue, after, limit}, &out); err != nil {
		return nil, fmt.Errorf("task: dead letters of %s: %w", queue, err)
	}
	return out, nil
}

// DeadRequest names dead letters to retry or discard.
type DeadRequest struct {
	Queue string   `json:"queue"`
	Seqs  []uint64 `json:"seqs,omitempty"` // none: all of the queue's
}

// Count says how many dead letters were retried or discarded.
type Count struct {
	Count int `json:"count"`
}

// RetryDead sends dead letters (all of queue's if seqs is empty) back to
// their queue, with their retries reset, and removes them from the dead
// letters. It returns how many.
func (c *Client) RetryDead(ctx context.Context, queue string, seqs ...uint64) (int, error) {
	var out Count
	if err := c.conn.Do(ctx, "task.dead.retry", DeadRequest{queue, seqs}, &out); err != nil {
		return out.Count, fmt.Errorf("task: retry dead letters of %s: %w", queue, err)
	}
	return out.Count, nil
}

// DiscardDead removes dead letters (all of queue's if seqs is empty) and
// returns how many.
func (c *Client) DiscardDead(ctx context.Context, queue string, seqs ...uint64) (int, error) {
	var out Count
	if err := c.conn.Do(ctx, "task.dead.discard", DeadRequest{queue, seqs}, &out); err != nil {
		return out.Count, fmt.Errorf("task: discard dead letters of %s: %w", queue, err)
	}
	return out.Count, nil
}

// WorkerInfo is a worker as the node knows it from its heartbeats.
type WorkerInfo struct {
	Event              // its last worker event
	LastSeen time.Time `json:"last_seen"`
	Online   bool      `json:"online"` // heartbeats arrive; false once it said goodbye or went quiet
}

// Workers lists the workers heard from in the last few minutes.
func (c *Client) Workers(ctx context.Context) ([]WorkerInfo, error) {
	var out []WorkerInfo
	if err := c.conn.Do(ctx, "task.workers", struct{}{}, &out); err != nil {
		return nil, fmt.Errorf("task: workers: %w", err)
	}
	return out, nil
}

// ListStates are the states List takes: where a task is in the engine
// (queued, delayed), in a worker (active, reserved), in the dead letters
// (dead), or its stored state (success, failure, retry, started,
// revoked).
var ListStates = []string{"queued", "delayed", "active", "reserved", "dead", "success", "failure", "retry", "started", "revoked"}

// ListRequest lists tasks in a state.
type ListRequest struct {
	State string `json:"state"`
	Queue string `json:"queue,omitempty"` // defaults to QueueDefault; ignored for stored states
	Limit int    `json:"limit,omitempty"` // defaults to 100, at most 1000
}

// Listed is one task in List's answer.
type Listed struct {
	ID     string    `json:"id"`
	Task   string    `json:"task"`
	Queue  string    `json:"queue,omitempty"`
	State  string    `json:"state"`
	Time   time.Time `json:"time,omitzero"` // queued, delayed until, started, died or finished
	Worker string    `json:"worker,omitempty"`
	Error  string    `json:"error,omitempty"`
}

// List lists up to limit (0: 100) tasks in state (one of ListStates).
// The engine states read the queue's messages in order; the stored
// states (success, failure, retry, started, revoked) read the results
// bucket until limit tasks are found, so their cost grows with the
// results kept (24 hours by default).
func (c *Client) List(ctx context.Context, state, queue string, limit int) ([]Listed, error) {
	var out []Listed
	if err := c.conn.Do(ctx, "task.list", ListRequest{state, queue, limit}, &out); err != nil {
		return nil, fmt.Errorf("task: list %s: %w", state, err)
	}
	return out, nil
}
