package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar/mortartest"
	"github.com/mortarhq/mortar/task"
)

// runCounter counts runs by task ID.
type runCounter struct {
	mu   sync.Mutex
	runs map[string]int
}

func (c *runCounter) add(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[id]++
	return c.runs[id]
}

func (c *runCounter) get(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

// Tasks pending, delayed, retrying and scheduled survive a restart of
// the node, and each runs once.
func TestNodeRestart(t *testing.T) {
	n := mortartest.StartNode(t)
	counter := &runCounter{runs: map[string]int{}}
	flaky := task.Define[struct{}, string]("test.restart.flaky")
	register := func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			counter.add(task.RequestFrom(ctx).ID)
			return a.A + a.B, nil
		})
		task.Handle(w, flaky, func(ctx context.Context, _ struct{}) (string, error) {
			if counter.add(task.RequestFrom(ctx).ID) == 1 {
				return "", task.RetryIn(2*time.Second, errors.New("first run fails"))
			}
			return "second run", nil
		})
	}
	ctx := waitCtx(t)
	conn1 := n.Dial(t)
	c1, _ := task.New(conn1, nil)
	w1 := startWorker(t, conn1, nil, register)
	retrying, err := flaky.Delay(ctx, c1, struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := retrying.WaitFor(ctx, func(s *task.Status) bool { return s.State == task.Retry }); err != nil {
		t.Fatal(err)
	}
	if err := w1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	pending, _ := add.Delay(ctx, c1, addArgs{1, 1})
	delayed, _ := add.Apply(ctx, c1, addArgs{2, 2}, &task.SendOpts{Countdown: 2 * time.Second})
	if err := c1.AddSchedule(ctx, task.Schedule{Name: "tick", Every: "1s", Task: add.Name, Kwargs: json.RawMessage(`{"A":3,"B":3}`)}); err != nil {
		t.Fatal(err)
	}
	conn1.Close()

	n.Restart()
	conn2 := n.Dial(t)
	c2, _ := task.New(conn2, nil)
	for _, want := range []struct {
		state string
		ids   []string
	}{{"queued", []string{pending.ID}}, {"delayed", []string{delayed.ID, retrying.ID}}} {
		got, err := c2.List(ctx, want.state, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range want.ids {
			if !containsID(got, id) {
				t.Fatalf("after restart, %s tasks %+v lack %s", want.state, got, id)
			}
		}
	}
	if scs, err := c2.Schedules(ctx); err != nil || len(scs) != 1 {
		t.Fatalf("after restart, schedules %+v, %v", scs, err)
	}
	startWorker(t, conn2, nil, register)
	for _, id := range []string{pending.ID, delayed.ID, retrying.ID} {
		if _, err := c2.Result(id).Get(ctx); err != nil {
			t.Fatalf("task %s after restart: %v", id, err)
		}
	}
	// A run of the schedule after the restart: its ID names the
	// schedule. Results have no "any key" notice to wait on: poll.
	for ticked := false; !ticked; time.Sleep(50 * time.Millisecond) {
		ls, err := c2.List(ctx, "success", "", 1000)
		if err != nil {
			t.Fatalf("the schedule did not fire after the restart: %v", err)
		}
		for _, l := range ls {
			ticked = ticked || strings.HasPrefix(l.ID, "tick-")
		}
	}
	if err := c2.RemoveSchedule(ctx, "tick"); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{pending.ID: 1, delayed.ID: 1, retrying.ID: 2} {
		if got := counter.get(id); got != want {
			t.Errorf("task %s ran %d times, want %d", id, got, want)
		}
	}
}

func containsID(ls []task.Listed, id string) bool {
	for _, l := range ls {
		if l.ID == id {
			return true
		}
	}
	return false
}
