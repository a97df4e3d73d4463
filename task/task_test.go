package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/task"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type addArgs struct {
	A, B int
}

var add = task.Define[addArgs, int]("test.add")

type bundle struct {
	node   *mortartest.Node
	conn   *mortar.Conn
	client *task.Client
}

func setup(t *testing.T) *bundle {
	t.Helper()
	n := mortartest.StartNode(t)
	conn := n.Dial(t)
	c, err := task.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{node: n, conn: conn, client: c}
}

// startWorker starts a worker with cfg and the handlers register adds,
// stopped when the test ends.
func startWorker(t *testing.T, conn *mortar.Conn, cfg *task.WorkerConfig, register func(*task.Worker)) *task.Worker {
	t.Helper()
	var c task.WorkerConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	w, err := task.NewWorker(conn, &c)
	if err != nil {
		t.Fatal(err)
	}
	register(w)
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return w
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDelayGet(t *testing.T) {
	b := setup(t)
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			if r := task.RequestFrom(ctx); r == nil || r.Task != add.Name || r.Queue != task.QueueDefault {
				return 0, fmt.Errorf("request %+v", r)
			}
			return a.A + a.B, nil
		})
	})
	ctx := waitCtx(t)
	res, err := add.Delay(ctx, b.client, addArgs{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Get(ctx)
	if err != nil || got != 5 {
		t.Fatalf("Get = %d, %v; want 5", got, err)
	}
	st, err := res.Status(ctx)
	if err != nil || st.State != task.Success || st.Task != add.Name || st.DateDone.IsZero() || st.Worker == "" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
}

// A task published with plain NATS, laid out as another language would
// (positional arguments, Celery's headers), runs and stores its result.
func TestForeignProducer(t *testing.T) {
	b := setup(t)
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, task.Define[[2]int, int]("py.add"), func(ctx context.Context, a [2]int) (int, error) {
			return a[0] + a[1], nil
		})
	})
	ctx := waitCtx(t)
	msg := nats.NewMsg(taskwire.QueueSubject(task.QueueDefault))
	msg.Header.Set("task", "py.add")
	msg.Header.Set("id", "py-1")
	msg.Header.Set("lang", "py")
	msg.Data = []byte(`[[20, 22], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`)
	if _, err := b.conn.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	raw, err := b.client.Result("py-1").Get(ctx)
	if err != nil || string(raw) != "42" {
		t.Fatalf("Get = %s, %v; want 42", raw, err)
	}
	// The same in msgpack: [[1, 2], {}, nil].
	msg = nats.NewMsg(taskwire.QueueSubject(task.QueueDefault))
	msg.Header.Set("task", "py.add")
	msg.Header.Set("id", "mp-1")
	msg.Header.Set("content-type", "application/x-msgpack")
	msg.Data = []byte{0x93, 0x92, 0x01, 0x02, 0x80, 0xc0}
	if _, err := b.conn.JetStream().PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if raw, err := b.client.Result("mp-1").Get(ctx); err != nil || string(raw) != "3" {
		t.Fatalf("msgpack: Get = %s, %v; want 3", raw, err)
	}
}

func TestRetryThenSuccess(t *testing.T) {
	b := setup(t)
	var runs atomic.Int32
	flaky := task.Define[struct{}, string]("test.flaky")
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, flaky, func(ctx context.Context, _ struct{}) (string, error) {
			n := runs.Add(1)
			if got := task.RequestFrom(ctx).Retries; got != int(n)-1 {
				return "", task.SkipRetry(fmt.Errorf("run %d saw Retries %d", n, got))
			}
			if n < 3 {
				return "", errors.New("not yet")
			}
			return "done", nil
		})
	})
	ctx := waitCtx(t)
	res, err := flaky.Apply(ctx, b.client, struct{}{}, &task.SendOpts{BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Get(ctx)
	if err != nil || got != "done" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	st, _ := res.Status(ctx)
	if st.Retries != 2 || runs.Load() != 3 {
		t.Fatalf("retries %d, runs %d; want 2, 3", st.Retries, runs.Load())
	}
}

// deadLetters returns the dead letters of queue.
func deadLetters(t *testing.T, ctx context.Context, js jetstream.JetStream, queue string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(ctx, taskwire.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject == taskwire.DeadSubject(queue) {
			out = append(out, m)
		}
	}
	return out
}

func TestRetriesExhausted(t *testing.T) {
	b := setup(t)
	var runs atomic.Int32
	fail := task.Define[struct{}, int]("test.fail")
	startWorker(t, b.conn, &task.WorkerConfig{Retry: task.RetryPolicy{MaxRetries: 2, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}},
		func(w *task.Worker) {
			task.Handle(w, fail, func(ctx context.Context, _ struct{}) (int, error) {
				runs.Add(1)
				return 0, errors.New("broken")
			})
		})
	ctx := waitCtx(t)
	res, err := fail.Delay(ctx, b.client, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = res.Get(ctx)
	te, ok := errors.AsType[*task.TaskError](err)
	if !ok || te.Type != "error" || !strings.Contains(te.Message, "broken") {
		t.Fatalf("Get error = %v, want the handler's error", err)
	}
	if runs.Load() != 3 {
		t.Fatalf("%d runs, want 3 (1 + 2 retries)", runs.Load())
	}
	dead := deadLetters(t, ctx, b.conn.JetStream(), task.QueueDefault)
	if len(dead) != 1 || dead[0].Header.Get(taskwire.HdrReason) != "error" || dead[0].Header.Get("id") != res.ID {
		t.Fatalf("dead letters = %+v", dead)
	}
}

func TestSkipRetryAndPanic(t *testing.T) {
	b := setup(t)
	var runs atomic.Int32
	skip := task.Define[struct{}, int]("test.skip")
	boom := task.Define[struct{}, int]("test.boom")
	startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 1}, func(w *task.Worker) {
		task.Handle(w, skip, func(ctx context.Context, _ struct{}) (int, error) {
			runs.Add(1)
			return 0, task.SkipRetry(errors.New("bad input"))
		})
		task.Handle(w, boom, func(ctx context.Context, _ struct{}) (int, error) {
			runs.Add(1)
			panic("boom")
		})
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	ctx := waitCtx(t)
	r1, _ := skip.Delay(ctx, b.client, struct{}{})
	r2, _ := boom.Delay(ctx, b.client, struct{}{})
	r3, _ := add.Delay(ctx, b.client, addArgs{1, 1})
	if _, err := r1.Get(ctx); err == nil || !strings.Contains(err.Error(), "bad input") {
		t.Errorf("skip: Get error = %v", err)
	}
	_, err := r2.Get(ctx)
	if te, ok := errors.AsType[*task.TaskError](err); !ok || te.Type != "panic" || !strings.Contains(te.Traceback, "task_test.go") {
		t.Errorf("panic: Get error = %#v", err)
	}
	if v, err := r3.Get(ctx); v != 2 || err != nil {
		t.Errorf("after a panic: Get = %d, %v; want 2", v, err)
	}
	if runs.Load() != 2 {
		t.Errorf("%d runs, want 2 (neither retried)", runs.Load())
	}
}

func TestUnknownAndMalformed(t *testing.T) {
	b := setup(t)
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	ctx := waitCtx(t)
	res, err := b.client.Send(ctx, "test.nobody", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Get(ctx); err == nil || !strings.Contains(err.Error(), "unknown_task") {
		t.Fatalf("unknown: Get error = %v", err)
	}
	if _, err := b.conn.JetStream().Publish(ctx, taskwire.QueueSubject(task.QueueDefault), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	// The malformed message has no ID to wait on: wait for its dead
	// letter through the dead stream's last message.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := b.conn.JetStream().Stream(ctx, taskwire.DeadStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(dctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{taskwire.DeadSubject(task.QueueDefault)}})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for len(reasons) < 2 {
		m, err := cons.Next(jetstream.FetchContext(dctx))
		if err != nil {
			t.Fatalf("dead letters: %v (have %v)", err, reasons)
		}
		reasons[m.Headers().Get(taskwire.HdrReason)] = true
	}
	if !reasons["unknown_task"] || !reasons["malformed"] {
		t.Fatalf("dead letter reasons %v", reasons)
	}
}

func TestCountdownAndExpires(t *testing.T) {
	b := setup(t)
	var ranAt sync.Map
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			ranAt.Store(task.RequestFrom(ctx).ID, time.Now())
			return a.A + a.B, nil
		})
	})
	ctx := waitCtx(t)
	const countdown = 1500 * time.Millisecond
	sent := time.Now()
	res, err := add.Apply(ctx, b.client, addArgs{1, 2}, &task.SendOpts{Countdown: countdown})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Get(ctx); v != 3 || err != nil {
		t.Fatalf("Get = %d, %v", v, err)
	}
	at, _ := ranAt.Load(res.ID)
	if d := at.(time.Time).Sub(sent); d < countdown-10*time.Millisecond {
		t.Fatalf("ran %v after the send, before its countdown of %v", d, countdown)
	}
	exp, err := add.Apply(ctx, b.client, addArgs{1, 2}, &task.SendOpts{Expires: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exp.Get(ctx); !errors.Is(err, task.ErrRevoked) {
		t.Fatalf("expired: Get error = %v, want ErrRevoked", err)
	}
	if _, ran := ranAt.Load(exp.ID); ran {
		t.Fatal("an expired task ran")
	}
}

func TestSendErrors(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	for _, c := range []struct {
		name         string
		args, kwargs string
		opts         *task.SendOpts
	}{
		{"bad name", "", "", nil},
		{"t", `{}`, "", nil},
		{"t", "", `[]`, nil},
		{"t", `[1,`, "", nil},
		{"t", "", "", &task.SendOpts{Queue: "a.b"}},
		{"t", "", "", &task.SendOpts{ID: "a b"}},
	} {
		_, err := b.client.Send(ctx, c.name, json.RawMessage(c.args), json.RawMessage(c.kwargs), c.opts)
		if mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
			t.Errorf("Send(%q, %q, %q, %+v) = %v, want invalid_argument", c.name, c.args, c.kwargs, c.opts, err)
		}
	}
	big := json.RawMessage(`["` + strings.Repeat("x", taskwire.MaxMessageBytes) + `"]`)
	if _, err := b.client.Send(ctx, "t", big, nil, nil); mortar.ErrorCode(err) != mortar.CodeTooLarge {
		t.Errorf("Send(1 MiB) = %v, want too_large", err)
	}
}

func TestWorkerMetrics(t *testing.T) {
	b := setup(t)
	reg := prometheus.NewRegistry()
	startWorker(t, b.conn, &task.WorkerConfig{Metrics: reg}, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	ctx := waitCtx(t)
	r, _ := add.Delay(ctx, b.client, addArgs{1, 1})
	r.Get(ctx)
	unknown, _ := b.client.Send(ctx, "test.nobody", nil, nil, nil)
	unknown.Wait(ctx)
	// Counted before the result is stored, so the Gets above order them.
	for _, c := range []struct {
		task, state string
		want        float64
	}{{"test.add", "SUCCESS", 1}, {"test.add", "FAILURE", 0}, {"unknown", "FAILURE", 1}, {"mortar.map", "SUCCESS", 0}} {
		if got := metricValue(t, reg, "mortar_task_runs_total", map[string]string{"task": c.task, "state": c.state}); got != c.want {
			t.Errorf("mortar_task_runs_total{task=%q,state=%q} = %v, want %v", c.task, c.state, got, c.want)
		}
	}
	if got := metricValue(t, reg, "mortar_task_run_seconds", map[string]string{"task": "test.add"}); got != 1 {
		t.Errorf("mortar_task_run_seconds{task=test.add} counted %v runs, want 1", got)
	}
}

// metricValue is the value (a histogram's count) of the series of name
// with labels in reg; -1 if there is none.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}
