package task

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go/jetstream"
)

// fetchPause is the pause after a failed fetch.
const fetchPause = 100 * time.Millisecond

// prefetch holds the messages a worker has taken from one queue but not
// yet started, at most limit of them, each kept invisible to other
// workers while it waits.
type prefetch struct {
	limit  int
	period time.Duration // heartbeat period
	space  chan struct{} // a message left a full buffer

	mu   sync.Mutex
	msgs []held
}

type held struct {
	msg  jetstream.Msg
	beat time.Time // when it was taken, or last reported in hand
}

func newPrefetch(limit int, period time.Duration) *prefetch {
	return &prefetch{limit: limit, period: period, space: make(chan struct{}, 1)}
}

// fetch moves the messages of one queue into b, signalling avail, until
// the iterator ends. After ctx ends it returns what it takes to the
// queue.
func (w *Worker) fetch(ctx context.Context, it jetstream.MessagesContext, b *prefetch, avail chan<- struct{}) {
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return
		}
		if err != nil {
			// Missed heartbeats (a busy or cut connection) and the like:
			// the iterator goes on pulling once the engine answers.
			w.log.Warn("task fetch", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(fetchPause):
			}
			continue
		}
		if !b.put(ctx, msg) {
			msg.Nak() // not started: back to the queue now
			continue
		}
		select {
		case avail <- struct{}{}:
		default:
		}
	}
}

// put adds msg once there is room; false if ctx ended first.
func (b *prefetch) put(ctx context.Context, msg jetstream.Msg) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.msgs) >= b.limit && ctx.Err() == nil {
		b.mu.Unlock()
		select {
		case <-b.space:
		case <-ctx.Done():
		}
		b.mu.Lock()
	}
	if ctx.Err() != nil {
		return false
	}
	b.msgs = append(b.msgs, held{msg, time.Now()})
	return true
}

// take removes the oldest message, or returns nil.
func (b *prefetch) take() jetstream.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		return nil
	}
	h := b.msgs[0]
	b.msgs[0] = held{}
	b.msgs = b.msgs[1:]
	select {
	case b.space <- struct{}{}:
	default:
	}
	return h.msg
}

// stale returns the held messages last reported a period ago or
// longer, marking them reported now.
func (b *prefetch) stale(now time.Time) []jetstream.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []jetstream.Msg
	for i := range b.msgs {
		if now.Sub(b.msgs[i].beat) >= b.period {
			b.msgs[i].beat = now
			out = append(out, b.msgs[i].msg)
		}
	}
	return out
}

// returnAll gives every held message back to its queue.
func (b *prefetch) returnAll() {
	for m := b.take(); m != nil; m = b.take() {
		m.Nak()
	}
}

// dispatch hands one prefetched message at a time to a free runner. It
// chooses among the queues only once a runner is free: choosing earlier
// would choose among what had arrived by then.
func (w *Worker) dispatch(ctx context.Context, bufs []*prefetch, avail <-chan struct{}, free <-chan struct{}, work chan<- jetstream.Msg) {
	defer func() {
		for _, b := range bufs {
			b.returnAll()
		}
	}()
	for {
		select {
		case <-free:
		case <-ctx.Done():
			return
		}
		msg := w.pick(bufs)
		for msg == nil {
			select {
			case <-avail:
			case <-ctx.Done():
				return
			}
			msg = w.pick(bufs)
		}
		work <- msg // a runner is waiting for it
	}
}

// pick takes a waiting message. bufs holds each queue's bands, highest
// first. Strict priority takes from the first buffer that has one; with
// weights, a queue is chosen at random by weight among those that have
// one, then its highest band that has one.
func (w *Worker) pick(bufs []*prefetch) jetstream.Msg {
	if w.cfg.Weights == nil {
		for _, b := range bufs {
			if m := b.take(); m != nil {
				return m
			}
		}
		return nil
	}
	nb := len(taskwire.Bands)
	left := make([]int, len(w.cfg.Queues))
	for i := range left {
		left[i] = i
	}
	for len(left) > 0 {
		total := 0
		for _, i := range left {
			total += w.cfg.Weights[i]
		}
		r := rand.N(total)
		k := 0
		for r >= w.cfg.Weights[left[k]] {
			r -= w.cfg.Weights[left[k]]
			k++
		}
		q := left[k]
		for _, b := range bufs[q*nb : (q+1)*nb] {
			if m := b.take(); m != nil {
				return m
			}
		}
		left = append(left[:k], left[k+1:]...)
	}
	return nil
}
