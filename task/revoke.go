package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go/jetstream"
)

// RevokeOpts are the options of Revoke. A nil *RevokeOpts means all
// defaults.
type RevokeOpts struct {
	// Terminate also stops the task if it is running: its handler's ctx
	// is cancelled, with ErrRevoked as the cause. Defaults to false: a
	// running task runs to its end.
	Terminate bool
}

// Revoke revokes task id, as Celery's revoke: a queued task never starts
// (every worker learns of the revocation; it is remembered for 24 hours),
// a delayed one is removed from the engine at once, and the task is
// recorded as REVOKED unless it has already finished.
func (c *Client) Revoke(ctx context.Context, id string, opts *RevokeOpts) error {
	if err := taskwire.CheckID(id); err != nil {
		return fmt.Errorf("task: revoke: %w", mortar.Errorf(mortar.CodeInvalidArgument, "%v", err))
	}
	var o RevokeOpts
	if opts != nil {
		o = *opts
	}
	if err := revoke(ctx, c.js, id, o.Terminate); err != nil {
		return fmt.Errorf("task: revoke %s: %w", id, err)
	}
	return nil
}

func revoke(ctx context.Context, js jetstream.JetStream, id string, terminate bool) error {
	kv, err := js.KeyValue(ctx, taskwire.RevokedBucket)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(taskwire.Revocation{Terminate: terminate, At: time.Now().UTC()})
	if _, err := kv.Put(ctx, id, b); err != nil {
		return err
	}
	s, err := js.Stream(ctx, taskwire.Stream)
	if err != nil {
		return err
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(taskwire.DelayPrefix+"*."+id)); err != nil {
		return err
	}
	return markRevoked(ctx, js, id)
}

// markRevoked records id as REVOKED unless it has a final state.
func markRevoked(ctx context.Context, js jetstream.JetStream, id string) error {
	return markFinal(ctx, js, &Status{ID: id, State: Revoked, Error: &TaskError{Type: "revoked", Message: "revoked"}})
}

// MarkFailed records task id (of the task name) as FAILURE with an error
// of type typ, unless it has a final state: for a node that dead-letters
// a task no worker could finish.
func (c *Client) MarkFailed(ctx context.Context, id, name, typ, why string) error {
	return markFinal(ctx, c.js, &Status{ID: id, Task: name, State: Failure, Error: &TaskError{Type: typ, Message: why}})
}

// markFinal stores st unless the task has a final state already.
func markFinal(ctx context.Context, js jetstream.JetStream, st *Status) error {
	id := st.ID
	kv, err := js.KeyValue(ctx, taskwire.ResultBucket)
	if err != nil {
		return err
	}
	st.DateDone = time.Now().UTC()
	rec, _ := json.Marshal(st)
	for range 3 {
		e, err := kv.Get(ctx, id)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = kv.Create(ctx, id, rec)
		case err != nil:
			return err
		default:
			if st, derr := decodeStatus(id, e.Value()); derr == nil && st.State.Final() {
				return nil
			}
			_, err = kv.Update(ctx, id, rec, e.Revision())
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLast(err) {
			return err
		}
	}
	return errors.New("result changed three times while marking it final")
}

func isWrongLast(err error) bool {
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	return ok && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// revocations mirrors the revoked bucket in a worker and stops the
// running tasks a revocation terminates.
type revocations struct {
	mu      sync.Mutex
	ids     map[string]time.Time // revoked IDs, when
	running map[string]*runningTask
}

// runningTask is a task a worker runs.
type runningTask struct {
	info   TaskInfo
	cancel context.CancelCauseFunc
	msg    jetstream.Msg
	beat   time.Time // when the engine was last told it runs (or it started)
}

func newRevocations() *revocations {
	return &revocations{ids: map[string]time.Time{}, running: map[string]*runningTask{}}
}

// mirror reads the current entries of bucket whose keys match keys (a
// KV filter; deletes included), calling fn with each, then follows
// changes in a goroutine owned by wg until stop is called.
func mirror(ctx context.Context, js jetstream.JetStream, bucket, keys string, wg *sync.WaitGroup, fn func(jetstream.KeyValueEntry)) (stop func(), err error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	watcher, err := kv.Watch(wctx, keys)
	if err != nil {
		cancel()
		return nil, err
	}
	stop = func() {
		watcher.Stop()
		cancel()
	}
	for loaded := false; !loaded; {
		select {
		case e := <-watcher.Updates():
			if e == nil {
				loaded = true
			} else {
				fn(e)
			}
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
	}
	wg.Go(func() {
		for e := range watcher.Updates() {
			if e != nil {
				fn(e)
			}
		}
	})
	return stop, nil
}

func (r *revocations) add(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		return
	}
	var rv taskwire.Revocation
	json.Unmarshal(e.Value(), &rv) // a value that does not decode still revokes
	at := e.Created()
	r.mu.Lock()
	r.ids[e.Key()] = at
	if len(r.ids)%1024 == 0 {
		for id, t := range r.ids {
			if time.Since(t) > taskwire.RevokedTTL {
				delete(r.ids, id)
			}
		}
	}
	rt := r.running[e.Key()]
	r.mu.Unlock()
	if rv.Terminate && rt != nil {
		rt.cancel(ErrRevoked)
	}
}

func (r *revocations) revoked(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	return ok
}

// track notes that t runs, for inspection and so that a revocation with
// Terminate can cancel it, until untrack is called.
func (r *revocations) track(t *runningTask) (untrack func()) {
	t.beat = t.info.Started
	r.mu.Lock()
	r.running[t.info.ID] = t
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.running, t.info.ID)
		r.mu.Unlock()
	}
}

// stale returns the messages of running tasks last reported a third of
// their queue's visibility ago or longer, marking them reported now.
func (r *revocations) stale(now time.Time, visibility map[string]time.Duration) []jetstream.Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []jetstream.Msg
	for _, t := range r.running {
		if now.Sub(t.beat) >= visibility[t.info.Queue]/3 {
			t.beat = now
			out = append(out, t.msg)
		}
	}
	return out
}

// active lists the running tasks.
func (r *revocations) active() []TaskInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TaskInfo, 0, len(r.running))
	for _, t := range r.running {
		out = append(out, t.info)
	}
	return out
}
