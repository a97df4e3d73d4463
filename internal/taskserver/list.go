package taskserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go/jetstream"
)

func (s *Server) list(ctx context.Context, _ string, r *task.ListRequest) (any, error) {
	if !slices.Contains(task.ListStates, r.State) {
		return nil, invalid("state %q: want one of %s", r.State, strings.Join(task.ListStates, ", "))
	}
	q := cmp.Or(r.Queue, task.QueueDefault)
	if err := checkQueue(q); err != nil {
		return nil, err
	}
	limit := cmp.Or(r.Limit, 100)
	if limit < 0 || limit > maxDeadList {
		return nil, invalid("limit %d: want 1 to %d", r.Limit, maxDeadList)
	}
	out := []task.Listed{}
	switch r.State {
	case "queued":
		for _, band := range taskwire.Bands {
			err := s.eachMsg(ctx, taskwire.BandSubject(q, band), func(m *jetstream.RawStreamMsg) bool {
				out = append(out, listed(m, q, "queued", m.Time))
				return len(out) < limit
			})
			if err != nil || len(out) == limit {
				return out, err
			}
		}
		return out, nil
	case "delayed":
		err := s.eachMsg(ctx, taskwire.DelayPrefix+q+".*", func(m *jetstream.RawStreamMsg) bool {
			at, _ := time.Parse(time.RFC3339Nano, strings.TrimPrefix(m.Header.Get("Nats-Schedule"), "@at "))
			out = append(out, listed(m, q, "delayed", at))
			return len(out) < limit
		})
		return out, err
	case "dead":
		err := s.eachDead(ctx, q, 0, func(m *jetstream.RawStreamMsg) bool {
			l := listed(m, q, "dead", m.Time)
			l.Error = m.Header.Get(taskwire.HdrReason) + ": " + m.Header.Get(taskwire.HdrError)
			out = append(out, l)
			return len(out) < limit
		})
		return out, err
	case "active", "reserved":
		ins, err := s.client.Inspect(ctx)
		if err != nil {
			return nil, engineErr(err)
		}
		for _, in := range ins {
			tasks := in.Active
			if r.State == "reserved" {
				tasks = in.Reserved
			}
			for _, t := range tasks {
				if len(out) < limit && (r.Queue == "" || t.Queue == q) {
					out = append(out, task.Listed{ID: t.ID, Task: t.Task, Queue: t.Queue, State: r.State, Time: t.Started, Worker: in.Worker})
				}
			}
		}
		return out, nil
	}
	return s.listStored(ctx, task.State(strings.ToUpper(r.State)), limit)
}

func listed(m *jetstream.RawStreamMsg, q, state string, at time.Time) task.Listed {
	return task.Listed{ID: m.Header.Get(taskwire.HdrID), Task: m.Header.Get(taskwire.HdrTask), Queue: q, State: state, Time: at.UTC()}
}

// eachMsg calls fn with the task stream's messages on subject (which may
// hold a wildcard), oldest first, while it returns true.
func (s *Server) eachMsg(ctx context.Context, subject string, fn func(*jetstream.RawStreamMsg) bool) error {
	st, err := s.js.Stream(ctx, taskwire.Stream)
	if err != nil {
		return engineErr(err)
	}
	for seq := uint64(1); ; {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
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

// listStored reads the results bucket for up to limit tasks in state.
func (s *Server) listStored(ctx context.Context, state task.State, limit int) ([]task.Listed, error) {
	kv, err := s.js.KeyValue(ctx, taskwire.ResultBucket)
	if err != nil {
		return nil, engineErr(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := kv.WatchAll(wctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, engineErr(err)
	}
	defer w.Stop()
	out := []task.Listed{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil || len(out) >= limit {
				return out, nil
			}
			var st task.Status
			if json.Unmarshal(e.Value(), &st) != nil || st.State != state {
				continue
			}
			l := task.Listed{ID: st.ID, Task: st.Task, State: strings.ToLower(string(st.State)), Time: cmp.Or(st.DateDone, e.Created().UTC()), Worker: st.Worker}
			if st.Error != nil {
				l.Error = st.Error.Type + ": " + st.Error.Message
			}
			out = append(out, l)
		case <-ctx.Done():
			return nil, engineErr(ctx.Err())
		}
	}
}
