package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/mortarhq/mortar/task"
)

// mortar's task queue: package task against a mortar node process.

// mortarWorkers is the worker's concurrency.
const mortarWorkers = 64

// mortarBatch is how many tasks the bulk producer hands SendMany at once.
const mortarBatch = 1024

func init() {
	const about = "mortar's task queue (package task) against a mortar node process. " +
		"Worker: one task.Worker in this process, Concurrency 64, at-least-once (acknowledged after the task ends), " +
		"the no-op handler registered with task.Handle (typed JSON arguments). " +
		"Results on: the worker stores each result in the results bucket before acknowledging; off: SendOpts.IgnoreResult."
	bulk := " Producer: Client.SendMany from 4 goroutines, batches of 1024 (acks pipelined)."
	registerTask(taskSystem{
		name: "mortar", about: about + bulk + " Node --durability interval (fsync every 2 minutes).", results: true,
		start: func(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
			return startMortarTasks(ctx, dir, "interval", batchMany, stderr)
		},
	})
	registerTask(taskSystem{
		name: "mortar-send", about: "as mortar, but the producer is 64 goroutines calling Client.Send, one task at a time (each waits for the engine's ack).", results: true,
		start: func(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
			return startMortarTasks(ctx, dir, "interval", batchNone, stderr)
		},
	})
	registerTask(taskSystem{
		name: "mortar-always", about: "as mortar with node --durability always (fsync before every acknowledgment).", results: true,
		start: func(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
			return startMortarTasks(ctx, dir, "always", batchMany, stderr)
		},
	})
	registerTask(taskSystem{
		name: "mortar-always-batch", about: "as mortar-always, but the producer sends with Client.SendBatch: atomic batches of 1000, one fsync each.", results: true,
		start: func(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
			return startMortarTasks(ctx, dir, "always", batchAtomic, stderr)
		},
	})
}

var benchNoop = task.Define[int, int]("bench.noop")

// How the producer sends.
type batching int

const (
	batchNone   batching = iota // Client.Send, one task at a time, 64 goroutines
	batchMany                   // Client.SendMany: pipelined acknowledgements
	batchAtomic                 // Client.SendBatch: atomic batches, one fsync each
)

func startMortarTasks(ctx context.Context, dir, durability string, bulk batching, stderr io.Writer) (srv *taskServer, err error) {
	node, err := startNode(ctx, dir, durability, 2*time.Hour, stderr)
	if err != nil {
		return nil, err
	}
	var conns []*mortar.Conn
	defer func() {
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			node.kill()
		}
	}()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dial := func(name string) (*mortar.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := dialNode(dctx, node.addr, node.token, name, log)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	pconn, err := dial("bench-producer")
	if err != nil {
		return nil, err
	}
	wconn, err := dial("bench-worker")
	if err != nil {
		return nil, err
	}
	client, err := task.New(pconn, nil)
	if err != nil {
		return nil, err
	}
	probe := &taskProbe{}
	w, err := task.NewWorker(wconn, &task.WorkerConfig{Concurrency: mortarWorkers, Logger: log, Retry: task.RetryPolicy{MaxRetries: -1}})
	if err != nil {
		return nil, err
	}
	task.Handle(w, benchNoop, func(context.Context, int) (int, error) {
		probe.started()
		return 0, nil
	})
	if err := w.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	stopWorker := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.Stop(sctx)
	}
	defer func() {
		if err != nil {
			stopWorker()
		}
	}()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := pconn.JetStream().Stream(sctx, taskwire.Stream)
	if err != nil {
		return nil, err
	}
	opts := map[bool]*task.SendOpts{false: {IgnoreResult: true}, true: {}}
	b := &bulkSender{opts: opts, batch: mortarBatch, send: client.SendMany}
	if bulk == batchAtomic {
		b.batch, b.send = task.MaxGroup, client.SendBatch
	}
	q := goQueue{
		enqueue: func(ctx context.Context, i int, results bool) error {
			_, err := benchNoop.Apply(ctx, client, i, opts[results])
			return err
		},
		// In a work-queue stream an acknowledged message is removed: the
		// acknowledged count is the messages stored less those left.
		acked: func(ctx context.Context) (int64, error) {
			info, err := stream.Info(ctx)
			if err != nil {
				return 0, err
			}
			return int64(info.State.LastSeq - info.State.Msgs), nil
		},
	}
	if bulk != batchNone {
		q.producers = 4
		q.enqueue = b.add
		q.flush = b.flush
	}
	stop := func() error {
		stopWorker()
		for _, c := range conns {
			c.Close()
		}
		return node.stop()
	}
	return newGoTaskServer(q, probe, []int{node.cmd.Process.Pid}, stop), nil
}

// bulkSender gathers tasks and sends them with SendMany, mortarBatch at a
// time; a batch goes out while the next fills.
type bulkSender struct {
	opts  map[bool]*task.SendOpts
	batch int
	send  func(context.Context, []task.Call) ([]*task.AsyncResult, error)

	mu    sync.Mutex
	calls []task.Call
}

func (b *bulkSender) add(ctx context.Context, i int, results bool) error {
	b.mu.Lock()
	args := append(strconv.AppendInt([]byte{'['}, int64(i), 10), ']')
	b.calls = append(b.calls, task.Call{Task: benchNoop.Name, Args: args, Opts: b.opts[results]})
	var full []task.Call
	if len(b.calls) >= b.batch {
		full, b.calls = b.calls, nil
	}
	b.mu.Unlock()
	return b.flushCalls(ctx, full)
}

func (b *bulkSender) flush(ctx context.Context) error {
	b.mu.Lock()
	rest := b.calls
	b.calls = nil
	b.mu.Unlock()
	return b.flushCalls(ctx, rest)
}

func (b *bulkSender) flushCalls(ctx context.Context, calls []task.Call) error {
	if len(calls) == 0 {
		return nil
	}
	if _, err := b.send(ctx, calls); err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}
