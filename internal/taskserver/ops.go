package taskserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Register adds the task queue's operations to mux.
func (s *Server) Register(mux *api.Mux) {
	mux.Handle("task.send", api.Typed("task:submit:{Task}", s.send))
	mux.Handle("task.get", api.Typed("", s.get))
	mux.Handle("task.revoke", api.Typed("task:admin", s.revoke))
	mux.Handle("task.queues", api.Typed("task:read", s.queues))
	mux.Handle("task.queue.stats", api.Typed("task:read:{Queue}", s.queueStats))
	mux.Handle("task.queue.pause", api.Typed("task:admin:{Queue}", s.pause))
	mux.Handle("task.queue.resume", api.Typed("task:admin:{Queue}", s.resume))
	mux.Handle("task.queue.purge", api.Typed("task:admin:{Queue}", s.purge))
	mux.Handle("task.dead.list", api.Typed("task:read:{Queue}", s.deadList))
	mux.Handle("task.dead.retry", api.Typed("task:admin:{Queue}", s.deadRetry))
	mux.Handle("task.dead.discard", api.Typed("task:admin:{Queue}", s.deadDiscard))
	mux.Handle("task.workers", api.Typed("task:read", s.workersOp))
	mux.Handle("task.list", api.Typed("task:read:{Queue|default}", s.list))
	mux.Handle("task.ratelimit.set", api.Typed("task:admin", s.setRateLimit))
	mux.Handle("task.ratelimit.list", api.Typed("task:read", s.rateLimits))
	mux.Handle("task.inspect", api.Typed("task:read", s.inspect))
	mux.Handle("task.schedule.add", api.Typed("task:admin:{Queue|default}", s.addSchedule))
	mux.Handle("task.schedule.list", api.Typed("task:read", s.listSchedules))
	mux.Handle("task.schedule.remove", api.Typed("task:admin", s.removeSchedule))
}

// sendRequest is task.send: a task from the HTTP API or another language.
type sendRequest struct {
	Task          string            `json:"task"`
	Args          json.RawMessage   `json:"args,omitempty"`
	Kwargs        json.RawMessage   `json:"kwargs,omitempty"`
	Queue         string            `json:"queue,omitempty"`
	ID            string            `json:"id,omitempty"`
	Countdown     string            `json:"countdown,omitempty"` // a Go duration
	ETA           time.Time         `json:"eta,omitzero"`
	Expires       time.Time         `json:"expires,omitzero"`
	MaxRetries    *int              `json:"max_retries,omitempty"`
	TimeLimit     string            `json:"time_limit,omitempty"`
	SoftTimeLimit string            `json:"soft_time_limit,omitempty"`
	IgnoreResult  bool              `json:"ignore_result,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	UniqueFor     string            `json:"unique_for,omitempty"` // a Go duration
	UniqueKey     string            `json:"unique_key,omitempty"`
	Priority      string            `json:"priority,omitempty"` // high, normal or low
}

type sendResponse struct {
	ID string `json:"id"`
}

func (s *Server) send(ctx context.Context, reqID string, r *sendRequest) (any, error) {
	opts := &task.SendOpts{Queue: r.Queue, ID: r.ID, ETA: r.ETA, Expires: r.Expires, MaxRetries: r.MaxRetries,
		IgnoreResult: r.IgnoreResult, Headers: r.Headers, UniqueKey: r.UniqueKey}
	switch r.Priority {
	case "high":
		opts.Priority = task.PriorityHigh
	case "low":
		opts.Priority = task.PriorityLow
	case "", "normal":
	default:
		return nil, invalid("priority %q: want high, normal or low", r.Priority)
	}
	if opts.ID == "" && taskwire.CheckID(reqID) == nil {
		opts.ID = reqID // a retried request sends the task once
	}
	for _, d := range []struct {
		name string
		s    string
		into *time.Duration
	}{{"countdown", r.Countdown, &opts.Countdown}, {"time_limit", r.TimeLimit, &opts.TimeLimit}, {"soft_time_limit", r.SoftTimeLimit, &opts.SoftTimeLimit}, {"unique_for", r.UniqueFor, &opts.UniqueFor}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil || v < 0 {
			return nil, invalid("%s %q: want a duration such as 30s", d.name, d.s)
		}
		*d.into = v
	}
	res, err := s.client.Send(ctx, r.Task, r.Args, r.Kwargs, opts)
	if dup, ok := errors.AsType[*task.DuplicateError](err); ok {
		return nil, mortar.Errorf(mortar.CodeAlreadyExists, "duplicate of task %s", dup.ID)
	}
	if err != nil {
		return nil, engineErr(err)
	}
	return sendResponse{res.ID}, nil
}

type idRequest struct {
	ID        string `json:"id"`
	Terminate bool   `json:"terminate,omitempty"`
}

func (s *Server) get(ctx context.Context, _ string, r *idRequest) (any, error) {
	if err := taskwire.CheckID(r.ID); err != nil {
		return nil, invalid("%v", err)
	}
	st, err := s.client.Result(r.ID).Status(ctx)
	if err != nil {
		return nil, engineErr(err)
	}
	// A result is shown to subjects permitted its task's results; a task
	// with no stored state yet has nothing to show.
	if st.Task != "" {
		if err := api.Check(ctx, "task:result:"+auth.EscapePart(st.Task)); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (s *Server) revoke(ctx context.Context, _ string, r *idRequest) (any, error) {
	return nil, engineErr(s.client.Revoke(ctx, r.ID, &task.RevokeOpts{Terminate: r.Terminate}))
}

func (s *Server) setRateLimit(ctx context.Context, _ string, r *task.RateLimit) (any, error) {
	return nil, engineErr(s.client.SetRateLimit(ctx, r.Task, r.Rate))
}

func (s *Server) rateLimits(ctx context.Context, _ string, _ *struct{}) (any, error) {
	ls, err := s.client.RateLimits(ctx)
	return ls, engineErr(err)
}

func (s *Server) workersOp(ctx context.Context, _ string, _ *struct{}) (any, error) {
	return s.listWorkers(time.Now()), nil
}

func (s *Server) inspect(ctx context.Context, _ string, _ *struct{}) (any, error) {
	ins, err := s.client.Inspect(ctx)
	return ins, engineErr(err)
}

// engineErr passes mortar errors on and turns engine conditions into
// API errors.
func engineErr(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*mortar.Error](err); ok {
		return err
	}
	return store.APIError(err)
}

// queueConsumer returns queue q's consumer, or not_found.
func (s *Server) queueConsumer(ctx context.Context, q string) (jetstream.Consumer, error) {
	if err := checkQueue(q); err != nil {
		return nil, err
	}
	c, err := s.js.Consumer(ctx, taskwire.Stream, taskwire.ConsumerName(q))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, mortar.Errorf(mortar.CodeNotFound, "queue %s: no worker has bound it", q)
	}
	return c, engineErr(err)
}

func (s *Server) queues(ctx context.Context, _ string, _ *struct{}) (any, error) {
	st, err := s.js.Stream(ctx, taskwire.Stream)
	if err != nil {
		return nil, engineErr(err)
	}
	names := st.ConsumerNames(ctx)
	var qs []string
	for n := range names.Name() {
		if q, ok := strings.CutPrefix(n, "q_"); ok {
			qs = append(qs, q)
		}
	}
	if err := names.Err(); err != nil {
		return nil, engineErr(err)
	}
	out := []task.QueueStats{}
	for _, q := range qs {
		qs, err := s.stats(ctx, q)
		if err != nil {
			return nil, err
		}
		out = append(out, *qs)
	}
	return out, nil
}

func (s *Server) queueStats(ctx context.Context, _ string, r *task.QueueRef) (any, error) {
	return s.stats(ctx, r.Queue)
}

// stats reads a queue's counters from the engine: its consumer's, a
// counting consumer's on its delayed tasks, and the dead letters' subject
// count.
func (s *Server) stats(ctx context.Context, q string) (*task.QueueStats, error) {
	c, err := s.queueConsumer(ctx, q)
	if err != nil {
		return nil, err
	}
	info := c.CachedInfo()
	out := &task.QueueStats{
		Queue: q, Waiting: info.NumPending, Taken: info.NumAckPending, Redelivered: info.NumRedelivered,
		Pulling: info.NumWaiting, Paused: info.Paused, Visibility: info.Config.AckWait.String(),
	}
	if info.Paused {
		out.PausedUntil = info.Config.PauseUntil.UTC()
	}
	for _, band := range []string{taskwire.BandHigh, taskwire.BandLow} {
		bc, err := s.js.Consumer(ctx, taskwire.Stream, taskwire.BandConsumerName(q, band))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return nil, engineErr(err)
		}
		bi := bc.CachedInfo()
		out.Waiting += bi.NumPending
		out.Taken += bi.NumAckPending
		out.Redelivered += bi.NumRedelivered
		out.Pulling += bi.NumWaiting
	}
	delayed, err := s.js.CreateConsumer(ctx, taskwire.Stream, jetstream.ConsumerConfig{
		Durable:       "d_" + q,
		Description:   "counts queue " + q + "'s delayed tasks; never pulled",
		FilterSubject: taskwire.DelayPrefix + q + ".*",
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return nil, engineErr(err)
	}
	out.Delayed = delayed.CachedInfo().NumPending
	dead, err := s.js.Stream(ctx, taskwire.DeadStream)
	if err != nil {
		return nil, engineErr(err)
	}
	di, err := dead.Info(ctx, jetstream.WithSubjectFilter(taskwire.DeadSubject(q)))
	if err != nil {
		return nil, engineErr(err)
	}
	out.Dead = di.State.Subjects[taskwire.DeadSubject(q)]
	return out, nil
}

// pauseForever stands for "until resumed".
var pauseForever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

func (s *Server) pause(ctx context.Context, _ string, r *task.PauseRequest) (any, error) {
	if _, err := s.queueConsumer(ctx, r.Queue); err != nil {
		return nil, err
	}
	until := r.Until
	if until.IsZero() {
		until = pauseForever
	}
	if !until.After(time.Now()) {
		return nil, invalid("until %v: in the past", r.Until)
	}
	return nil, s.eachBand(ctx, r.Queue, func(name string) error {
		_, err := s.js.PauseConsumer(ctx, taskwire.Stream, name, until)
		return err
	})
}

func (s *Server) resume(ctx context.Context, _ string, r *task.QueueRef) (any, error) {
	if _, err := s.queueConsumer(ctx, r.Queue); err != nil {
		return nil, err
	}
	return nil, s.eachBand(ctx, r.Queue, func(name string) error {
		_, err := s.js.ResumeConsumer(ctx, taskwire.Stream, name)
		return err
	})
}

// eachBand calls fn with the consumer of each band of queue q that
// exists.
func (s *Server) eachBand(ctx context.Context, q string, fn func(consumer string) error) error {
	for _, band := range taskwire.Bands {
		err := fn(taskwire.BandConsumerName(q, band))
		if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return engineErr(err)
		}
	}
	return nil
}

func (s *Server) purge(ctx context.Context, _ string, r *task.PurgeRequest) (any, error) {
	if err := checkQueue(r.Queue); err != nil {
		return nil, err
	}
	n, err := s.purgeSubject(ctx, taskwire.QueueSubject(r.Queue))
	if err != nil {
		return nil, err
	}
	nb, err := s.purgeSubject(ctx, taskwire.QueuePrefix+r.Queue+".*") // the other bands
	if err != nil {
		return nil, err
	}
	n += nb
	if r.Delayed {
		d, err := s.purgeSubject(ctx, taskwire.DelayPrefix+r.Queue+".*")
		if err != nil {
			return nil, err
		}
		n += d
	}
	return task.Purged{Purged: n}, nil
}

// purgeSubject purges subject from the task stream and returns how many
// messages went (the engine tells; nats.go's Purge does not pass it on).
func (s *Server) purgeSubject(ctx context.Context, subject string) (uint64, error) {
	req, _ := json.Marshal(map[string]string{"filter": subject})
	msg, err := s.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+taskwire.Stream, req)
	if err != nil {
		return 0, engineErr(err)
	}
	var resp struct {
		Success bool                `json:"success"`
		Purged  uint64              `json:"purged"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return 0, fmt.Errorf("purge %s: %w", subject, err)
	}
	if resp.Error != nil {
		return 0, engineErr(resp.Error)
	}
	return resp.Purged, nil
}

// maxDeadList bounds one page of dead letters.
const maxDeadList = 1000

func (s *Server) deadList(ctx context.Context, _ string, r *task.DeadListRequest) (any, error) {
	if err := checkQueue(r.Queue); err != nil {
		return nil, err
	}
	limit := r.Limit
	if limit <= 0 {
		limit = 100
	}
	if limit > maxDeadList {
		return nil, invalid("limit %d: at most %d", r.Limit, maxDeadList)
	}
	out := []task.DeadLetter{}
	err := s.eachDead(ctx, r.Queue, r.After, func(m *jetstream.RawStreamMsg) bool {
		out = append(out, deadLetter(r.Queue, m))
		return len(out) < limit
	})
	return out, err
}

func deadLetter(q string, m *jetstream.RawStreamMsg) task.DeadLetter {
	d := task.DeadLetter{Seq: m.Sequence, Queue: q, Time: m.Time.UTC(),
		ID: m.Header.Get(taskwire.HdrID), Task: m.Header.Get(taskwire.HdrTask),
		Reason: m.Header.Get(taskwire.HdrReason), Error: m.Header.Get(taskwire.HdrError)}
	if msg, err := taskwire.Decode(m.Header, m.Data); err == nil {
		d.Retries, d.Args, d.Kwargs = msg.Retries, msg.Args, msg.Kwargs
	}
	return d
}

// eachDead calls fn with queue q's dead letters after seq after, oldest
// first, while it returns true.
func (s *Server) eachDead(ctx context.Context, q string, after uint64, fn func(*jetstream.RawStreamMsg) bool) error {
	dead, err := s.js.Stream(ctx, taskwire.DeadStream)
	if err != nil {
		return engineErr(err)
	}
	subj := taskwire.DeadSubject(q)
	for seq := after + 1; ; {
		m, err := dead.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return engineErr(err)
		}
		if !fn(m) {
			return nil
		}
		seq = m.Sequence + 1
	}
}

// deadTargets returns the sequences a dead-letter request names: its
// own, or every dead letter of the queue.
func (s *Server) deadTargets(ctx context.Context, r *task.DeadRequest) ([]uint64, error) {
	if err := checkQueue(r.Queue); err != nil {
		return nil, err
	}
	if len(r.Seqs) > 0 {
		return r.Seqs, nil
	}
	var seqs []uint64
	err := s.eachDead(ctx, r.Queue, 0, func(m *jetstream.RawStreamMsg) bool {
		seqs = append(seqs, m.Sequence)
		return true
	})
	return seqs, err
}

// eachTarget calls fn with each dead letter a request names, and counts
// the calls that succeeded.
func (s *Server) eachTarget(ctx context.Context, r *task.DeadRequest, fn func(dead jetstream.Stream, m *jetstream.RawStreamMsg) error) (task.Count, error) {
	seqs, err := s.deadTargets(ctx, r)
	if err != nil {
		return task.Count{}, err
	}
	dead, err := s.js.Stream(ctx, taskwire.DeadStream)
	if err != nil {
		return task.Count{}, engineErr(err)
	}
	n := 0
	for _, seq := range seqs {
		m, err := dead.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && m.Subject != taskwire.DeadSubject(r.Queue) {
			return task.Count{Count: n}, mortar.Errorf(mortar.CodeNotFound, "dead letter %d of queue %s: not found", seq, r.Queue)
		}
		if err == nil {
			err = fn(dead, m)
		}
		if err != nil {
			return task.Count{Count: n}, engineErr(err)
		}
		n++
	}
	return task.Count{Count: n}, nil
}

func (s *Server) deadRetry(ctx context.Context, _ string, r *task.DeadRequest) (any, error) {
	results, err := s.js.KeyValue(ctx, taskwire.ResultBucket)
	if err != nil {
		return nil, engineErr(err)
	}
	return s.eachTarget(ctx, r, func(dead jetstream.Stream, m *jetstream.RawStreamMsg) error {
		again := &nats.Msg{Subject: taskwire.BandSubject(r.Queue, m.Header.Get(taskwire.HdrPriority)), Header: nats.Header{}, Data: m.Data}
		for k, v := range m.Header {
			if !strings.HasPrefix(k, "Nats-") && k != taskwire.HdrReason && k != taskwire.HdrError && k != taskwire.HdrRetries {
				again.Header[k] = v
			}
		}
		again.Header.Set(jetstream.MsgIDHeader, "undead-"+strconv.FormatUint(m.Sequence, 10))
		// The task is pending again: its FAILURE goes first, so that a
		// waiter waits for the new outcome.
		if id := m.Header.Get(taskwire.HdrID); id != "" {
			if err := results.Delete(ctx, id); err != nil {
				return err
			}
		}
		if _, err := s.js.PublishMsg(ctx, again); err != nil {
			return err
		}
		if err := dead.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return err
		}
		return nil
	})
}

func (s *Server) deadDiscard(ctx context.Context, _ string, r *task.DeadRequest) (any, error) {
	return s.eachTarget(ctx, r, func(dead jetstream.Stream, m *jetstream.RawStreamMsg) error {
		return dead.DeleteMsg(ctx, m.Sequence)
	})
}
