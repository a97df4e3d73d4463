package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// State is where a task is, with Celery's names.
type State string

// The states of a task. Only SUCCESS, FAILURE and REVOKED are final.
const (
	Pending  State = "PENDING" // unknown, or not yet run: no result stored
	Received State = "RECEIVED"
	Started  State = "STARTED"
	Retry    State = "RETRY"
	Success  State = "SUCCESS"
	Failure  State = "FAILURE"
	Revoked  State = "REVOKED"
)

// Final reports whether s is SUCCESS, FAILURE or REVOKED.
func (s State) Final() bool { return s == Success || s == Failure || s == Revoked }

// Status is a task's stored result, with Celery's field names.
type Status struct {
	ID       string          `json:"task_id"`
	Task     string          `json:"task"`
	State    State           `json:"status"`
	Result   json.RawMessage `json:"result,omitempty"`   // the handler's result, as JSON
	Progress json.RawMessage `json:"progress,omitempty"` // STARTED: the last progress the handler reported
	Error    *TaskError      `json:"error,omitempty"`    // FAILURE and REVOKED: why
	Retries  int             `json:"retries"`
	Worker   string          `json:"worker,omitempty"`
	DateDone time.Time       `json:"date_done,omitzero"`
}

// TaskError is why a task failed or was revoked.
type TaskError struct {
	Type      string `json:"type"` // "error", "panic", "time_limit", "expired", "revoked", "unknown_task", "malformed"
	Message   string `json:"message"`
	Traceback string `json:"traceback,omitempty"` // a panic's stack
}

func (e *TaskError) Error() string { return "task: " + e.Type + ": " + e.Message }

// ErrRevoked is returned by Get for a task that was revoked or expired.
var ErrRevoked = errors.New("task: revoked")

// AsyncResult is a handle on a task's result.
type AsyncResult struct {
	ID string
	c  *Client
}

// Result returns a handle on the result of task id.
func (c *Client) Result(id string) *AsyncResult { return &AsyncResult{ID: id, c: c} }

func (c *Client) resultBucket(ctx context.Context) (jetstream.KeyValue, error) {
	return c.bucket(ctx, &c.results, taskwire.ResultBucket)
}

// Status returns the task's stored status; PENDING when none is stored.
func (r *AsyncResult) Status(ctx context.Context) (*Status, error) {
	kv, err := r.c.resultBucket(ctx)
	if err != nil {
		return nil, fmt.Errorf("task: result %s: %w", r.ID, err)
	}
	e, err := kv.Get(ctx, r.ID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &Status{ID: r.ID, State: Pending}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("task: result %s: %w", r.ID, err)
	}
	return decodeStatus(r.ID, e.Value())
}

func decodeStatus(id string, b []byte) (*Status, error) {
	var s Status
	if err := json.Unmarshal(b, &s); err != nil || s.ID != id {
		return nil, fmt.Errorf("task: result %s: malformed record", id)
	}
	return &s, nil
}

// waitRecheck is how often a waiter reads a result again in case a
// notice was lost (sent while its connection was down).
const waitRecheck = 10 * time.Second

// Wait waits for the task to reach a final state and returns its status.
// It subscribes to the result's notice before reading it, so it does not
// poll and never misses a result stored in between; it reads the result
// again every 10 s only in case a notice was lost while its connection
// was down.
func (r *AsyncResult) Wait(ctx context.Context) (*Status, error) {
	return r.WaitFor(ctx, func(s *Status) bool { return s.State.Final() })
}

// WaitFor waits until the task's status satisfies done (checked on the
// current status and on every change, such as a progress report) and
// returns that status.
func (r *AsyncResult) WaitFor(ctx context.Context, done func(*Status) bool) (*Status, error) {
	if err := taskwire.CheckID(r.ID); err != nil {
		return nil, fmt.Errorf("task: result: %w", mortar.Errorf(mortar.CodeInvalidArgument, "%v", err))
	}
	ch := make(chan *nats.Msg, 256)
	sub, err := r.c.conn.NATS().ChanSubscribe(taskwire.ResultPrefix+r.ID, ch)
	if err != nil {
		return nil, fmt.Errorf("task: result %s: %w", r.ID, err)
	}
	defer sub.Unsubscribe()
	s, err := r.Status(ctx)
	if err != nil {
		return nil, err
	}
	// A notice published while the connection was down is lost: read the
	// status again now and then, as a safety net.
	recheck := time.NewTicker(waitRecheck)
	defer recheck.Stop()
	for !done(s) {
		select {
		case <-recheck.C:
			if s, err = r.Status(ctx); err != nil {
				return nil, err
			}
		case m := <-ch:
			if m.Header.Get("KV-Operation") != "" {
				continue // deleted (a dead letter sent back) or expired: still waiting
			}
			if s, err = decodeStatus(r.ID, m.Data); err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("task: result %s: %w", r.ID, ctx.Err())
		}
	}
	return s, nil
}

// Get waits for the task to finish and returns its result as raw JSON:
// the error of a failed task is a *TaskError; a revoked task's wraps
// ErrRevoked.
func (r *AsyncResult) Get(ctx context.Context) (json.RawMessage, error) {
	s, err := r.Wait(ctx)
	if err != nil {
		return nil, err
	}
	return s.Result, s.err()
}

func (s *Status) err() error {
	switch s.State {
	case Success:
		return nil
	case Revoked:
		if s.Error == nil {
			return ErrRevoked
		}
		return fmt.Errorf("%w: %s", ErrRevoked, s.Error.Message)
	}
	if s.Error == nil {
		return &TaskError{Type: "error", Message: "failed"}
	}
	return s.Error
}

// Result is an AsyncResult whose value decodes into R.
type Result[R any] struct {
	*AsyncResult
}

// Get waits for the task to finish and decodes its result.
func (r *Result[R]) Get(ctx context.Context) (R, error) {
	var v R
	raw, err := r.AsyncResult.Get(ctx)
	if err != nil {
		return v, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return v, fmt.Errorf("task: result %s: decode: %w", r.ID, err)
		}
	}
	return v, nil
}
