package task_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/task"
)

// In a 3-node cluster (R3) tasks run, and a schedule fires once per
// interval: the stream's leader fires it, never every node.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	cl := mortartest.StartCluster(t, 3)
	conn := cl.Dial(t)
	c, err := task.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := waitCtx(t)
	var mu sync.Mutex
	var fires []time.Time
	startWorker(t, conn, nil, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			if task.RequestFrom(ctx).ID[:4] == "tick" {
				mu.Lock()
				fires = append(fires, time.Now())
				mu.Unlock()
			}
			return a.A + a.B, nil
		})
	})
	r, err := add.Delay(ctx, c, addArgs{20, 22})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Get(ctx); v != 42 || err != nil {
		t.Fatalf("Get = %d, %v", v, err)
	}
	if err := c.AddSchedule(ctx, task.Schedule{Name: "tick", Every: "1s", Task: add.Name, Kwargs: json.RawMessage(`{"A":1}`), IgnoreResult: true}); err != nil {
		t.Fatal(err)
	}
	// Watch it fire for a while: four seconds should bring three to five
	// fires, each about a second after the one before.
	deadline := time.After(4 * time.Second)
	for waiting := true; waiting; {
		select {
		case <-deadline:
			waiting = false
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if err := c.RemoveSchedule(ctx, "tick"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(fires, func(a, b time.Time) int { return a.Compare(b) })
	if len(fires) < 3 || len(fires) > 5 {
		t.Fatalf("%d fires in 4 s of an every-1s schedule", len(fires))
	}
	for i := 1; i < len(fires); i++ {
		if d := fires[i].Sub(fires[i-1]); d < 500*time.Millisecond {
			t.Fatalf("fires %d and %d %v apart: a duplicate", i-1, i, d)
		}
	}
}
