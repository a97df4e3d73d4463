package task

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go/jetstream"
)

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

// receive is a queue band's consume callback: it holds msg in b,
// waiting for room, and wakes a runner. After ctx ends (the worker
// stops) it returns msg to the queue instead.
func (w *Worker) receive(ctx context.Context, b *prefetch, msg jetstream.Msg) {
	if !b.put(ctx, msg) {
		msg.Nak() // not started: back to the queue now
		return
	}
	w.held.Add(1)
	w.wake()
}

// wake tells a waiting runner that a message is held.
func (w *Worker) wake() {
	select {
	case w.avail <- struct{}{}:
	default:
	}
}

// next returns the next message for a runner, by priority (pick),
// waiting until one is held; nil once ctx ends.
func (w *Worker) next(ctx context.Context, bufs []*prefetch) jetstream.Msg {
	for ctx.Err() == nil {
		if m := w.pick(bufs); m != nil {
			if w.held.Add(-1) > 0 {
				w.wake() // more are held: pass the wake-up on
			}
			return m
		}
		select {
		case <-w.avail:
		case <-ctx.Done():
		}
	}
	return nil
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
