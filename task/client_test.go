package task_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/task"
)

func TestUnique(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	opts := &task.SendOpts{UniqueFor: time.Second}
	first, err := add.Apply(ctx, b.client, addArgs{1, 2}, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = add.Apply(ctx, b.client, addArgs{1, 2}, opts)
	dup, ok := errors.AsType[*task.DuplicateError](err)
	if !ok || dup.ID != first.ID || !errors.Is(err, task.ErrDuplicate) || !errors.Is(err, &mortar.Error{Code: mortar.CodeAlreadyExists}) {
		t.Fatalf("second send = %v, want a duplicate of %s", err, first.ID)
	}
	// Other arguments, or an explicit key, are another task.
	if _, err := add.Apply(ctx, b.client, addArgs{2, 2}, opts); err != nil {
		t.Fatalf("other arguments: %v", err)
	}
	keyed := &task.SendOpts{UniqueFor: time.Second, UniqueKey: "nightly"}
	if _, err := add.Apply(ctx, b.client, addArgs{5, 5}, keyed); err != nil {
		t.Fatal(err)
	}
	if _, err := add.Apply(ctx, b.client, addArgs{6, 6}, keyed); !errors.Is(err, task.ErrDuplicate) {
		t.Fatalf("same key, other arguments: %v, want a duplicate", err)
	}
	// Once the window has passed (TTLs fire up to a second late), the
	// task can be sent again.
	start := time.Now()
	for {
		_, err := add.Apply(ctx, b.client, addArgs{1, 2}, opts)
		if err == nil {
			break
		}
		if !errors.Is(err, task.ErrDuplicate) || ctx.Err() != nil {
			t.Fatalf("resend: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // the TTL's expiry has no notice to wait on
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the 1 s window lasted %v", d)
	}
}

func TestSendMany(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 32}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	const n = 2000
	args := make([]addArgs, n)
	for i := range args {
		args[i] = addArgs{i, 1}
	}
	rs, err := add.DelayMany(ctx, b.client, args, nil)
	if err != nil || len(rs) != n {
		t.Fatalf("DelayMany: %d results, %v", len(rs), err)
	}
	for i, r := range rs {
		if v, err := r.Get(ctx); v != i+1 || err != nil {
			t.Fatalf("task %d: Get = %d, %v", i, v, err)
		}
	}
	calls := []task.Call{{Task: add.Name}, {Task: "bad name"}, {Task: add.Name, Args: []byte(`[1,`)}, {Task: add.Name}}
	got, err := b.client.SendMany(ctx, calls)
	if err == nil || !strings.Contains(err.Error(), "call 1") || !strings.Contains(err.Error(), "call 2") || strings.Contains(err.Error(), "call 3") {
		t.Fatalf("SendMany error = %v", err)
	}
	if got[0] == nil || got[1] != nil || got[2] != nil || got[3] == nil {
		t.Fatalf("SendMany results = %v", got)
	}
	if _, err := add.DelayMany(ctx, b.client, args[:2], &task.SendOpts{ID: "same"}); err == nil {
		t.Fatal("DelayMany with one ID for all succeeded")
	}
}

func TestProgressAndTrackStarted(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	release := make(chan struct{})
	startWorker(t, b.conn, &task.WorkerConfig{TrackStarted: true}, func(w *task.Worker) {
		task.Handle(w, sleepy, func(ctx context.Context, d time.Duration) (string, error) {
			<-release
			if err := task.Progress(ctx, map[string]int{"done": 50}); err != nil {
				return "", err
			}
			<-release
			return "finished", nil
		})
	})
	if err := task.Progress(ctx, 1); err == nil {
		t.Fatal("Progress outside a handler succeeded")
	}
	r, err := sleepy.Delay(ctx, b.client, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.WaitFor(ctx, func(s *task.Status) bool { return s.State == task.Started })
	if err != nil || st.Progress != nil {
		t.Fatalf("started: %+v, %v", st, err)
	}
	release <- struct{}{}
	st, err = r.WaitFor(ctx, func(s *task.Status) bool { return s.Progress != nil })
	if err != nil || st.State != task.Started || string(st.Progress) != `{"done":50}` {
		t.Fatalf("progress: %+v, %v", st, err)
	}
	release <- struct{}{}
	if v, err := r.Get(ctx); v != "finished" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
}

func TestSendBatch(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 16}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	calls := make([]task.Call, 1500) // two batches
	for i := range calls {
		calls[i] = task.Call{Task: add.Name, Kwargs: []byte(`{"A":` + strconv.Itoa(i) + `,"B":1}`)}
	}
	rs, err := b.client.SendBatch(ctx, calls)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if v, err := add.Result(b.client, r.ID).Get(ctx); v != i+1 || err != nil {
			t.Fatalf("task %d: Get = %d, %v", i, v, err)
		}
	}
	// A bad call fails its whole batch, and only that batch.
	calls[1200].Task = "bad name"
	rs, err = b.client.SendBatch(ctx, calls)
	if err == nil || !strings.Contains(err.Error(), "calls 1000 to 1499") || strings.Contains(err.Error(), "calls 0 to 999") {
		t.Fatalf("SendBatch error = %v", err)
	}
	if rs[0] == nil || rs[1000] != nil || rs[1499] != nil {
		t.Fatal("results do not follow the batches")
	}
}
