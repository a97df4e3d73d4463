package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/mortarhq/mortar/task"
)

var (
	double = task.Define[int, int]("test.double")
	sum    = task.Define[[]int, int]("test.sum")
	pair   = task.Define[[2]int, int]("test.pair")
	onErr  = task.Define[string, string]("test.onerr")
	broken = task.Define[int, int]("test.broken")
)

func canvasWorkers(t *testing.T, b *bundle, n int) {
	for range n {
		startWorker(t, b.conn, &task.WorkerConfig{Concurrency: 8}, func(w *task.Worker) {
			task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
			task.Handle(w, double, func(ctx context.Context, v int) (int, error) { return 2 * v, nil })
			task.Handle(w, sum, func(ctx context.Context, vs []int) (int, error) {
				s := 0
				for _, v := range vs {
					s += v
				}
				return s, nil
			})
			task.Handle(w, pair, func(ctx context.Context, p [2]int) (int, error) { return p[0] + p[1], nil })
			task.Handle(w, onErr, func(ctx context.Context, id string) (string, error) { return "handled " + id, nil })
			task.Handle(w, broken, func(ctx context.Context, v int) (int, error) {
				return 0, task.SkipRetry(errors.New("broken"))
			})
		})
	}
}

func TestChain(t *testing.T) {
	b := setup(t)
	canvasWorkers(t, b, 1)
	ctx := waitCtx(t)
	r, err := b.client.Chain(ctx, add.S(addArgs{1, 2}), double.Next(), double.Next())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := double.Result(b.client, r.ID).Get(ctx); v != 12 || err != nil {
		t.Fatalf("chain: Get = %d, %v; want 12", v, err)
	}
	// A failure stops the chain.
	first := broken.S(1)
	first.ID = "chain-broken-first"
	last, err := b.client.Chain(ctx, first, double.Next())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Result(first.ID).Get(ctx); err == nil {
		t.Fatal("the broken task succeeded")
	}
	if st, _ := last.Status(ctx); st.State != task.Pending {
		t.Fatalf("the task after a failure: %+v", st)
	}
	if _, err := b.client.Chain(ctx); err == nil {
		t.Fatal("an empty chain was sent")
	}
}

func TestGroupAndChord(t *testing.T) {
	b := setup(t)
	canvasWorkers(t, b, 2)
	ctx := waitCtx(t)
	var header []task.Sig
	want := 0
	for i := range 40 {
		header = append(header, add.S(addArgs{i, 1}))
		want += i + 1
	}
	g, err := b.client.Group(ctx, header[:10]...)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := g.Get(ctx)
	if err != nil || len(vs) != 10 || string(vs[9]) != "10" {
		t.Fatalf("group: %s, %v", vs, err)
	}
	body := sum.Next()
	r, err := b.client.Chord(ctx, header, body)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := sum.Result(b.client, r.ID).Get(ctx); v != want || err != nil {
		t.Fatalf("chord: Get = %d, %v; want %d", v, err, want)
	}
	// A header task that fails fails the chord: the body never runs, its
	// errback does.
	eb := onErr.Next()
	eb.ID = "chord-errback"
	r, err = b.client.Chord(ctx, []task.Sig{add.S(addArgs{1, 1}), broken.S(1)}, sum.Next().LinkError(eb))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Get(ctx)
	if te, ok := errors.AsType[*task.TaskError](err); !ok || te.Type != "chord_error" {
		t.Fatalf("failed chord: Get error = %v", err)
	}
	if v, err := onErr.Result(b.client, eb.ID).Get(ctx); v != "handled "+r.ID || err != nil {
		t.Fatalf("chord errback: Get = %q, %v", v, err)
	}
	if _, err := b.client.Group(ctx); err == nil {
		t.Fatal("an empty group was sent")
	}
}

func TestLinks(t *testing.T) {
	b := setup(t)
	canvasWorkers(t, b, 1)
	ctx := waitCtx(t)
	cb := double.Next()
	cb.ID = "link-cb"
	if _, err := b.client.Apply(ctx, add.S(addArgs{20, 1}).Link(cb)); err != nil {
		t.Fatal(err)
	}
	if v, err := double.Result(b.client, cb.ID).Get(ctx); v != 42 || err != nil {
		t.Fatalf("link: Get = %d, %v; want 42", v, err)
	}
	eb := onErr.Next()
	eb.ID = "link-eb"
	failed, err := b.client.Apply(ctx, broken.S(1).LinkError(eb))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := onErr.Result(b.client, eb.ID).Get(ctx); v != "handled "+failed.ID || err != nil {
		t.Fatalf("link_error: Get = %q, %v", v, err)
	}
}

func TestMapStarmapChunks(t *testing.T) {
	b := setup(t)
	canvasWorkers(t, b, 1)
	ctx := waitCtx(t)
	r, err := b.client.Apply(ctx, double.Map([]int{1, 2, 3}))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get(ctx); string(v) != "[2,4,6]" || err != nil {
		t.Fatalf("map: Get = %s, %v", v, err)
	}
	r, err = b.client.Apply(ctx, task.Starmap(pair.Name, []json.RawMessage{[]byte("[1,2]"), []byte("[3,4]")}))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get(ctx); string(v) != "[3,7]" || err != nil {
		t.Fatalf("starmap: Get = %s, %v", v, err)
	}
	g, err := b.client.Group(ctx, double.Chunks([]int{1, 2, 3, 4, 5, 6, 7}, 3)...)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := g.Get(ctx)
	if err != nil || len(vs) != 3 || string(vs[0]) != "[2,4,6]" || string(vs[2]) != "[14]" {
		t.Fatalf("chunks: %s, %v", vs, err)
	}
	r, _ = b.client.Apply(ctx, broken.Map([]int{1}))
	if _, err := r.Get(ctx); err == nil {
		t.Fatal("a map over a failing task succeeded")
	}
}
