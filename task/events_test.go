package task_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mortarhq/mortar/task"
)

func TestEvents(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	client, err := task.New(b.conn, &task.Config{Events: true})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := client.Monitor()
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Stop()
	w := startWorker(t, b.conn, &task.WorkerConfig{Events: true, Name: "w1", Retry: task.RetryPolicy{MaxRetries: 1, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}},
		func(w *task.Worker) {
			task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
				if a.A < 0 {
					return 0, errors.New("negative")
				}
				return a.A + a.B, nil
			})
		})
	ok, _ := add.Delay(ctx, client, addArgs{1, 2})
	bad, _ := add.Delay(ctx, client, addArgs{-1, 2})
	ok.Get(ctx)
	bad.Get(ctx)
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w.Stop(ctx2)
	seen := map[string][]string{}
	for !slices.Contains(seen["w1"], task.EventWorkerOffline) {
		e, err := mon.Next(ctx2)
		if err != nil {
			t.Fatalf("events so far %v: %v", seen, err)
		}
		key := e.ID
		if key == "" {
			key = e.Worker
		}
		seen[key] = append(seen[key], e.Type)
	}
	// task-sent comes from the client after the engine's ack, so it may
	// arrive after the worker's first events; the worker's are in order.
	want := map[string][]string{
		ok.ID:  {"task-received", "task-started", "task-succeeded"},
		bad.ID: {"task-received", "task-started", "task-retried", "task-received", "task-started", "task-failed"},
	}
	for id, types := range want {
		i := slices.Index(seen[id], task.EventTaskSent)
		if i < 0 {
			t.Errorf("events of %s = %v, want a task-sent", id, seen[id])
			continue
		}
		if got := slices.Delete(slices.Clone(seen[id]), i, i+1); !slices.Equal(got, types) {
			t.Errorf("worker's events of %s = %v, want %v", id, got, types)
		}
	}
	if got := seen["w1"]; got[0] != task.EventWorkerOnline || got[len(got)-1] != task.EventWorkerOffline {
		t.Errorf("worker events = %v", got)
	}
}

func TestInspect(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	started := make(chan struct{})
	release := make(chan struct{})
	startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 1, Name: "inspected"}, func(w *task.Worker) {
		task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
			if d > 0 {
				close(started)
				<-release
			}
			return "ok", nil
		})
	})
	first, _ := sleepy.Delay(ctx, b.client, time.Hour)
	<-started
	second, _ := sleepy.Delay(ctx, b.client, 0)
	// The second task reaches the worker's prefetch while the first runs.
	var got task.Inspection
	for {
		ins, err := b.client.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) != 1 {
			t.Fatalf("Inspect = %+v, want one worker", ins)
		}
		got = ins[0]
		if len(got.Reserved) > 0 || ctx.Err() != nil {
			break
		}
	}
	close(release)
	if got.Worker != "inspected" || len(got.Active) != 1 || got.Active[0].ID != first.ID || got.Active[0].Started.IsZero() ||
		len(got.Reserved) != 1 || got.Reserved[0].ID != second.ID {
		t.Fatalf("Inspect = %+v", got)
	}
	if _, err := second.Get(ctx); err != nil {
		t.Fatal(err)
	}
}
