package task_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRevoke(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	// Queued and delayed tasks revoked before any worker runs.
	queued, err := sleepy.Delay(ctx, b.client, 0)
	if err != nil {
		t.Fatal(err)
	}
	delayed, err := sleepy.Apply(ctx, b.client, 0, &task.SendOpts{Countdown: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{queued.ID, delayed.ID} {
		if err := b.client.Revoke(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.conn.JetStream().Stream(ctx, taskwire.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(taskwire.DelayPrefix+">"))
	if err != nil || len(info.State.Subjects) != 0 {
		t.Fatalf("delayed subjects after revoke: %v, %v", info.State.Subjects, err)
	}
	var runs atomic.Int32
	started := make(chan struct{}, 1)
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
			runs.Add(1)
			if d == 0 {
				return "ran", nil
			}
			started <- struct{}{}
			<-ctx.Done()
			if !errors.Is(context.Cause(ctx), task.ErrRevoked) {
				return "", task.SkipRetry(errors.New("cancelled, but not by the revoke"))
			}
			return "", ctx.Err()
		})
	})
	// A running task revoked with Terminate.
	running, err := sleepy.Delay(ctx, b.client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	<-started
	if err := b.client.Revoke(ctx, running.ID, &task.RevokeOpts{Terminate: true}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*task.Result[string]{queued, delayed, running} {
		if _, err := r.Get(ctx); !errors.Is(err, task.ErrRevoked) {
			t.Errorf("task %s: Get error = %v, want ErrRevoked", r.ID, err)
		}
	}
	// A finished task keeps its result.
	done, _ := sleepy.Delay(ctx, b.client, 0)
	if v, err := done.Get(ctx); v != "ran" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := b.client.Revoke(ctx, done.ID, nil); err != nil {
		t.Fatal(err)
	}
	if st, err := done.Status(ctx); err != nil || st.State != task.Success {
		t.Fatalf("finished task after revoke: %+v, %v", st, err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs, want 2 (the running task and the finished one)", n)
	}
	if err := b.client.Revoke(ctx, "not an id", nil); err == nil {
		t.Fatal("Revoke of a bad ID succeeded")
	}
}
