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

// Call is one task of a bulk send.
type Call struct {
	Task         string
	Args, Kwargs json.RawMessage // as Send's
	Opts         *SendOpts
}

// stallWait is how long an asynchronous publish waits for room when the
// connection has the most publishes awaiting acknowledgement that it
// allows (nats.go gives up after 200 ms otherwise, which a node fsyncing
// every write under load exceeds).
const stallWait = 30 * time.Second

// bulkWindow bounds the publishes of a bulk send awaiting the engine's
// acknowledgement.
const bulkWindow = 1024

// SendMany sends calls with the engine's acknowledgements pipelined, far
// faster than one Send after another. It returns one result per call, in
// order; a call that failed has a nil result, and the error joins the
// failures, each with its call's index.
func (c *Client) SendMany(ctx context.Context, calls []Call) ([]*AsyncResult, error) {
	out := make([]*AsyncResult, len(calls))
	var errs []error
	fail := func(i int, err error) { errs = append(errs, fmt.Errorf("call %d: %w", i, err)) }
	type pending struct {
		i    int
		m    *taskwire.Message
		ack  jetstream.PubAckFuture
		undo func()
	}
	var window []pending
	flush := func() {
		for _, p := range window {
			select {
			case <-p.ack.Ok():
				out[p.i] = &AsyncResult{ID: p.m.ID, c: c}
			case err := <-p.ack.Err():
				p.undo()
				fail(p.i, err)
			case <-ctx.Done():
				fail(p.i, ctx.Err())
			}
		}
		window = window[:0]
	}
	for i, call := range calls {
		m, queue, o, err := c.prepare(call.Task, call.Args, call.Kwargs, call.Opts)
		if err != nil {
			fail(i, err)
			continue
		}
		undo := func() {}
		if o.UniqueFor > 0 {
			if undo, err = c.claimUnique(ctx, queue, m, o); err != nil {
				fail(i, err)
				continue
			}
		}
		msg, err := layout(queue, m, o.ID)
		if err == nil {
			var f jetstream.PubAckFuture
			if f, err = c.js.PublishMsgAsync(msg, jetstream.WithStallWait(stallWait)); err == nil {
				window = append(window, pending{i, m, f, undo})
			}
		}
		if err != nil {
			undo()
			fail(i, err)
		}
		if len(window) == bulkWindow {
			flush()
		}
	}
	flush()
	if len(errs) > 0 {
		return out, fmt.Errorf("task: send many: %w", errors.Join(errs...))
	}
	return out, nil
}

// SendBatch sends calls as atomic batches of up to MaxGroup: each batch
// is stored all or none, and the engine writes it with one fsync, so on
// a node that fsyncs every write (--durability always) it is several
// times faster than SendMany (docs/benchmarks.md). It returns one result
// per call, in order; a call in a batch that failed has a nil result,
// and the error says which batches failed. UniqueFor is not supported
// here.
func (c *Client) SendBatch(ctx context.Context, calls []Call) ([]*AsyncResult, error) {
	out := make([]*AsyncResult, len(calls))
	var errs []error
	for start := 0; start < len(calls); start += MaxGroup {
		end := min(start+MaxGroup, len(calls))
		msgs := make([]*nats.Msg, 0, end-start)
		ids := make([]string, 0, end-start)
		var berr error
		for i := start; i < end && berr == nil; i++ {
			call := calls[i]
			m, queue, o, err := c.prepare(call.Task, call.Args, call.Kwargs, call.Opts)
			if err == nil && o.UniqueFor > 0 {
				err = mortar.Errorf(mortar.CodeInvalidArgument, "UniqueFor is not supported by SendBatch")
			}
			var msg *nats.Msg
			if err == nil {
				msg, err = layout(queue, m, o.ID)
			}
			if err != nil {
				berr = fmt.Errorf("call %d: %w", i, err)
				break
			}
			msgs = append(msgs, msg)
			ids = append(ids, m.ID)
		}
		if berr == nil {
			berr = publishAtomic(ctx, c.js.Conn(), msgs)
		}
		if berr != nil {
			errs = append(errs, fmt.Errorf("calls %d to %d: %w", start, end-1, berr))
			continue
		}
		for i, id := range ids {
			out[start+i] = &AsyncResult{ID: id, c: c}
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("task: send batch: %w", errors.Join(errs...))
	}
	return out, nil
}
