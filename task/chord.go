package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go/jetstream"
)

// startChord records a chord's join state before its header is sent.
func startChord(ctx context.Context, js jetstream.JetStream, gid string, ids []string, body taskwire.Signature) error {
	kv, err := js.KeyValue(ctx, taskwire.ChordBucket)
	if err != nil {
		return err
	}
	b, err := json.Marshal(taskwire.ChordState{IDs: ids, Done: make([]bool, len(ids)), Body: body})
	if err != nil {
		return err
	}
	_, err = kv.Create(ctx, gid, b)
	return err
}

// followUp sends what follows a task that ended: after a success its
// callbacks, the next task of its chain and, for the last task of a
// chord's header, the chord's body; after a failure for good its
// errbacks, and the failure of its chord. The IDs of what it sends do not
// change if it runs again for the same task (a redelivery), so the
// engine's de-duplication keeps each send single.
func (w *Worker) followUp(ctx context.Context, m *taskwire.Message, st *Status) error {
	var errs []error
	switch st.State {
	case Success:
		for i, cb := range m.Embed.Callbacks {
			errs = append(errs, w.sendNext(ctx, cb, m, st.Result, nil, m.ID+"-link-"+strconv.Itoa(i)))
		}
		if n := len(m.Embed.Chain); n > 0 {
			errs = append(errs, w.sendNext(ctx, m.Embed.Chain[n-1], m, st.Result, m.Embed.Chain[:n-1], m.ID+"-next"))
		}
		if m.Embed.Chord != nil && m.Group != "" {
			errs = append(errs, w.chordDone(ctx, m))
		}
	case Failure:
		for i, eb := range m.Embed.Errbacks {
			idArg, _ := json.Marshal(m.ID)
			errs = append(errs, w.sendNext(ctx, eb, m, idArg, nil, m.ID+"-errback-"+strconv.Itoa(i)))
		}
		if m.Embed.Chord != nil && m.Group != "" {
			errs = append(errs, w.chordFailed(ctx, m, st))
		}
	}
	return errors.Join(errs...)
}

// sendNext sends s after parent, with defID as its ID unless it has one.
func (w *Worker) sendNext(ctx context.Context, s taskwire.Signature, parent *taskwire.Message, result json.RawMessage, chain []taskwire.Signature, defID string) error {
	if id, _ := s.Options["task_id"].(string); id == "" {
		opts := make(map[string]any, len(s.Options)+1)
		for k, v := range s.Options {
			opts[k] = v
		}
		opts["task_id"] = defID
		s.Options = opts
	}
	if err := sendSig(ctx, w.js, w.cfg.Name, s, parent, result, chain); err != nil {
		return fmt.Errorf("send %s after %s: %w", s.Task, parent.ID, err)
	}
	return nil
}

// updateChord applies change to the chord state of group gid with
// compare-and-set, retrying on conflict, and returns the state written
// (nil if the chord is unknown: expired, or never started).
func (w *Worker) updateChord(ctx context.Context, gid string, change func(*taskwire.ChordState) bool) (*taskwire.ChordState, error) {
	kv, err := w.js.KeyValue(ctx, taskwire.ChordBucket)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		e, err := kv.Get(ctx, gid)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			w.log.Warn("task chord state missing", "group", gid)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var cs taskwire.ChordState
		if err := json.Unmarshal(e.Value(), &cs); err != nil || len(cs.Done) != len(cs.IDs) {
			return nil, fmt.Errorf("chord %s: malformed state", gid)
		}
		if !change(&cs) {
			return &cs, nil
		}
		b, _ := json.Marshal(&cs)
		if _, err = kv.Update(ctx, gid, b, e.Revision()); err == nil {
			return &cs, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLast(err) {
			return nil, err
		}
		// Lost a race with another header task: read again.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(min(attempt, 20)) * time.Millisecond):
		}
	}
}

// chordDone counts m, a header task of a chord, as done, and sends the
// body once every header task is.
func (w *Worker) chordDone(ctx context.Context, m *taskwire.Message) error {
	cs, err := w.updateChord(ctx, m.Group, func(cs *taskwire.ChordState) bool {
		for i, id := range cs.IDs {
			if id == m.ID && !cs.Done[i] {
				cs.Done[i] = true
				return true
			}
		}
		return false
	})
	if err != nil || cs == nil || cs.Fired || cs.Failed != "" {
		return err
	}
	for _, d := range cs.Done {
		if !d {
			return nil
		}
	}
	results, err := w.headerResults(ctx, cs.IDs)
	if err != nil {
		return err
	}
	// Sent before it is marked: a crash in between sends it again, under
	// the same ID, which the engine drops.
	if err := w.sendNext(ctx, cs.Body, m, results, nil, m.Group+"-body"); err != nil {
		return err
	}
	_, err = w.updateChord(ctx, m.Group, func(cs *taskwire.ChordState) bool {
		if cs.Fired {
			return false
		}
		cs.Fired = true
		return true
	})
	return err
}

// headerResults reads the results of a chord's header tasks, in order, as
// one JSON array.
func (w *Worker) headerResults(ctx context.Context, ids []string) (json.RawMessage, error) {
	kv, err := w.js.KeyValue(ctx, taskwire.ResultBucket)
	if err != nil {
		return nil, err
	}
	out := []byte{'['}
	for i, id := range ids {
		e, err := kv.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("result of header task %s: %w", id, err)
		}
		st, err := decodeStatus(id, e.Value())
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, cmpOr(st.Result, json.RawMessage("null"))...)
	}
	return append(out, ']'), nil
}

func cmpOr(v, def json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return def
	}
	return v
}

// chordFailed marks m's chord failed: its body never runs, and is
// recorded as FAILURE; the body's errbacks are sent.
func (w *Worker) chordFailed(ctx context.Context, m *taskwire.Message, st *Status) error {
	why := fmt.Sprintf("header task %s failed: %s", m.ID, st.Error.Message)
	first := false
	cs, err := w.updateChord(ctx, m.Group, func(cs *taskwire.ChordState) bool {
		if cs.Fired || cs.Failed != "" {
			return false
		}
		cs.Failed, first = why, true
		return true
	})
	if err != nil || cs == nil || !first {
		return err
	}
	body, _ := sigMessage(cs.Body, w.cfg.Name, m, nil, nil)
	if body.ID == "" {
		body.ID = m.Group + "-body"
	}
	bst := &Status{ID: body.ID, Task: body.Task, State: Failure, Error: &TaskError{Type: "chord_error", Message: why}}
	if err := w.results.put(ctx, bst); err != nil {
		return err
	}
	return w.followUp(ctx, body, bst)
}
