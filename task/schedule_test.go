package task_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/task"
)

func TestSchedules(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	runs := make(chan *task.Request, 16)
	startWorker(t, b.conn, nil, func(w *task.Worker) {
		task.Handle(w, add, func(ctx context.Context, a addArgs) (int, error) {
			runs <- task.RequestFrom(ctx)
			return a.A + a.B, nil
		})
	})
	kw := json.RawMessage(`{"A":1,"B":2}`)
	for _, sc := range []task.Schedule{
		{Name: "every", Every: "1s", Task: add.Name, Kwargs: kw},
		{Name: "cron", Cron: "* * * * * *", TimeZone: "Europe/Paris", Task: add.Name, Kwargs: kw},
		{Name: "once", At: time.Now().Add(500 * time.Millisecond), Task: add.Name, Kwargs: kw},
	} {
		if err := b.client.AddSchedule(ctx, sc); err != nil {
			t.Fatalf("AddSchedule(%s): %v", sc.Name, err)
		}
	}
	list, err := b.client.Schedules(ctx)
	if err != nil || len(list) != 3 || list[0].Name != "cron" || list[0].TimeZone != "Europe/Paris" || list[1].Name != "every" {
		t.Fatalf("Schedules = %+v, %v", list, err)
	}
	// Each schedule runs; the repeating ones run twice, each run with its
	// own ID.
	ids := map[string]bool{}
	count := map[string]int{}
	for count["every"] < 2 || count["cron"] < 2 || count["once"] < 1 {
		select {
		case r := <-runs:
			name, _, _ := strings.Cut(r.ID, "-")
			count[name]++
			if ids[r.ID] {
				t.Fatalf("run ID %s twice", r.ID)
			}
			ids[r.ID] = true
			if v, err := add.Result(b.client, r.ID).Get(ctx); v != 3 || err != nil {
				t.Fatalf("run %s: Get = %d, %v", r.ID, v, err)
			}
		case <-ctx.Done():
			t.Fatalf("runs so far %v: %v", count, ctx.Err())
		}
	}
	if count["once"] != 1 {
		t.Fatalf("the one-shot schedule ran %d times", count["once"])
	}
	list, _ = b.client.Schedules(ctx)
	if len(list) != 2 {
		t.Fatalf("after the one-shot fired: %+v", list)
	}
	for _, name := range []string{"every", "cron"} {
		if err := b.client.RemoveSchedule(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.client.RemoveSchedule(ctx, "every"); mortar.ErrorCode(err) != mortar.CodeNotFound {
		t.Fatalf("RemoveSchedule again = %v, want not_found", err)
	}
	if list, _ := b.client.Schedules(ctx); len(list) != 0 {
		t.Fatalf("after remove: %+v", list)
	}
}

func TestScheduleErrors(t *testing.T) {
	b := setup(t)
	ctx := waitCtx(t)
	for _, sc := range []task.Schedule{
		{Name: "a", Task: "t"},
		{Name: "a", Every: "1s", Cron: "* * * * *", Task: "t"},
		{Name: "a", Every: "10ms", Task: "t"},
		{Name: "a", Cron: "* * *", Task: "t"},
		{Name: "a", Cron: "61 * * * *", Task: "t"},
		{Name: "a", Cron: "* * * * *", TimeZone: "Mars/Olympus", Task: "t"},
		{Name: "a", Every: "1s", TimeZone: "UTC", Task: "t"},
		{Name: "a b", Every: "1s", Task: "t"},
		{Name: "a", Every: "1s", Task: ""},
		{Name: "a", Every: "1s", Task: "t", Args: json.RawMessage(`{}`)},
		{Name: "a", Every: "1s", Task: "t", Expires: "-1s"},
	} {
		err := b.client.AddSchedule(ctx, sc)
		if mortar.ErrorCode(err) != mortar.CodeInvalidArgument {
			t.Errorf("AddSchedule(%+v) = %v, want invalid_argument", sc, err)
		}
	}
}
