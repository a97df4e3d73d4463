package task_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/task"
)

// A rate limit holds across workers: runs are spaced by the limit.
func TestRateLimit(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	if err := b.client.SetRateLimit(ctx, add.Name, "5/s"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var starts []time.Time
	for range 2 {
		startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 4}, func(w *task.Worker) {
			task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
				mu.Lock()
				starts = append(starts, time.Now())
				mu.Unlock()
				return a.A + a.B, nil
			})
			task.Handle(w, double, func(ctx context.Context, v int) (int, error) { return 2 * v, nil })
		})
	}
	const n = 8
	rs, err := add.DelayMany(ctx, b.client, make([]addArgs, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if _, err := r.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	span := starts[n-1].Sub(starts[0])
	mu.Unlock()
	// 5/s: one run every 200 ms, so n runs span at least (n-1)·200 ms
	// (less a little for the workers' clocks reading at different
	// moments).
	if min := time.Duration(n-1) * 200 * time.Millisecond; span < min-20*time.Millisecond {
		t.Fatalf("%d runs in %v, want at least %v at 5/s", n, span, min)
	}
	ls, err := b.client.RateLimits(ctx)
	if err != nil || len(ls) != 1 || ls[0].Task != add.Name || ls[0].Rate != "5/s" {
		t.Fatalf("RateLimits = %+v, %v", ls, err)
	}
	// A wait longer than a second goes back to the engine, delayed.
	if err := b.client.SetRateLimit(ctx, double.Name, "1/m"); err != nil {
		t.Fatal(err)
	}
	first, _ := double.Delay(ctx, b.client, 1)
	second, _ := double.Delay(ctx, b.client, 2)
	for {
		l, err := b.client.List(ctx, "delayed", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) == 1 {
			if l[0].ID != first.ID && l[0].ID != second.ID {
				t.Fatalf("delayed: %+v", l)
			}
			break
		}
		time.Sleep(20 * time.Millisecond) // a delay has no notice to wait on
	}
	for _, name := range []string{add.Name, double.Name} {
		if err := b.client.SetRateLimit(ctx, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	if ls, _ := b.client.RateLimits(ctx); len(ls) != 0 {
		t.Fatalf("after removal: %+v", ls)
	}
	for _, bad := range []string{"5", "x/s", "5/d", "-1/s", "0/m"} {
		err := b.client.SetRateLimit(ctx, add.Name, bad)
		if bad == "5" {
			if err != nil {
				t.Errorf("SetRateLimit(%q) = %v", bad, err)
			}
			continue
		}
		if mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
			t.Errorf("SetRateLimit(%q) = %v, want invalid_argument", bad, err)
		}
	}
}
