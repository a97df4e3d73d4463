package task_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/task"
)

var sleepy = task.Define[time.Duration, string]("test.sleep")

// A retry due in a second or more is a new message the engine holds
// until then.
func TestRetryLater(t *testing.T) {
	b := setup(t)
	var runs atomic.Int32
	const wait = 1100 * time.Millisecond
	var first time.Time
	later := task.Define[struct{}, int]("test.later")
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, later, func(ctx context.Context, _ struct{}) (int, error) {
			if runs.Add(1) == 1 {
				first = time.Now()
				return 0, task.RetryIn(wait, errors.New("come back later"))
			}
			if d := time.Since(first); d < wait-10*time.Millisecond {
				return 0, task.SkipRetry(errors.New("retried too early: " + d.String()))
			}
			return task.RequestFrom(ctx).Retries, nil
		})
	})
	ctx := waitCtx(t)
	res, err := later.Delay(ctx, b.client, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Get(ctx); v != 1 || err != nil {
		t.Fatalf("Get = %d, %v; want 1 retry", v, err)
	}
}

// A task whose worker dies mid-run (its connection gone, no goodbye) runs
// again on another worker once the queue's visibility timeout lapses.
func TestWorkerDies(t *testing.T) {
	b := setup(t)
	started := make(chan struct{})
	doomed := b.node.Dial(t)
	w, err := task.NewWorker(doomed, &task.WorkerConfig{Visibility: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
		close(started)
		<-ctx.Done()
		return "", ctx.Err()
	})
	wctx, cancel := context.WithCancel(t.Context())
	if err := w.Start(wctx); err != nil {
		t.Fatal(err)
	}
	ctx := waitCtx(t)
	res, err := sleepy.Delay(ctx, b.client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	doomed.Close() // the worker's process is gone: nothing is acknowledged
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
			return "survivor", nil
		})
	})
	if v, err := res.Get(ctx); v != "survivor" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
	cancel()
	<-w.Stopped()
}

// While a task runs past the visibility timeout, its worker keeps it
// invisible: it runs once.
func TestLongTaskNotRedelivered(t *testing.T) {
	b := setup(t)
	var runs atomic.Int32
	for range 2 {
		startWorker(t, b.conn, &task.WorkerConfig{Visibility: time.Second}, func(w *task.Worker) {
			task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
				runs.Add(1)
				time.Sleep(d)
				return "slept", nil
			})
		})
	}
	ctx := waitCtx(t)
	res, err := sleepy.Delay(ctx, b.client, 2500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Get(ctx); v != "slept" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

func TestTimeLimits(t *testing.T) {
	b := setup(t)
	release := make(chan struct{})
	defer close(release)
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
			if d == 0 { // ignores its ctx: only the hard limit ends it
				<-release
				return "late", nil
			}
			select {
			case <-time.After(d):
				return "slept", nil
			case <-ctx.Done():
				return "", task.SkipRetry(ctx.Err())
			}
		})
	})
	ctx := waitCtx(t)
	soft, _ := sleepy.Apply(ctx, b.client, time.Hour, &task.SendOpts{SoftTimeLimit: 100 * time.Millisecond})
	hard, _ := sleepy.Apply(ctx, b.client, 0, &task.SendOpts{TimeLimit: 100 * time.Millisecond})
	if _, err := soft.Get(ctx); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("soft limit: Get error = %v", err)
	}
	_, err := hard.Get(ctx)
	if te, ok := errors.AsType[*task.TaskError](err); !ok || te.Type != "time_limit" {
		t.Errorf("hard limit: Get error = %v", err)
	}
}

// Stop lets running tasks finish; a Stop whose ctx ends first returns
// them to the queue, where another worker runs them.
func TestStop(t *testing.T) {
	b := setup(t)
	started := make(chan string, 2)
	w, err := task.NewWorker(b.conn, &task.WorkerConfig{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
		started <- task.RequestFrom(ctx).ID
		select {
		case <-time.After(d):
			return "finished", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := waitCtx(t)
	short, _ := sleepy.Delay(ctx, b.client, 300*time.Millisecond)
	long, _ := sleepy.Delay(ctx, b.client, time.Hour)
	<-started
	<-started
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := w.Stop(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want the deadline (a task runs for an hour)", err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatalf("second Stop = %v", err)
	}
	if v, err := short.Get(ctx); v != "finished" || err != nil {
		t.Fatalf("short task: Get = %q, %v; want it finished before Stop returned", v, err)
	}
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) { return "again", nil })
	})
	if v, err := long.Get(ctx); v != "again" || err != nil {
		t.Fatalf("long task: Get = %q, %v; want it run again by the next worker", v, err)
	}
}

// With strict priority a free worker takes from the first queue while it
// has tasks.
func TestStrictPriority(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	// Create both queues, then fill them while no worker runs.
	w0, err := task.NewWorker(b.conn, &task.WorkerConfig{Queues: []string{"hi", "lo"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w0.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w0.Stop(ctx)
	const n = 30
	for i := range n {
		for _, q := range []string{"lo", "hi"} {
			if _, err := add.Apply(ctx, b.client, addArgs{i, 0}, &task.SendOpts{Queue: q, IgnoreResult: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	startWorker(t, b.conn, &task.WorkerConfig{Queues: []string{"hi", "lo"}, Concurrency: 1}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			// Work for a millisecond: longer than the engine takes to
			// hand the worker its next hi task. (For tasks that take no
			// time at all, priority holds only as far as the worker
			// has prefetched.)
			time.Sleep(time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			order = append(order, task.RequestFrom(ctx).Queue)
			if len(order) == 2*n {
				close(done)
			}
			return 0, nil
		})
	})
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	// Until the hi queue's first messages arrive the worker may take a
	// lo task or two; after that, every hi task comes first.
	lastHi := 0
	for i, q := range order {
		if q == "hi" {
			lastHi = i
		}
	}
	loBefore := 0
	for _, q := range order[:lastHi] {
		if q == "lo" {
			loBefore++
		}
	}
	if loBefore > 2 {
		t.Fatalf("%d lo tasks ran before the last hi task: %v", loBefore, order)
	}
}

// With weights a free worker takes from each queue that has tasks in
// proportion to its weight.
func TestWeightedPriority(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	queues := []string{"one", "two"}
	w0, err := task.NewWorker(b.conn, &task.WorkerConfig{Queues: queues})
	if err != nil {
		t.Fatal(err)
	}
	if err := w0.Start(ctx); err != nil {
		t.Fatal(err)
	}
	w0.Stop(ctx)
	const n = 40
	for i := range n {
		for _, q := range queues {
			if _, err := add.Apply(ctx, b.client, addArgs{i, 0}, &task.SendOpts{Queue: q, IgnoreResult: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	startWorker(t, b.conn, &task.WorkerConfig{Queues: queues, Weights: []int{1, 1}, Concurrency: 1}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			time.Sleep(time.Millisecond) // work; see TestStrictPriority
			mu.Lock()
			defer mu.Unlock()
			order = append(order, task.RequestFrom(ctx).Queue)
			if len(order) == 2*n {
				close(done)
			}
			return 0, nil
		})
	})
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	ones := 0
	for _, q := range order[:n] {
		if q == "one" {
			ones++
		}
	}
	// Equal weights: about half of the first n from each queue (strict
	// priority would give nearly all n to "one"). 10..30 is over 3
	// standard deviations either side of 20.
	if ones < 10 || ones > 30 {
		t.Fatalf("%d of the first %d tasks from queue one, want about %d: %v", ones, n, n/2, order)
	}
}

// A task delivered MaxDeliveries times without an acknowledgement goes to
// the dead letters (the node acts on the engine's advisory).
func TestMaxDeliveries(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	again := task.Define[struct{}, int]("test.again")
	startWorker(t, b.conn, &task.WorkerConfig{MaxDeliveries: 2, Retry: task.RetryPolicy{MaxRetries: 100}}, func(w *task.Worker) {
		task.Handle(w, again, func(ctx context.Context, _ struct{}) (int, error) {
			return 0, task.RetryIn(0, errors.New("again"))
		})
	})
	r, err := again.Delay(ctx, b.client, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Get(ctx)
	if te, ok := errors.AsType[*task.TaskError](err); !ok || te.Type != "max_deliveries" {
		t.Fatalf("Get error = %v, want max_deliveries", err)
	}
	dead, err := b.client.DeadLetters(ctx, task.QueueDefault, 0, 0)
	if err != nil || len(dead) != 1 || dead[0].ID != r.ID || dead[0].Reason != "max_deliveries" {
		t.Fatalf("dead letters = %+v, %v", dead, err)
	}
	if st, _ := b.client.QueueStats(ctx, task.QueueDefault); st.Waiting != 0 || st.Taken != 0 {
		t.Fatalf("the task is still in its queue: %+v", st)
	}
}

// Within a queue, a worker takes high-priority tasks first, low last.
func TestPriorityBands(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	bind(t, ctx, b.conn, task.QueueDefault)
	const n = 10
	for _, p := range []task.Priority{task.PriorityLow, task.PriorityNormal, task.PriorityHigh} {
		for i := range n {
			if _, err := add.Apply(ctx, b.client, addArgs{int(p), i}, &task.SendOpts{Priority: p, IgnoreResult: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st, err := b.client.QueueStats(ctx, task.QueueDefault); err != nil || st.Waiting != 3*n {
		t.Fatalf("QueueStats = %+v, %v; want %d waiting across the bands", st, err, 3*n)
	}
	if _, err := add.Apply(ctx, b.client, addArgs{}, &task.SendOpts{Priority: 7}); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Fatalf("priority 7: %v, want invalid_argument", err)
	}
	var mu sync.Mutex
	var order []int
	done := make(chan struct{})
	startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 1}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			time.Sleep(time.Millisecond) // work; see TestStrictPriority
			mu.Lock()
			defer mu.Unlock()
			order = append(order, a.A)
			if len(order) == 3*n {
				close(done)
			}
			return 0, nil
		})
	})
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	// Until each band's first tasks arrive the worker may take one from a
	// lower band; count the tasks that ran before one of a higher band.
	inversions := 0
	for i := range order {
		for _, later := range order[i+1:] {
			if later > order[i] {
				inversions++
				break
			}
		}
	}
	if inversions > 2 {
		t.Fatalf("%d tasks ran before a task of a higher band: %v", inversions, order)
	}
}

// A queue with a concurrency of its own runs that many at once, and
// never takes the runners of the others.
func TestQueueConcurrency(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	release := make(chan struct{})
	var slowNow, slowMax atomic.Int32
	startWorker(t, b.conn, &task.WorkerConfig{Queues: []string{"slow", "fast"}, Concurrency: 2, QueueConcurrency: map[string]int{"slow": 1}},
		func(w *task.Worker) {
			task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
				if task.RequestFrom(ctx).Queue == "slow" {
					n := slowNow.Add(1)
					defer slowNow.Add(-1)
					for m := slowMax.Load(); n > m && !slowMax.CompareAndSwap(m, n); m = slowMax.Load() {
					}
					<-release
				}
				return "done", nil
			})
		})
	var slow []*task.Result[string]
	for range 3 {
		r, err := sleepy.Apply(ctx, b.client, 0, &task.SendOpts{Queue: "slow"})
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, r)
	}
	// The fast queue runs while the slow one is stuck.
	for range 5 {
		r, err := sleepy.Apply(ctx, b.client, 0, &task.SendOpts{Queue: "fast"})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := r.Get(ctx); v != "done" || err != nil {
			t.Fatalf("fast task: Get = %q, %v", v, err)
		}
	}
	close(release)
	for _, r := range slow {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if m := slowMax.Load(); m != 1 {
		t.Fatalf("%d slow tasks ran at once, want 1", m)
	}
	if _, err := task.NewWorker(b.conn, &task.WorkerConfig{QueueConcurrency: map[string]int{"other": 1}}); err == nil {
		t.Fatal("a concurrency for a queue the worker does not take was accepted")
	}
}
