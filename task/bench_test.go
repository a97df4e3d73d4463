package task_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/task"
)

// BenchmarkEndToEnd sends no-op tasks in bulk and runs them: enqueue to
// acknowledgement, producer, worker and node in this process (the node
// with --durability interval). One op is one task.
func BenchmarkEndToEnd(b *testing.B) {
	for _, results := range []bool{false, true} {
		b.Run("results="+strconv.FormatBool(results), func(b *testing.B) {
			n := mortartest.Start(b, &mortartest.Options{DurabilityInterval: true})
			conn := n.Dial(b)
			c, err := task.New(conn, nil)
			if err != nil {
				b.Fatal(err)
			}
			var done atomic.Int64
			all := make(chan struct{}, 1)
			var target atomic.Int64
			noop := task.Define[int, int]("bench.noop")
			w, err := task.NewWorker(n.Dial(b), &task.WorkerConfig{Concurrency: 64, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			task.Handle(w, noop, func(context.Context, int) (int, error) {
				if done.Add(1) == target.Load() {
					all <- struct{}{}
				}
				return 0, nil
			})
			if err := w.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer w.Stop(context.Background())
			opts := &task.SendOpts{IgnoreResult: !results}
			ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			target.Store(int64(b.N))
			calls := make([]task.Call, 0, 1024)
			for i := range b.N {
				calls = append(calls, task.Call{Task: noop.Name, Args: json.RawMessage("[" + strconv.Itoa(i) + "]"), Opts: opts})
				if len(calls) == cap(calls) || i == b.N-1 {
					if _, err := c.SendMany(ctx, calls); err != nil {
						b.Fatal(err)
					}
					calls = calls[:0]
				}
			}
			select {
			case <-all:
			case <-ctx.Done():
				b.Fatalf("%d of %d tasks ran", done.Load(), b.N)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
