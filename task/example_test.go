package task_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/task"
)

// AddArgs are the arguments of billing.add.
type AddArgs struct{ A, B int }

// Add is defined once and shared by producers and workers.
var Add = task.Define[AddArgs, int]("billing.add")

// A worker runs tasks until it is stopped.
func ExampleWorker() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	w, err := task.NewWorker(conn, &task.WorkerConfig{
		Queues:      []string{"urgent", "default"}, // urgent first
		Concurrency: 8,
		Retry:       task.RetryPolicy{MaxRetries: 5, BackoffMin: time.Second, BackoffMax: time.Minute},
	})
	if err != nil {
		log.Fatal(err)
	}
	task.Handle(w, Add, func(ctx context.Context, a AddArgs) (int, error) {
		return a.A + a.B, nil
	})
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer w.Stop(ctx) // finishes running tasks
	select {}         // serve until the process ends
}

// A producer sends a task and waits for its result.
func ExampleTask_Delay() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c, err := task.New(conn, nil)
	if err != nil {
		log.Fatal(err)
	}
	res, err := Add.Apply(ctx, c, AddArgs{2, 3}, &task.SendOpts{Queue: "urgent", Expires: time.Now().Add(time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	sum, err := res.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)
}

// Workflows: a chain passes each result on; a chord joins a group.
func ExampleClient_Chord() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c, _ := task.New(conn, nil)
	sum := task.Define[[]int, int]("billing.sum")
	r, err := c.Chord(ctx, []task.Sig{Add.S(AddArgs{1, 2}), Add.S(AddArgs{3, 4})}, sum.Next())
	if err != nil {
		log.Fatal(err)
	}
	total, err := sum.Result(c, r.ID).Get(ctx)
	fmt.Println(total, err)
}

// A schedule sends a task every weekday at 08:00 in Paris.
func ExampleClient_AddSchedule() {
	ctx := context.Background()
	conn, err := mortar.Dial(ctx, mortar.DefaultURL, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c, _ := task.New(conn, nil)
	err = c.AddSchedule(ctx, task.Schedule{
		Name: "morning-report", Task: "reports.daily",
		Cron: "0 8 * * 1-5", TimeZone: "Europe/Paris", Expires: "1h",
	})
	if err != nil {
		log.Fatal(err)
	}
}
