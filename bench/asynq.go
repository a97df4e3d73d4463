package main

import (
	"context"
	"errors"
	"io"
	"log"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// asynqConcurrency is the asynq.Server's Concurrency (its worker
// goroutines).
const asynqConcurrency = 64

func init() {
	registerTask(taskSystem{
		name: "asynq",
		about: "github.com/hibiken/asynq v0.26.0 on " + redisAbout + ". Producer: asynq.Client.Enqueue from 64 goroutines (default options: queue \"default\", 25 retries); " +
			"worker: asynq.Server in the benchmark process, Concurrency " + strconv.Itoa(asynqConcurrency) + ", otherwise defaults: " +
			"an idle server polls Redis every TaskCheckInterval (1 s, jittered to 0.5–1.5 s), which sets its pickup latency and also delays the start of every throughput run by one such wait " +
			"(the queue is idle after the warmup): about 1 s, some 10% of a 100,000-task run and half of a -short one. " +
			"Results on: Enqueue with asynq.Retention(1h), and the handler writes a 2-byte result with the task's ResultWriter " +
			"(asynq keeps a result only for a task with a retention).",
		results: true,
		check:   checkRedis,
		start:   startAsynq,
	})
}

const (
	asynqNoop   = "noop"
	asynqResult = "noop_result"
	// asynqProcessedKey is where asynq counts the tasks of queue "default"
	// it has run and acknowledged (internal/base.ProcessedTotalKey).
	asynqProcessedKey = "asynq:{default}:processed"
)

func startAsynq(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
	rp, err := startRedis(ctx, dir)
	if err != nil {
		return nil, err
	}
	opt := asynq.RedisClientOpt{Addr: rp.addr}
	client := asynq.NewClient(opt)
	probe := &taskProbe{}
	result := []byte("ok")
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: asynqConcurrency,
		Logger:      asynqLogger{log.New(stderr, "asynq: ", 0)},
		LogLevel:    asynq.WarnLevel,
	})
	err = srv.Start(asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
		probe.started()
		if t.Type() == asynqResult {
			if _, err := t.ResultWriter().Write(result); err != nil {
				return err
			}
		}
		return nil
	}))
	if err != nil {
		return nil, errors.Join(err, client.Close(), rp.stop())
	}
	stop := func() error {
		srv.Shutdown()
		return errors.Join(client.Close(), rp.stop())
	}
	retain := asynq.Retention(time.Hour)
	q := goQueue{
		enqueue: func(ctx context.Context, i int, results bool) error {
			payload := strconv.AppendInt(nil, int64(i), 10)
			var err error
			if results {
				_, err = client.EnqueueContext(ctx, asynq.NewTask(asynqResult, payload), retain)
			} else {
				_, err = client.EnqueueContext(ctx, asynq.NewTask(asynqNoop, payload))
			}
			return err
		},
		acked: func(ctx context.Context) (int64, error) {
			n, err := rp.client.Get(ctx, asynqProcessedKey).Int64()
			if errors.Is(err, redis.Nil) {
				return 0, nil // nothing processed yet
			}
			return n, err
		},
	}
	return newGoTaskServer(q, probe, []int{rp.pid()}, stop), nil
}

// asynqLogger adapts a *log.Logger to asynq.Logger.
type asynqLogger struct{ l *log.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Print(append([]any{"debug: "}, args...)...) }
func (a asynqLogger) Info(args ...any)  { a.l.Print(append([]any{"info: "}, args...)...) }
func (a asynqLogger) Warn(args ...any)  { a.l.Print(append([]any{"warn: "}, args...)...) }
func (a asynqLogger) Error(args ...any) { a.l.Print(append([]any{"error: "}, args...)...) }
func (a asynqLogger) Fatal(args ...any) { a.l.Print(append([]any{"fatal: "}, args...)...) }
