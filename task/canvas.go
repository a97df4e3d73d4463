package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sig is a task call written down to be sent later, as Celery's
// signature: the parts of chains, groups and chords, and the callbacks of
// Link and LinkError.
//
// When a Sig follows another task (in a chain, or as a callback), the
// task's result is put before the Sig's own positional arguments, unless
// the Sig is immutable. A typed handler then gets the previous result as
// its argument when the Sig has no arguments of its own (Task.Next).
type Sig struct {
	Task         string
	Args, Kwargs json.RawMessage // as Send's
	Immutable    bool
	Queue        string // defaults to the client's queue
	ID           string // defaults to a new random UUID
	links        []Sig
	errLinks     []Sig
}

// S is a signature of t with args; the previous task's result is put
// before them (see Sig).
func (t Task[A, R]) S(args A) Sig {
	pos, kw, err := encodeArgs(args)
	if err != nil {
		panic("task: signature of " + t.Name + ": " + err.Error())
	}
	return Sig{Task: t.Name, Args: pos, Kwargs: kw}
}

// SI is an immutable signature of t with args: it ignores the previous
// task's result.
func (t Task[A, R]) SI(args A) Sig {
	s := t.S(args)
	s.Immutable = true
	return s
}

// Next is a signature of t without arguments of its own: it takes the
// previous task's result as its argument, so A must be able to hold it.
func (t Task[A, R]) Next() Sig { return Sig{Task: t.Name} }

// Link returns s with cb to send when s succeeds (with s's result first
// in cb's arguments).
func (s Sig) Link(cb Sig) Sig {
	s.links = append(append([]Sig(nil), s.links...), cb)
	return s
}

// LinkError returns s with eb to send when s fails for good; eb gets the
// failed task's ID as its first argument.
func (s Sig) LinkError(eb Sig) Sig {
	s.errLinks = append(append([]Sig(nil), s.errLinks...), eb)
	return s
}

// wire lays s out as Celery's signature, assigning its ID.
func (s *Sig) wire(defQueue string) (taskwire.Signature, error) {
	if s.ID == "" {
		s.ID = newID()
	}
	if s.Queue == "" {
		s.Queue = defQueue
	}
	opts := map[string]any{"task_id": s.ID, "queue": s.Queue}
	for _, l := range []struct {
		key  string
		sigs []Sig
	}{{"link", s.links}, {"link_error", s.errLinks}} {
		if len(l.sigs) == 0 {
			continue
		}
		ws := make([]taskwire.Signature, len(l.sigs))
		for i := range l.sigs {
			var err error
			if ws[i], err = l.sigs[i].wire(defQueue); err != nil {
				return taskwire.Signature{}, err
			}
		}
		opts[l.key] = ws
	}
	w := taskwire.Signature{Task: s.Task, Args: cmpOr(s.Args, json.RawMessage("[]")), Kwargs: cmpOr(s.Kwargs, json.RawMessage("{}")), Options: opts, Immutable: s.Immutable}
	m := &taskwire.Message{Task: s.Task, ID: s.ID, Args: s.Args, Kwargs: s.Kwargs}
	if err := check(s.Queue, m); err != nil {
		return w, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
	}
	return w, nil
}

// Apply sends s (with its links).
func (c *Client) Apply(ctx context.Context, s Sig) (*AsyncResult, error) {
	w, err := s.wire(c.queue)
	if err != nil {
		return nil, fmt.Errorf("task: send %s: %w", s.Task, err)
	}
	if err := sendSig(ctx, c.js, c.origin, w, nil, nil, nil); err != nil {
		return nil, fmt.Errorf("task: send %s: %w", s.Task, err)
	}
	return &AsyncResult{ID: s.ID, c: c}, nil
}

// Chain sends sigs as a chain: each runs after the one before succeeds,
// with its result (Celery's chain). It returns the last task's result; a
// failure stops the chain, and the last task then never runs.
func (c *Client) Chain(ctx context.Context, sigs ...Sig) (*AsyncResult, error) {
	if len(sigs) == 0 {
		return nil, fmt.Errorf("task: chain: %w", mortar.Errorf(mortar.CodeInvalidArgument, "no tasks"))
	}
	sigs = slices.Clone(sigs)
	ws := make([]taskwire.Signature, len(sigs))
	for i := range sigs {
		var err error
		if ws[i], err = sigs[i].wire(c.queue); err != nil {
			return nil, fmt.Errorf("task: chain: task %d: %w", i, err)
		}
	}
	// Celery keeps the rest of a chain last first.
	rest := make([]taskwire.Signature, 0, len(ws)-1)
	for i := len(ws) - 1; i > 0; i-- {
		rest = append(rest, ws[i])
	}
	if err := sendSig(ctx, c.js, c.origin, ws[0], nil, nil, rest); err != nil {
		return nil, fmt.Errorf("task: chain: %w", err)
	}
	return &AsyncResult{ID: sigs[len(sigs)-1].ID, c: c}, nil
}

// GroupResult is the result of a group: one per task, in order.
type GroupResult struct {
	ID      string
	Results []*AsyncResult
}

// Get waits for every task of the group and returns their results in
// order; the error is the first task's error, in order.
func (g *GroupResult) Get(ctx context.Context) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(g.Results))
	for i, r := range g.Results {
		v, err := r.Get(ctx)
		if err != nil {
			return out, fmt.Errorf("task: group %s: task %d: %w", g.ID, i, err)
		}
		out[i] = v
	}
	return out, nil
}

// MaxGroup bounds a group: the engine stores a group as one atomic batch.
const MaxGroup = 1000

// Group sends sigs at once, as one atomic write: all of them are queued
// or none (Celery's group).
func (c *Client) Group(ctx context.Context, sigs ...Sig) (*GroupResult, error) {
	g, _, err := c.group(ctx, sigs, nil)
	return g, err
}

// Chord sends header as a group and body once every task of it has
// succeeded, with their results as one list, in order (Celery's chord).
// The count of finished tasks is kept in the engine's replicated store,
// so the body is sent once whichever workers run the header. If a header
// task fails for good, the body never runs and is recorded as FAILURE.
// It returns the body's result.
func (c *Client) Chord(ctx context.Context, header []Sig, body Sig) (*AsyncResult, error) {
	bw, err := body.wire(c.queue)
	if err != nil {
		return nil, fmt.Errorf("task: chord body: %w", err)
	}
	if _, _, err := c.group(ctx, header, &bw); err != nil {
		return nil, err
	}
	return &AsyncResult{ID: body.ID, c: c}, nil
}

// group sends sigs as one atomic batch, as the header of chord if any.
func (c *Client) group(ctx context.Context, sigs []Sig, chord *taskwire.Signature) (*GroupResult, []taskwire.Signature, error) {
	if len(sigs) == 0 || len(sigs) > MaxGroup {
		return nil, nil, fmt.Errorf("task: group: %w", mortar.Errorf(mortar.CodeInvalidArgument, "%d tasks: want 1 to %d", len(sigs), MaxGroup))
	}
	sigs = slices.Clone(sigs)
	gid := newID()
	g := &GroupResult{ID: gid}
	ws := make([]taskwire.Signature, len(sigs))
	ids := make([]string, len(sigs))
	for i := range sigs {
		var err error
		if ws[i], err = sigs[i].wire(c.queue); err != nil {
			return nil, nil, fmt.Errorf("task: group: task %d: %w", i, err)
		}
		ids[i] = sigs[i].ID
		g.Results = append(g.Results, &AsyncResult{ID: sigs[i].ID, c: c})
	}
	if chord != nil {
		if err := startChord(ctx, c.js, gid, ids, *chord); err != nil {
			return nil, nil, fmt.Errorf("task: chord: %w", err)
		}
	}
	msgs := make([]*nats.Msg, len(ws))
	for i, w := range ws {
		m, queue := sigMessage(w, c.origin, nil, nil, nil)
		m.Group = gid
		if chord != nil {
			m.Embed.Chord = chord
			m.IgnoreResult = false // the body reads the results
		}
		msg, err := layout(queue, m, m.ID)
		if err != nil {
			return nil, nil, fmt.Errorf("task: group: task %d: %w", i, err)
		}
		msgs[i] = msg
	}
	if err := publishAtomic(ctx, c.js.Conn(), msgs); err != nil {
		return nil, nil, fmt.Errorf("task: group: %w", err)
	}
	return g, ws, nil
}

// publishAtomic stores msgs as one atomic batch: all or none.
func publishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) error {
	id := newID()
	for i, m := range msgs {
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", fmt.Sprint(i+1))
		if i < len(msgs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		reply, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return err
		}
		var ack struct {
			Error *struct {
				Code        int    `json:"code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return fmt.Errorf("batch ack: %w", err)
		}
		if ack.Error != nil {
			return fmt.Errorf("batch: %s (%d)", ack.Error.Description, ack.Error.Code)
		}
	}
	return nil
}

// sigMessage lays out the task message of signature s: after parent (if
// any) whose result, unless s is immutable, goes before s's positional
// arguments; chain is the rest of s's chain, last first.
func sigMessage(s taskwire.Signature, origin string, parent *taskwire.Message, result json.RawMessage, chain []taskwire.Signature) (*taskwire.Message, string) {
	id, _ := s.Options["task_id"].(string)
	queue, _ := s.Options["queue"].(string)
	if queue == "" {
		queue = QueueDefault
	}
	m := &taskwire.Message{Task: s.Task, ID: id, RootID: id, Lang: "go", Origin: origin, MaxRetries: -1,
		Args: notNull(s.Args), Kwargs: notNull(s.Kwargs), Embed: taskwire.Embed{Chain: chain}}
	if parent != nil {
		m.ParentID, m.RootID = parent.ID, parent.RootID
		if !s.Immutable && result != nil {
			m.Args = prepend(result, s.Args)
		}
	}
	m.Embed.Callbacks = sigList(s.Options["link"])
	m.Embed.Errbacks = sigList(s.Options["link_error"])
	return m, queue
}

// notNull reads a signature's args or kwargs: JSON null (as another
// language may write) means none.
func notNull(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

// sigList reads a list of signatures from signature options, which hold
// either typed values (built here) or decoded JSON (from a message).
func sigList(v any) []taskwire.Signature {
	switch l := v.(type) {
	case []taskwire.Signature:
		return l
	case []any:
		b, _ := json.Marshal(l)
		var out []taskwire.Signature
		json.Unmarshal(b, &out)
		return out
	}
	return nil
}

// prepend puts v before the elements of the JSON array args.
func prepend(v, args json.RawMessage) json.RawMessage {
	out := append([]byte{'['}, v...)
	if len(args) > 2 {
		var rest []json.RawMessage
		if json.Unmarshal(args, &rest) == nil && len(rest) > 0 {
			out = append(out, ',')
			out = append(out, args[1:]...) // everything after '['
			return out
		}
	}
	return append(out, ']')
}

// sendSig sends signature s (see sigMessage).
func sendSig(ctx context.Context, js jetstream.JetStream, origin string, s taskwire.Signature, parent *taskwire.Message, result json.RawMessage, chain []taskwire.Signature) error {
	m, queue := sigMessage(s, origin, parent, result, chain)
	if m.ID == "" {
		return errors.New("signature without a task_id")
	}
	msg, err := layout(queue, m, m.ID)
	if err != nil {
		return err
	}
	_, err = js.PublishMsg(ctx, msg)
	return err
}

// The built-in tasks behind Map and Starmap; every worker runs them.
const (
	mapTask     = "mortar.map"
	starmapTask = "mortar.starmap"
)

// mapSpec is the keyword arguments of the map tasks.
type mapSpec struct {
	Task  string            `json:"task"`
	Items []json.RawMessage `json:"items"`
}

// Map is a signature of one task that runs t over each of items in turn,
// in one worker, and returns the list of results (Celery's map). An item
// that fails fails the whole task.
func (t Task[A, R]) Map(items []A) Sig {
	spec := mapSpec{Task: t.Name, Items: make([]json.RawMessage, len(items))}
	for i, it := range items {
		b, err := json.Marshal(it)
		if err != nil {
			panic("task: map " + t.Name + ": " + err.Error())
		}
		spec.Items[i] = b
	}
	kw, _ := json.Marshal(spec)
	return Sig{Task: mapTask, Kwargs: kw}
}

// Starmap is Map for the task name whose items are positional argument
// lists (JSON arrays), as Celery's starmap.
func Starmap(name string, items []json.RawMessage) Sig {
	kw, _ := json.Marshal(mapSpec{Task: name, Items: items})
	return Sig{Task: starmapTask, Kwargs: kw}
}

// Chunks splits items into Map tasks of n items each (the last may have
// fewer), to send as a group (Celery's chunks).
func (t Task[A, R]) Chunks(items []A, n int) []Sig {
	if n <= 0 {
		n = 1
	}
	var out []Sig
	for len(items) > 0 {
		k := min(n, len(items))
		out = append(out, t.Map(items[:k]))
		items = items[k:]
	}
	return out
}

// mapHandler runs a map (star: a starmap) task.
func (w *Worker) mapHandler(star bool) rawHandler {
	return func(ctx context.Context, req *Request) (any, error) {
		var spec mapSpec
		if err := json.Unmarshal(req.Kwargs, &spec); err != nil {
			return nil, SkipRetry(fmt.Errorf("map: %w", err))
		}
		h := w.handlers[spec.Task]
		if h == nil || spec.Task == mapTask || spec.Task == starmapTask {
			return nil, SkipRetry(fmt.Errorf("map: no handler for task %q on worker %s", spec.Task, w.cfg.Name))
		}
		out := make([]any, len(spec.Items))
		for i, it := range spec.Items {
			sub := *req
			sub.Task, sub.Kwargs = spec.Task, nil
			if star {
				if len(it) == 0 || it[0] != '[' {
					return nil, SkipRetry(fmt.Errorf("starmap: item %d: want a JSON array of arguments", i))
				}
				sub.Args = it
			} else {
				sub.Args = prepend(it, nil)
			}
			v, err := safeCall(ctx, h, &sub)
			if err != nil {
				return nil, fmt.Errorf("map: item %d: %w", i, err)
			}
			out[i] = v
		}
		return out, nil
	}
}
