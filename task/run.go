package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// opTimeout bounds the wait for the engine to confirm a result stored
// asynchronously.
const opTimeout = 10 * time.Second

// etaSlack: a task whose ETA is at most this far ahead runs now.
const etaSlack = 50 * time.Millisecond

// nakMax: a retry due sooner than this is the engine redelivering the
// same message (NakWithDelay); a later one is a new message the engine
// holds until then (a message schedule, whose timing is coarser).
const nakMax = time.Second

// run runs one delivered task to its end: a result, a retry, a dead
// letter, or (when the worker stops hard) its return to the queue.
func (w *Worker) run(ctx context.Context, msg jetstream.Msg) {
	queue, _ := taskwire.ParseQueueSubject(msg.Subject())
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("task message without metadata", "queue", queue, "err", err)
		msg.Term()
		return
	}
	// The task's own writes (result, retry, dead letter) go ahead when
	// the worker stops; each is bounded by the engine client's timeout.
	opCtx := w.opCtx
	m, err := taskwire.Decode(msg.Headers(), msg.Data())
	if err != nil {
		w.dead(opCtx, msg, queue, nil, 0, &TaskError{Type: "malformed", Message: err.Error()})
		return
	}
	if m.ID == "" { // one run of a schedule
		m.ID = m.Schedule + "-" + strconv.FormatUint(meta.Sequence.Stream, 10)
		m.RootID = m.ID
	}
	w.event(EventTaskReceived, m, queue, Event{Retries: m.Retries})
	if m.ExpiresIn > 0 && m.Expires.IsZero() {
		m.Expires = meta.Timestamp.Add(m.ExpiresIn)
	}
	now := time.Now()
	if !m.Expires.IsZero() && now.After(m.Expires) {
		w.event(EventTaskRevoked, m, queue, Event{Exception: "expired"})
		w.end(opCtx, msg, m, &Status{State: Revoked, Retries: m.Retries,
			Error: &TaskError{Type: "expired", Message: "expired at " + m.Expires.UTC().Format(time.RFC3339Nano) + " before it started"}}, true)
		return
	}
	if !m.ETA.IsZero() && m.ETA.Sub(now) > etaSlack {
		// Queued before its ETA (by a producer that did not delay it):
		// hold it in the engine until then.
		if err := publish(opCtx, w.js, queue, m, m.ID+"-eta-"+strconv.FormatUint(meta.Sequence.Stream, 10)); err != nil {
			w.log.Warn("task delay failed", "task", m.Task, "id", m.ID, "err", err)
			msg.NakWithDelay(time.Second)
			return
		}
		msg.Ack()
		return
	}
	if w.revoked.revoked(m.ID) {
		w.event(EventTaskRevoked, m, queue, Event{Exception: "revoked"})
		w.end(opCtx, msg, m, &Status{State: Revoked, Retries: m.Retries, Error: &TaskError{Type: "revoked", Message: "revoked"}}, true)
		return
	}
	h := w.handlers[m.Task] // read-only once started
	if h == nil {
		w.dead(opCtx, msg, queue, m, m.Retries, &TaskError{Type: "unknown_task", Message: fmt.Sprintf("no handler for task %q on worker %s", m.Task, w.cfg.Name)})
		return
	}
	if l, ok := w.rates.limit(m.Task); ok && !w.rateWait(ctx, opCtx, msg, queue, m, meta, l) {
		return
	}
	runs := m.Retries + int(meta.NumDelivered) - 1
	req := &Request{
		ID: m.ID, Task: m.Task, Queue: queue, RootID: m.RootID, ParentID: m.ParentID, Group: m.Group,
		Retries: runs, Args: m.Args, Kwargs: m.Kwargs, Headers: m.Headers, w: w, m: m,
	}
	if w.cfg.TrackStarted && !m.IgnoreResult {
		if err := w.results.put(opCtx, &Status{ID: m.ID, Task: m.Task, State: Started, Retries: runs}); err != nil {
			w.log.Warn("task state not stored", "task", m.Task, "id", m.ID, "state", Started, "err", err)
		}
	}
	if w.cfg.AckEarly {
		msg.Ack()
	}
	w.event(EventTaskStarted, m, queue, Event{Retries: runs})
	began := time.Now()
	val, err := w.call(ctx, msg, h, m, req)
	w.m.forTask(m.Task).duration.Observe(time.Since(began).Seconds())
	if err != nil && ctx.Err() != nil {
		// The worker is stopping hard: the task goes back to its queue.
		if !w.cfg.AckEarly {
			msg.Nak()
		}
		return
	}
	if errors.Is(err, ErrRevoked) {
		w.event(EventTaskRevoked, m, queue, Event{Exception: "revoked while running"})
		w.end(opCtx, msg, m, &Status{State: Revoked, Retries: runs, Error: &TaskError{Type: "revoked", Message: "revoked while running"}}, true)
		return
	}
	if err == nil {
		st := &Status{State: Success, Retries: runs}
		needed := !m.IgnoreResult || len(m.Embed.Callbacks) > 0 || len(m.Embed.Chain) > 0 || m.Embed.Chord != nil
		if !needed {
			// Nobody reads it: skip the encoding.
		} else if st.Result, err = json.Marshal(val); err != nil {
			st = &Status{State: Failure, Retries: runs, Error: &TaskError{Type: "error", Message: "encode result: " + err.Error()}}
		}
		w.event(EventTaskSucceeded, m, queue, Event{Retries: runs, Runtime: time.Since(began).Seconds()})
		w.end(opCtx, msg, m, st, true)
		return
	}
	w.failed(opCtx, msg, queue, m, runs, err)
}

// rateHold is the longest a runner waits for a rate limit's token; a
// longer wait sends the task back to the engine, delayed.
const rateHold = time.Second

// rateWait draws a token of limit l for m. It reports whether m may run
// now; if not, m has been delayed in the engine or returned to its queue.
func (w *Worker) rateWait(ctx, opCtx context.Context, msg jetstream.Msg, queue string, m *taskwire.Message, meta *jetstream.MsgMetadata, l taskwire.RateLimit) bool {
	for {
		wait, err := w.rates.take(opCtx, l)
		if err != nil {
			w.log.Warn("task rate limit unavailable; redelivering", "task", m.Task, "err", err)
			msg.NakWithDelay(time.Second)
			return false
		}
		if wait == 0 {
			return true
		}
		if wait > rateHold {
			next := *m
			next.ETA = time.Now().Add(wait)
			msgID := m.ID + "-rate-" + strconv.FormatUint(meta.Sequence.Stream, 10)
			if err := publish(opCtx, w.js, queue, &next, msgID); err != nil {
				msg.NakWithDelay(wait)
				return false
			}
			msg.Ack()
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			msg.Nak()
			return false
		}
	}
}

// failed retries the task or, when no retry is left or allowed, records
// its failure and dead-letters it.
func (w *Worker) failed(ctx context.Context, msg jetstream.Msg, queue string, m *taskwire.Message, runs int, err error) {
	te := taskError(err)
	retryable := te.Type == "error" && !errors.Is(err, ErrSkipRetry)
	delay := time.Duration(-1)
	if re, ok := errors.AsType[*retryError](err); ok && retryable {
		delay = re.after
	} else if retryable && w.retry.RetryOn != nil {
		retryable = w.retry.RetryOn(err)
	}
	limit, lo, hi := w.retry.MaxRetries, w.retry.BackoffMin, w.retry.BackoffMax
	if m.MaxRetries >= 0 {
		limit = m.MaxRetries
	}
	if m.BackoffMin > 0 || m.BackoffMax > 0 {
		lo, hi = max(m.BackoffMin, time.Millisecond), max(m.BackoffMax, m.BackoffMin)
	}
	if !retryable || runs >= limit {
		if retryable && runs > 0 {
			te.Message = fmt.Sprintf("%s (after %d retries)", te.Message, runs)
		}
		w.dead(ctx, msg, queue, m, runs, te)
		return
	}
	if delay < 0 {
		delay = backoff(runs, lo, hi)
	}
	w.event(EventTaskRetried, m, queue, Event{Retries: runs, Exception: te.Message})
	if delay < nakMax && !w.cfg.AckEarly {
		// A short wait: the engine redelivers this very message, whose
		// delivery count carries the retry.
		w.end(ctx, msg, m, &Status{State: Retry, Retries: runs, Error: te}, false)
		msg.NakWithDelay(delay)
		return
	}
	next := *m
	next.Retries = runs + 1
	next.ETA = time.Now().Add(delay)
	if err := publish(ctx, w.js, queue, &next, m.ID+"-retry-"+strconv.Itoa(next.Retries)); err != nil {
		w.log.Warn("task retry failed; redelivering", "task", m.Task, "id", m.ID, "err", err)
		msg.NakWithDelay(delay)
		return
	}
	w.log.Debug("task retry", "task", m.Task, "id", m.ID, "retries", next.Retries, "in", delay, "err", err)
	w.end(ctx, msg, m, &Status{State: Retry, Retries: runs, Error: te}, true)
}

// dead moves the task to its queue's dead letters, with the reason, and
// records its failure.
func (w *Worker) dead(ctx context.Context, msg jetstream.Msg, queue string, m *taskwire.Message, runs int, te *TaskError) {
	var seq uint64
	if meta, err := msg.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	d := taskwire.DeadLetter(msg.Headers(), msg.Data(), queue, te.Type, te.Message, "dead-"+strconv.FormatUint(seq, 10))
	if _, err := w.js.PublishMsg(ctx, d); err != nil {
		w.log.Warn("task dead letter failed; redelivering", "queue", queue, "err", err)
		msg.NakWithDelay(time.Second)
		return
	}
	w.log.Warn("task dead", "queue", queue, "reason", te.Type, "err", te.Message)
	w.event(EventTaskFailed, m, queue, Event{Retries: runs, Exception: te.Type + ": " + te.Message})
	if m == nil {
		msg.Ack()
		return
	}
	w.end(ctx, msg, m, &Status{State: Failure, Retries: runs, Error: te}, true)
}

// end records st (unless the task ignores results) and, if ack,
// acknowledges the task.
func (w *Worker) end(ctx context.Context, msg jetstream.Msg, m *taskwire.Message, st *Status, ack bool) {
	w.processed.Add(1)
	if c := w.m.forTask(m.Task).runs[st.State]; c != nil {
		c.Inc()
	}
	st.ID, st.Task = m.ID, m.Task
	if !m.IgnoreResult && ack && !w.cfg.AckEarly && !hasFollowUps(m, st) {
		// The common case: store the result asynchronously and let the
		// acker acknowledge the task once the result is stored, so this
		// runner takes its next task at once.
		if f, err := w.results.putAsync(st); err == nil {
			w.acks <- pendingAck{f, msg, m}
			return
		}
	}
	if !m.IgnoreResult {
		if err := w.results.put(ctx, st); err != nil {
			w.log.Warn("task result not stored", "task", m.Task, "id", m.ID, "state", st.State, "err", err)
		}
	}
	if st.State == Success || st.State == Failure {
		if err := w.followUp(ctx, m, st); err != nil {
			// Not acknowledged: the task runs again, and so do its
			// follow-ups, under the same IDs.
			w.log.Warn("task follow-up failed; redelivering", "task", m.Task, "id", m.ID, "err", err)
			if !w.cfg.AckEarly {
				msg.NakWithDelay(time.Second)
			}
			return
		}
	}
	if ack && !w.cfg.AckEarly {
		msg.Ack()
	}
}

// call runs h with the task's time limits, keeping the task's visibility
// extended while it runs.
func (w *Worker) call(ctx context.Context, msg jetstream.Msg, h rawHandler, m *taskwire.Message, req *Request) (any, error) {
	hctx, cancelCause := context.WithCancelCause(context.WithValue(ctx, requestKey{}, req))
	defer cancelCause(nil)
	defer w.revoked.track(&runningTask{info: TaskInfo{ID: req.ID, Task: req.Task, Queue: req.Queue, Started: time.Now()}, cancel: cancelCause, msg: msg})()
	var cancel context.CancelFunc
	if m.SoftLimit > 0 {
		hctx, cancel = context.WithTimeout(hctx, m.SoftLimit)
		defer cancel()
	}
	v, err := w.callLimited(hctx, h, m, req)
	if err != nil && errors.Is(context.Cause(hctx), ErrRevoked) {
		return nil, ErrRevoked
	}
	return v, err
}

// callLimited runs h within the task's hard time limit.
func (w *Worker) callLimited(hctx context.Context, h rawHandler, m *taskwire.Message, req *Request) (any, error) {
	if m.HardLimit <= 0 {
		return safeCall(hctx, h, req)
	}
	type out struct {
		v   any
		err error
	}
	done := make(chan out, 1)
	// Go cannot stop a goroutine: past the hard limit the worker gives
	// the run up and moves on, and the handler, its ctx cancelled, is
	// left to return on its own.
	go func() {
		v, err := safeCall(hctx, h, req)
		done <- out{v, err}
	}()
	t := time.NewTimer(m.HardLimit)
	defer t.Stop()
	select {
	case o := <-done:
		return o.v, o.err
	case <-t.C:
		return nil, &TaskError{Type: "time_limit", Message: fmt.Sprintf("hard time limit (%v) exceeded", m.HardLimit)}
	}
}

// panicError is a handler's panic.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

func safeCall(ctx context.Context, h rawHandler, req *Request) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: string(debug.Stack())}
		}
	}()
	return h(ctx, req)
}

// taskError is how err is recorded.
func taskError(err error) *TaskError {
	if te, ok := errors.AsType[*TaskError](err); ok {
		return &TaskError{Type: te.Type, Message: te.Message, Traceback: te.Traceback}
	}
	if pe, ok := errors.AsType[*panicError](err); ok {
		return &TaskError{Type: "panic", Message: fmt.Sprint(pe.value), Traceback: pe.stack}
	}
	return &TaskError{Type: "error", Message: err.Error()}
}

// keepVisible tells the engine, every third of a queue's visibility
// timeout, that the tasks this worker runs or holds are still in hand,
// until stop is closed: one ticker for the worker, not a timer per task.
func (w *Worker) keepVisible(bufs []*prefetch, stop <-chan struct{}) {
	tick := time.Duration(0)
	for _, v := range w.visibility {
		if p := v / 3; tick == 0 || p < tick {
			tick = p
		}
	}
	if tick <= 0 {
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if !w.cfg.AckEarly {
				for _, m := range w.revoked.stale(now, w.visibility) {
					m.InProgress()
				}
			}
			for _, b := range bufs {
				for _, m := range b.stale(now) {
					m.InProgress()
				}
			}
		}
	}
}

// resultWriter stores results in the results bucket.
type resultWriter struct {
	js     jetstream.JetStream
	worker string
}

func (r resultWriter) put(ctx context.Context, st *Status) error {
	msg, err := r.msg(st)
	if err != nil {
		return err
	}
	_, err = r.js.PublishMsg(ctx, msg)
	return err
}

// putAsync stores st without waiting for the engine's acknowledgement.
func (r resultWriter) putAsync(st *Status) (jetstream.PubAckFuture, error) {
	msg, err := r.msg(st)
	if err != nil {
		return nil, err
	}
	return r.js.PublishMsgAsync(msg, jetstream.WithStallWait(stallWait))
}

func (r resultWriter) msg(st *Status) (*nats.Msg, error) {
	st.Worker = r.worker
	if st.State.Final() {
		st.DateDone = time.Now().UTC()
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return &nats.Msg{Subject: "$KV." + taskwire.ResultBucket + "." + st.ID, Data: b}, nil
}

// hasFollowUps reports whether ending m with st sends anything
// (followUp), which needs the result stored first.
func hasFollowUps(m *taskwire.Message, st *Status) bool {
	e := &m.Embed
	switch st.State {
	case Success:
		return len(e.Callbacks) > 0 || len(e.Chain) > 0 || e.Chord != nil
	case Failure:
		return len(e.Errbacks) > 0 || e.Chord != nil
	}
	return false
}

// pendingAck is a task to acknowledge once its result is stored.
type pendingAck struct {
	result jetstream.PubAckFuture
	msg    jetstream.Msg
	m      *taskwire.Message
}

// acker acknowledges tasks as their results are stored, in order, until
// acks is closed and drained. A task whose result could not be stored is
// not acknowledged: it runs again.
func (w *Worker) acker(acks <-chan pendingAck) {
	for p := range acks {
		t := time.NewTimer(opTimeout)
		select {
		case <-p.result.Ok():
			p.msg.Ack()
		case err := <-p.result.Err():
			w.log.Warn("task result not stored; redelivering", "task", p.m.Task, "id", p.m.ID, "err", err)
			p.msg.NakWithDelay(time.Second)
		case <-t.C:
			w.log.Warn("task result not confirmed; redelivering", "task", p.m.Task, "id", p.m.ID, "after", opTimeout)
			p.msg.NakWithDelay(time.Second)
		}
		t.Stop()
	}
}
