package task

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
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

// runners is a set of runners and the queues they take from: the
// worker's shared pool, or a queue with a concurrency of its own.
type runners struct {
	n       int
	queues  []int       // indexes into WorkerConfig.Queues
	bufs    []*prefetch // each queue's bands, highest first
	weights []int       // per queue, or nil for strict priority
	held    atomic.Int64
	avail   chan struct{} // a message is held
}

// receive is a queue band's consume callback: it holds msg in b,
// waiting for room, and wakes one of rs. After ctx ends (the worker
// stops) it returns msg to the queue instead.
func (rs *runners) receive(ctx context.Context, b *prefetch, msg jetstream.Msg) {
	if !b.put(ctx, msg) {
		msg.Nak() // not started: back to the queue now
		return
	}
	rs.held.Add(1)
	rs.wake()
}

// wake tells a waiting runner that a message is held.
func (rs *runners) wake() {
	select {
	case rs.avail <- struct{}{}:
	default:
	}
}

// next returns the next message for a runner, by priority (pick),
// waiting until one is held; nil once ctx ends.
func (rs *runners) next(ctx context.Context) jetstream.Msg {
	for ctx.Err() == nil {
		if m := rs.pick(); m != nil {
			if rs.held.Add(-1) > 0 {
				rs.wake() // more are held: pass the wake-up on
			}
			return m
		}
		select {
		case <-rs.avail:
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

// pick takes a waiting message. Strict priority takes from the first
// buffer that has one; with weights, a queue is chosen at random by
// weight among those that have one, then its highest band that has one.
func (rs *runners) pick() jetstream.Msg {
	if rs.weights == nil {
		for _, b := range rs.bufs {
			if m := b.take(); m != nil {
				return m
			}
		}
		return nil
	}
	nb := len(taskwire.Bands)
	left := make([]int, len(rs.queues))
	for i := range left {
		left[i] = i
	}
	for len(left) > 0 {
		total := 0
		for _, i := range left {
			total += rs.weights[i]
		}
		r := rand.N(total)
		k := 0
		for r >= rs.weights[left[k]] {
			r -= rs.weights[left[k]]
			k++
		}
		q := left[k]
		for _, b := range rs.bufs[q*nb : (q+1)*nb] {
			if m := b.take(); m != nil {
				return m
			}
		}
		left = append(left[:k], left[k+1:]...)
	}
	return nil
}
