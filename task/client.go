package task

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// QueueDefault is the queue of a task sent without one.
const QueueDefault = "default"

// Config configures a Client.
type Config struct {
	// Queue is where tasks go unless SendOpts names a queue. Defaults to
	// QueueDefault.
	Queue string
	// Events sends a task-sent event for each task sent, for monitors.
	// Defaults to false.
	Events bool
}

// Client sends tasks and reads their results.
type Client struct {
	conn   *mortar.Conn
	js     jetstream.JetStream
	queue  string
	origin string
	events bool

	bucketsMu sync.Mutex
	results   jetstream.KeyValue // bound on first use
	unique    jetstream.KeyValue
}

// bucket returns the bucket name, binding *kv on first use.
func (c *Client) bucket(ctx context.Context, kv *jetstream.KeyValue, name string) (jetstream.KeyValue, error) {
	c.bucketsMu.Lock()
	defer c.bucketsMu.Unlock()
	if *kv == nil {
		b, err := c.js.KeyValue(ctx, name)
		if err != nil {
			return nil, err
		}
		*kv = b
	}
	return *kv, nil
}

// New returns a Client on conn.
func New(conn *mortar.Conn, cfg *Config) (*Client, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	q := cmp.Or(c.Queue, QueueDefault)
	if err := taskwire.CheckQueue(q); err != nil {
		return nil, fmt.Errorf("task: new: %w", err)
	}
	host, _ := os.Hostname()
	return &Client{conn: conn, js: conn.JetStream(), queue: q, origin: host + "@" + strconv.Itoa(os.Getpid()), events: c.Events}, nil
}

// SendOpts are the options of one send. A nil *SendOpts means all
// defaults.
type SendOpts struct {
	// Queue defaults to the client's queue.
	Queue string
	// ID is the task's ID: 1 to 128 of [A-Za-z0-9_-]. Defaults to a new
	// random UUID. A send repeated with the same ID given here within two
	// minutes is queued once.
	ID string
	// Countdown delays the task by this long; ETA delays it until then.
	// The later of the two wins. Both default to none: run now.
	Countdown time.Duration
	ETA       time.Time
	// Expires: a task not started by then is never started; it is
	// recorded as REVOKED. Defaults to never.
	Expires time.Time
	// MaxRetries, BackoffMin and BackoffMax override the worker's
	// RetryPolicy for this task. MaxRetries nil means the worker's; 0
	// means no retry.
	MaxRetries             *int
	BackoffMin, BackoffMax time.Duration
	// SoftTimeLimit ends the handler's ctx after this long; TimeLimit
	// makes the worker give the run up (recorded as FAILURE). Default to
	// none.
	SoftTimeLimit, TimeLimit time.Duration
	// IgnoreResult: store no result.
	IgnoreResult bool
	// Headers travel with the task and reach the handler.
	Headers map[string]string
	// Priority puts the task in its queue's high or low band: a worker
	// takes tasks of a higher band first. Defaults to PriorityNormal.
	Priority Priority
	// UniqueFor makes the send a no-op, failing with a *DuplicateError,
	// while a task with the same unique key was sent within this window
	// (whole seconds, at least one). Defaults to none.
	UniqueFor time.Duration
	// UniqueKey is the unique key. Defaults to the task's name, queue and
	// arguments.
	UniqueKey string
}

// Priority is a task's band within its queue.
type Priority int8

// The priorities.
const (
	PriorityLow    Priority = -1
	PriorityNormal Priority = 0
	PriorityHigh   Priority = 1
)

func (p Priority) band() (string, error) {
	switch p {
	case PriorityHigh:
		return taskwire.BandHigh, nil
	case PriorityNormal:
		return taskwire.BandNormal, nil
	case PriorityLow:
		return taskwire.BandLow, nil
	}
	return "", fmt.Errorf("priority %d: want PriorityLow, PriorityNormal or PriorityHigh", p)
}

// ErrDuplicate is wrapped by the error of a send that UniqueFor
// suppressed.
var ErrDuplicate = errors.New("task: duplicate")

// DuplicateError says which task a suppressed send duplicates.
type DuplicateError struct {
	ID string // the task sent first, within the window
}

func (e *DuplicateError) Error() string { return "task: duplicate of task " + e.ID }

// Is makes a DuplicateError match ErrDuplicate and mortar's
// already_exists.
func (e *DuplicateError) Is(target error) bool {
	if target == ErrDuplicate {
		return true
	}
	me, ok := target.(*mortar.Error)
	return ok && me.Code == mortar.CodeAlreadyExists && me.Message == ""
}

// Send queues the task name with raw JSON arguments: args a JSON array
// (nil means []), kwargs a JSON object (nil means {}). It returns once the
// engine has stored the task.
func (c *Client) Send(ctx context.Context, name string, args, kwargs json.RawMessage, opts *SendOpts) (*AsyncResult, error) {
	m, queue, o, err := c.prepare(name, args, kwargs, opts)
	if err != nil {
		return nil, err
	}
	undo := func() {}
	if o.UniqueFor > 0 {
		if undo, err = c.claimUnique(ctx, queue, m, o); err != nil {
			return nil, fmt.Errorf("task: send %s: %w", name, err)
		}
	}
	if err := publish(ctx, c.js, queue, m, o.ID); err != nil {
		undo()
		return nil, fmt.Errorf("task: send %s: %w", name, err)
	}
	if c.events {
		emit(c.conn.NATS(), &Event{Type: EventTaskSent, Worker: c.origin, ID: m.ID, Task: name, Queue: queue})
	}
	return &AsyncResult{ID: m.ID, c: c}, nil
}

// prepare checks a send and lays out its message.
func (c *Client) prepare(name string, args, kwargs json.RawMessage, opts *SendOpts) (*taskwire.Message, string, *SendOpts, error) {
	var o SendOpts
	if opts != nil {
		o = *opts
	}
	m := &taskwire.Message{
		Task: name, ID: o.ID, Lang: "go", Origin: c.origin, Args: args, Kwargs: kwargs,
		ETA: o.ETA, Expires: o.Expires, SoftLimit: o.SoftTimeLimit, HardLimit: o.TimeLimit,
		IgnoreResult: o.IgnoreResult, MaxRetries: -1, BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax,
		Headers: o.Headers,
	}
	if o.MaxRetries != nil {
		m.MaxRetries = max(*o.MaxRetries, 0)
	}
	if o.Countdown > 0 {
		if at := time.Now().Add(o.Countdown); at.After(m.ETA) {
			m.ETA = at
		}
	}
	if m.ID == "" {
		m.ID = newID()
	}
	m.RootID = m.ID
	queue := cmp.Or(o.Queue, c.queue)
	if err := check(queue, m); err != nil {
		return nil, "", nil, fmt.Errorf("task: send %s: %w", name, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err))
	}
	var err error
	if m.Band, err = o.Priority.band(); err != nil {
		return nil, "", nil, fmt.Errorf("task: send %s: %w", name, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err))
	}
	if o.UniqueFor < 0 {
		return nil, "", nil, fmt.Errorf("task: send %s: %w", name, mortar.Errorf(mortar.CodeInvalidArgument, "unique window %v: negative", o.UniqueFor))
	}
	return m, queue, &o, nil
}

// claimUnique takes the send's unique key for its window, or fails with
// a *DuplicateError. undo gives the key back, for a send that failed, so
// that it does not block the next.
func (c *Client) claimUnique(ctx context.Context, queue string, m *taskwire.Message, o *SendOpts) (undo func(), err error) {
	kv, err := c.bucket(ctx, &c.unique, taskwire.UniqueBucket)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(queue + "\x00"))
	if o.UniqueKey != "" {
		h.Write([]byte("key\x00" + o.UniqueKey))
	} else {
		h.Write([]byte(m.Task + "\x00"))
		h.Write(m.AppendBody(nil))
	}
	key := hex.EncodeToString(h.Sum(nil))
	window := (o.UniqueFor + time.Second - 1).Truncate(time.Second)
	rev, err := kv.Create(ctx, key, []byte(m.ID), jetstream.KeyTTL(window))
	if errors.Is(err, jetstream.ErrKeyExists) {
		if e, gerr := kv.Get(ctx, key); gerr == nil {
			return nil, &DuplicateError{ID: string(e.Value())}
		}
		return nil, &DuplicateError{}
	}
	if err != nil {
		return nil, err
	}
	return func() { kv.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev)) }, nil
}

func check(queue string, m *taskwire.Message) error {
	if err := taskwire.CheckQueue(queue); err != nil {
		return err
	}
	if err := taskwire.CheckName(m.Task); err != nil {
		return err
	}
	if err := taskwire.CheckID(m.ID); err != nil {
		return err
	}
	for _, raw := range []json.RawMessage{m.Args, m.Kwargs} {
		if len(raw) > 0 && !json.Valid(raw) {
			return fmt.Errorf("arguments are not valid JSON")
		}
	}
	if len(m.Args) > 0 && m.Args[0] != '[' {
		return fmt.Errorf("args: want a JSON array")
	}
	if len(m.Kwargs) > 0 && m.Kwargs[0] != '{' {
		return fmt.Errorf("kwargs: want a JSON object")
	}
	return nil
}

// publish stores m on queue, or on its delay subject until its ETA.
// msgID, if any, de-duplicates a repeated publish (the engine remembers
// it for two minutes, at a cost per message, so a send with a new random
// ID goes without).
func publish(ctx context.Context, js jetstream.JetStream, queue string, m *taskwire.Message, msgID string) error {
	msg, err := layout(queue, m, msgID)
	if err != nil {
		return err
	}
	_, err = js.PublishMsg(ctx, msg)
	return err
}

// layout is the engine message of m on queue (see publish).
func layout(queue string, m *taskwire.Message, msgID string) (*nats.Msg, error) {
	var msg *nats.Msg
	if !m.ETA.IsZero() && time.Until(m.ETA) > 0 {
		msg = m.NewMsg(taskwire.DelaySubject(queue, m.ID))
		msg.Header.Set("Nats-Schedule", "@at "+m.ETA.UTC().Format(time.RFC3339Nano))
		msg.Header.Set("Nats-Schedule-Target", taskwire.BandSubject(queue, m.Band))
	} else {
		msg = m.NewMsg(taskwire.BandSubject(queue, m.Band))
	}
	if len(msg.Data)+headerBytes(msg.Header) > taskwire.MaxMessageBytes {
		return nil, mortar.Errorf(mortar.CodeTooLarge, "task message over %d bytes", taskwire.MaxMessageBytes)
	}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return msg, nil
}

func headerBytes(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// newID returns a random (version 4) UUID, as Celery's task IDs.
func newID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
