package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
)

// Task is a typed handle on the task Name: A is its arguments, R its
// result. Define one per task, share it between the code that sends the
// task and the worker that runs it.
//
// Arguments travel as Celery's: an A that encodes as a JSON object goes
// as the keyword arguments, anything else as the one positional argument.
// A worker decodes the keyword arguments into A when there are any,
// otherwise the one positional argument, otherwise all of them as a JSON
// array, so a Python producer's add.delay(2, 3) reaches an A of [2]int.
type Task[A, R any] struct {
	Name string
}

// Define returns the task name. It panics if name is not a task name (1
// to 256 printable ASCII characters without spaces): a programming error.
func Define[A, R any](name string) Task[A, R] {
	if err := taskwire.CheckName(name); err != nil {
		panic("task: define: " + err.Error())
	}
	return Task[A, R]{Name: name}
}

// Delay sends the task with args now, on the client's default queue.
func (t Task[A, R]) Delay(ctx context.Context, c *Client, args A) (*Result[R], error) {
	return t.Apply(ctx, c, args, nil)
}

// Apply sends the task with args and options.
func (t Task[A, R]) Apply(ctx context.Context, c *Client, args A, opts *SendOpts) (*Result[R], error) {
	pos, kw, err := encodeArgs(args)
	if err != nil {
		return nil, fmt.Errorf("task: send %s: %w", t.Name, err)
	}
	r, err := c.Send(ctx, t.Name, pos, kw, opts)
	if err != nil {
		return nil, err
	}
	return &Result[R]{AsyncResult: r}, nil
}

// Result returns the result of the task with this ID, sent earlier.
func (t Task[A, R]) Result(c *Client, id string) *Result[R] {
	return &Result[R]{AsyncResult: c.Result(id)}
}

func encodeArgs(a any) (args, kwargs json.RawMessage, err error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, nil, fmt.Errorf("encode arguments: %w", err)
	}
	if len(b) > 0 && b[0] == '{' {
		return nil, b, nil
	}
	return append(append([]byte{'['}, b...), ']'), nil, nil
}

// decodeArgs is encodeArgs's inverse, and reads what other languages
// send (see Task).
func decodeArgs(args, kwargs json.RawMessage, into any) error {
	var src []byte
	switch {
	case len(kwargs) > 0 && !isEmpty(kwargs, "{}"):
		src = kwargs
	case len(args) == 0 || isEmpty(args, "[]"):
		return nil
	default:
		if !json.Valid(args) {
			return errors.New("arguments are not JSON")
		}
		items := taskwire.SplitArray(bytes.TrimSpace(args))
		if items == nil {
			return errors.New("arguments: want a JSON array")
		}
		src = args
		if len(items) == 1 {
			src = items[0]
		}
	}
	return json.Unmarshal(src, into)
}

// isEmpty reports whether raw is empty, spaces aside.
func isEmpty(raw json.RawMessage, empty string) bool {
	if string(raw) == empty {
		return true
	}
	return string(bytes.Join(bytes.Fields(raw), nil)) == empty
}

// DelayMany sends the task once per element of args, with the same
// options, as Client.SendMany does.
func (t Task[A, R]) DelayMany(ctx context.Context, c *Client, args []A, opts *SendOpts) ([]*Result[R], error) {
	if opts != nil && opts.ID != "" {
		return nil, fmt.Errorf("task: send %s: %w", t.Name, mortar.Errorf(mortar.CodeInvalidArgument, "one ID for many tasks"))
	}
	calls := make([]Call, len(args))
	for i, a := range args {
		pos, kw, err := encodeArgs(a)
		if err != nil {
			return nil, fmt.Errorf("task: send %s: call %d: %w", t.Name, i, err)
		}
		calls[i] = Call{Task: t.Name, Args: pos, Kwargs: kw, Opts: opts}
	}
	rs, err := c.SendMany(ctx, calls)
	out := make([]*Result[R], len(rs))
	for i, r := range rs {
		if r != nil {
			out[i] = &Result[R]{AsyncResult: r}
		}
	}
	return out, err
}
