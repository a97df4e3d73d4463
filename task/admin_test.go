package task_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/task"
)

// bind creates queue q's consumer with a worker that stops at once.
func bind(t *testing.T, ctx context.Context, conn *mortar.Conn, queues ...string) {
	t.Helper()
	w, err := task.NewWorker(conn, &task.WorkerConfig{Queues: queues})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestQueueAdmin(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	if _, err := b.client.QueueStats(ctx, "q1"); mortar.ErrorCode(err) != mortar.CodeNotFound {
		t.Fatalf("stats of an unbound queue: %v, want not_found", err)
	}
	if _, err := b.client.QueueStats(ctx, "bad.queue"); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Fatalf("stats of a bad queue name: %v, want invalid_argument", err)
	}
	bind(t, ctx, b.conn, "q1")
	opts := &task.SendOpts{Queue: "q1"}
	for range 3 {
		if _, err := add.Apply(ctx, b.client, addArgs{1, 1}, opts); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := add.Apply(ctx, b.client, addArgs{1, 1}, &task.SendOpts{Queue: "q1", Countdown: time.Hour}); err != nil {
		t.Fatal(err)
	}
	st, err := b.client.QueueStats(ctx, "q1")
	if err != nil || st.Waiting != 3 || st.Delayed != 1 || st.Taken != 0 || st.Paused || st.Visibility != "30s" {
		t.Fatalf("QueueStats = %+v, %v", st, err)
	}
	resp, err := b.node.HTTPClient().Get(b.node.AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`mortar_task_queue_waiting{queue="q1"} 3`, `mortar_task_queue_delayed{queue="q1"} 1`, `mortar_task_queue_dead{queue="q1"} 0`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	all, err := b.client.Queues(ctx)
	if err != nil || len(all) != 1 || all[0].Queue != "q1" {
		t.Fatalf("Queues = %+v, %v", all, err)
	}
	if err := b.client.PauseQueue(ctx, "q1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.client.QueueStats(ctx, "q1"); !st.Paused || st.PausedUntil.Year() != 9999 {
		t.Fatalf("after pause: %+v", st)
	}
	var runs atomic.Int32
	startWorker(t, b.conn, &task.WorkerConfig{Queues: []string{"q1"}}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			runs.Add(1)
			return a.A + a.B, nil
		})
	})
	// Absence has no event to wait on: give the worker half a second.
	time.Sleep(500 * time.Millisecond)
	if n := runs.Load(); n != 0 {
		t.Fatalf("%d tasks ran from a paused queue", n)
	}
	if err := b.client.ResumeQueue(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	last, _ := add.Apply(ctx, b.client, addArgs{2, 2}, opts)
	if v, err := last.Get(ctx); v != 4 || err != nil {
		t.Fatalf("after resume: Get = %d, %v", v, err)
	}
	// Purge: a queue nobody works.
	bind(t, ctx, b.conn, "q2")
	for range 5 {
		add.Apply(ctx, b.client, addArgs{}, &task.SendOpts{Queue: "q2"})
	}
	add.Apply(ctx, b.client, addArgs{}, &task.SendOpts{Queue: "q2", Countdown: time.Hour})
	if n, err := b.client.PurgeQueue(ctx, "q2", false); n != 5 || err != nil {
		t.Fatalf("PurgeQueue = %d, %v; want 5", n, err)
	}
	if n, err := b.client.PurgeQueue(ctx, "q2", true); n != 1 || err != nil {
		t.Fatalf("PurgeQueue(delayed) = %d, %v; want 1", n, err)
	}
	if st, _ := b.client.QueueStats(ctx, "q2"); st.Waiting != 0 || st.Delayed != 0 {
		t.Fatalf("after purge: %+v", st)
	}
}

func TestDeadLetterAdmin(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	var healed atomic.Bool
	startWorker(t, b.conn, &task.WorkerConfig{Retry: task.RetryPolicy{MaxRetries: -1}}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			if !healed.Load() {
				return 0, errors.New("not yet")
			}
			return a.A + a.B, nil
		})
	})
	var ids []string
	for i := range 3 {
		r, err := add.Delay(ctx, b.client, addArgs{i, 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Get(ctx); err == nil {
			t.Fatal("a failing task succeeded")
		}
		ids = append(ids, r.ID)
	}
	dead, err := b.client.DeadLetters(ctx, task.QueueDefault, 0, 0)
	if err != nil || len(dead) != 3 {
		t.Fatalf("DeadLetters = %+v, %v", dead, err)
	}
	for i, d := range dead {
		if d.ID != ids[i] || d.Task != add.Name || d.Reason != "error" || d.Error != "not yet" || string(d.Kwargs) != `{"A":`+string(rune('0'+i))+`,"B":10}` {
			t.Errorf("dead letter %d = %+v", i, d)
		}
	}
	page, err := b.client.DeadLetters(ctx, task.QueueDefault, dead[0].Seq, 1)
	if err != nil || len(page) != 1 || page[0].Seq != dead[1].Seq {
		t.Fatalf("DeadLetters(after, 1) = %+v, %v", page, err)
	}
	if st, _ := b.client.QueueStats(ctx, task.QueueDefault); st.Dead != 3 {
		t.Fatalf("stats: %+v, want 3 dead", st)
	}
	if n, err := b.client.DiscardDead(ctx, task.QueueDefault, dead[0].Seq); n != 1 || err != nil {
		t.Fatalf("DiscardDead = %d, %v", n, err)
	}
	if _, err := b.client.DiscardDead(ctx, task.QueueDefault, dead[0].Seq); mortar.ErrorCode(err) != mortar.CodeNotFound {
		t.Fatalf("DiscardDead again = %v, want not_found", err)
	}
	healed.Store(true)
	if n, err := b.client.RetryDead(ctx, task.QueueDefault); n != 2 || err != nil {
		t.Fatalf("RetryDead = %d, %v", n, err)
	}
	for i, id := range ids[1:] {
		if v, err := add.Result(b.client, id).Get(ctx); v != i+1+10 || err != nil {
			t.Fatalf("retried dead letter %s: Get = %d, %v", id, v, err)
		}
	}
	if left, _ := b.client.DeadLetters(ctx, task.QueueDefault, 0, 0); len(left) != 0 {
		t.Fatalf("dead letters left: %+v", left)
	}
}

func TestWorkersAndHTTPSend(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	w := startWorker(t, b.conn, &task.WorkerConfig{Name: "listed", Queues: []string{"http"}}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	var ws []task.WorkerInfo
	for len(ws) == 0 {
		var err error
		if ws, err = b.client.Workers(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ws[0].Worker != "listed" || !ws[0].Online || ws[0].Queues[0] != "http" {
		t.Fatalf("Workers = %+v", ws)
	}
	body, _ := json.Marshal(map[string]any{"task": add.Name, "kwargs": map[string]int{"A": 40, "B": 2}, "queue": "http"})
	resp, err := b.node.HTTPClient().Post(b.node.AdminURL()+"/api/v1/task.send", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sent struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&sent)
	resp.Body.Close()
	if resp.StatusCode != 200 || sent.ID == "" {
		t.Fatalf("POST task.send: %s, %+v", resp.Status, sent)
	}
	if v, err := add.Result(b.client, sent.ID).Get(ctx); v != 42 || err != nil {
		t.Fatalf("Get = %d, %v", v, err)
	}
	resp, err = b.node.HTTPClient().Post(b.node.AdminURL()+"/api/v1/task.send", "application/json", bytes.NewReader([]byte(`{"task":"x","countdown":"soon"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad countdown: %s", resp.Status)
	}
	w.Stop(ctx)
	for {
		ws, _ = b.client.Workers(ctx)
		if len(ws) == 1 && !ws[0].Online || ctx.Err() != nil {
			break
		}
	}
	if len(ws) != 1 || ws[0].Online || ws[0].Type != task.EventWorkerOffline {
		t.Fatalf("after Stop: %+v", ws)
	}
}

func TestList(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	bind(t, ctx, b.conn, task.QueueDefault)
	q1, _ := add.Delay(ctx, b.client, addArgs{1, 1})
	d1, _ := add.Apply(ctx, b.client, addArgs{1, 1}, &task.SendOpts{Countdown: time.Hour})
	for _, c := range []struct {
		state string
		id    string
	}{{"queued", q1.ID}, {"delayed", d1.ID}} {
		got, err := b.client.List(ctx, c.state, "", 0)
		if err != nil || len(got) != 1 || got[0].ID != c.id || got[0].Task != add.Name || got[0].State != c.state {
			t.Fatalf("List(%s) = %+v, %v", c.state, got, err)
		}
	}
	if got, _ := b.client.List(ctx, "delayed", "", 0); got[0].Time.Before(time.Now().Add(59 * time.Minute)) {
		t.Fatalf("delayed until %v, want in an hour", got[0].Time)
	}
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	q1.Get(ctx)
	got, err := b.client.List(ctx, "success", "", 0)
	if err != nil || len(got) != 1 || got[0].ID != q1.ID || got[0].Worker == "" {
		t.Fatalf("List(success) = %+v, %v", got, err)
	}
	if _, err := b.client.List(ctx, "lost", "", 0); mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
		t.Fatalf("List(lost) = %v, want invalid_argument", err)
	}
}
