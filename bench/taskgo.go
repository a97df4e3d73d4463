package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// A Go task system (its producer and workers are Go code in this process)
// gives newGoTaskServer a goQueue and calls taskProbe.started at the
// start of its handler; newGoTaskServer builds the throughput and pickup
// measurements from them.

// stallTimeout ends a run that has made no progress for this long.
const stallTimeout = 30 * time.Second

// ackPoll is how often the server's count of acknowledged tasks is read
// at the end of a run, once every task has started: the end of a run is
// late by at most about this much.
const ackPoll = time.Millisecond

// goQueue is a task queue driven from this process.
type goQueue struct {
	// producers is how many goroutines call enqueue at once; 0 means 64.
	producers int
	// enqueue submits no-op task i, which stores a small result if results
	// is set.
	enqueue func(ctx context.Context, i int, results bool) error
	// flush, optional, returns once every task enqueue has accepted is in
	// the queue (for a producer that publishes asynchronously).
	flush func(ctx context.Context) error
	// acked returns how many tasks the server has seen run and
	// acknowledged so far.
	acked func(ctx context.Context) (int64, error)
	// settle, optional, runs after the last acknowledgment and returns
	// once the workers' own asynchronous writes (results) are done.
	settle func(ctx context.Context) error
}

// taskProbe is the harness's end of a Go system's handler.
type taskProbe struct{ phase atomic.Pointer[probePhase] }

type probePhase struct {
	target int64
	count  atomic.Int64
	done   chan struct{}  // closed when count reaches target
	starts chan time.Time // pickup: the handler's start time
	once   sync.Once
}

// started is called by the system's handler first thing in every task.
func (p *taskProbe) started() {
	ph := p.phase.Load()
	if ph == nil {
		return
	}
	if ph.starts != nil {
		select {
		case ph.starts <- time.Now():
		default:
		}
	}
	if ph.count.Add(1) == ph.target {
		ph.once.Do(func() { close(ph.done) })
	}
}

// arm starts counting toward target.
func (p *taskProbe) arm(target int64, pickup bool) *probePhase {
	ph := &probePhase{target: target, done: make(chan struct{})}
	if pickup {
		ph.starts = make(chan time.Time, 1)
	}
	p.phase.Store(ph)
	return ph
}

// newGoTaskServer returns a taskServer measuring q, whose handler calls
// p.started. serverPIDs and stop are the taskServer's.
func newGoTaskServer(q goQueue, p *taskProbe, serverPIDs []int, stop func() error) *taskServer {
	if q.producers == 0 {
		q.producers = 64
	}
	return &taskServer{
		serverPIDs: serverPIDs,
		stop:       stop,
		throughput: func(ctx context.Context, n int, results bool) (time.Time, time.Time, error) {
			return q.throughput(ctx, p, n, results)
		},
		pickup: func(ctx context.Context, i int) (time.Duration, error) { return q.pickup(ctx, p, i) },
	}
}

func (q goQueue) throughput(ctx context.Context, p *taskProbe, n int, results bool) (start, end time.Time, err error) {
	base, err := q.acked(ctx)
	if err != nil {
		return start, end, fmt.Errorf("acked: %w", err)
	}
	ph := p.arm(int64(n), false)
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	start = time.Now()
	for range q.producers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := q.enqueue(pctx, int(i), results); err != nil {
					cancel(fmt.Errorf("enqueue: %w", err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(pctx); err != nil {
		return start, end, err
	}
	if err := q.drain(ctx, ph, base+int64(n)); err != nil {
		return start, end, err
	}
	return start, time.Now(), nil
}

func (q goQueue) pickup(ctx context.Context, p *taskProbe, i int) (time.Duration, error) {
	base, err := q.acked(ctx)
	if err != nil {
		return 0, fmt.Errorf("acked: %w", err)
	}
	ph := p.arm(1, true)
	t0 := time.Now()
	if err := q.enqueue(ctx, i, false); err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	if err := q.drain(ctx, ph, base+1); err != nil {
		return 0, err
	}
	return (<-ph.starts).Sub(t0), nil
}

// drain waits for the producer's flush, for every task to have started,
// and for the server's acknowledged count to reach acked.
func (q goQueue) drain(ctx context.Context, ph *probePhase, acked int64) error {
	if q.flush != nil {
		if err := q.flush(ctx); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	if err := waitProgress(ctx, ph.done, ph.count.Load, "tasks started"); err != nil {
		return fmt.Errorf("%w (%d of %d)", err, ph.count.Load(), ph.target)
	}
	var last int64
	lastChange := time.Now()
	for {
		n, err := q.acked(ctx)
		if err != nil {
			return fmt.Errorf("acked: %w", err)
		}
		if n >= acked {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > stallTimeout {
			return fmt.Errorf("acknowledged %d of %d: no progress for %v", n, acked, stallTimeout)
		}
		if err := sleepCtx(ctx, ackPoll); err != nil {
			return err
		}
	}
	if q.settle != nil {
		if err := q.settle(ctx); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
	}
	return nil
}

// waitProgress waits for done, failing if progress stays the same for
// stallTimeout.
func waitProgress(ctx context.Context, done <-chan struct{}, progress func() int64, what string) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastChange := progress(), time.Now()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if n := progress(); n != last {
				last, lastChange = n, time.Now()
			} else if time.Since(lastChange) > stallTimeout {
				return errors.New(what + ": no progress for " + stallTimeout.String())
			}
		}
	}
}
