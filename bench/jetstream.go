package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The engine's ceiling: the node's JetStream used as a work queue with
// plain nats.go, no task layer.

// jsMaxInFlight bounds the producer's (and the workers' result writes')
// unacknowledged async publishes.
const jsMaxInFlight = 4096

func init() {
	const about = "the engine's ceiling: a mortar node process (embedded nats-server JetStream) used with plain nats.go, no task layer. " +
		"Stream BENCH_RAW (WorkQueue retention, file storage, R1, subjects bench.raw.>), durable pull consumer with AckExplicit and server defaults (MaxAckPending 1000). " +
		"Producer: jetstream PublishAsync from one goroutine, at most 4096 in flight, then PublishAsyncComplete; " +
		"worker: Consume (default pull options) on its own connection, the no-op handler run inline in Consume's callback (one goroutine), fire-and-forget msg.Ack(). " +
		"Results on: the handler also publishes a 2-byte result to KV bucket BENCH_RESULTS (file storage, key per task) with PublishAsync (at most 4096 in flight) before the ack; the run ends once every result is stored."
	registerTask(taskSystem{
		name:    "jetstream",
		about:   about + " Node --durability interval (fsync every 2 minutes).",
		results: true,
		start: func(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
			return startJetStream(ctx, dir, "interval", stderr)
		},
	})
	registerTask(taskSystem{
		name:    "jetstream-always",
		about:   "as jetstream with node --durability always (fsync before every acknowledgment): the durable ceiling.",
		results: true,
		start: func(ctx context.Context, dir string, _ *taskOptions, stderr io.Writer) (*taskServer, error) {
			return startJetStream(ctx, dir, "always", stderr)
		},
	})
}

func startJetStream(ctx context.Context, dir, durability string, stderr io.Writer) (srv *taskServer, err error) {
	node, err := startNode(ctx, dir, durability, 2*time.Hour, stderr)
	if err != nil {
		return nil, err
	}
	var closers []func()
	var handleErr atomic.Pointer[error]
	fail := func(err error) { handleErr.CompareAndSwap(nil, &err) }
	defer func() {
		if err != nil {
			for _, c := range closers {
				c()
			}
			node.kill()
		}
	}()
	connect := func(name string) (*nats.Conn, jetstream.JetStream, error) {
		nc, err := nats.Connect(node.addr, append(nodeNATSOptions(node.token), nats.Name(name))...)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, nc.Close)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(jsMaxInFlight),
			jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
				fail(fmt.Errorf("publish to %s: %w", m.Subject, err))
			}))
		return nc, js, err
	}
	_, pjs, err := connect("bench-producer")
	if err != nil {
		return nil, err
	}
	_, wjs, err := connect("bench-worker")
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := pjs.CreateStream(sctx, jetstream.StreamConfig{
		Name: "BENCH_RAW", Subjects: []string{"bench.raw.>"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage, Replicas: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream: %w", err)
	}
	if _, err := wjs.CreateKeyValue(sctx, jetstream.KeyValueConfig{Bucket: "BENCH_RESULTS", Storage: jetstream.FileStorage}); err != nil {
		return nil, fmt.Errorf("create KV bucket: %w", err)
	}
	cons, err := wjs.CreateOrUpdateConsumer(sctx, "BENCH_RAW", jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}

	probe := &taskProbe{}
	stall := jetstream.WithStallWait(stallTimeout)
	result := []byte("ok")
	cc, err := cons.Consume(func(m jetstream.Msg) {
		probe.started()
		if m.Subject() == "bench.raw.result" {
			if _, err := wjs.PublishAsync("$KV.BENCH_RESULTS.r"+string(m.Data()), result, stall); err != nil {
				fail(fmt.Errorf("store result: %w", err))
			}
		}
		if err := m.Ack(); err != nil {
			fail(fmt.Errorf("ack: %w", err))
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { fail(fmt.Errorf("consume: %w", err)) }))
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	closers = append([]func(){cc.Stop}, closers...)

	asyncDone := func(ctx context.Context, js jetstream.JetStream) error {
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(stallTimeout):
			return fmt.Errorf("%d async publishes unacknowledged after %v", js.PublishAsyncPending(), stallTimeout)
		}
		if e := handleErr.Load(); e != nil {
			return *e
		}
		return nil
	}
	q := goQueue{
		producers: 1,
		enqueue: func(_ context.Context, i int, results bool) error {
			subj := "bench.raw.noop"
			if results {
				subj = "bench.raw.result"
			}
			_, err := pjs.PublishAsync(subj, strconv.AppendInt(nil, int64(i), 10), stall)
			return err
		},
		flush: func(ctx context.Context) error { return asyncDone(ctx, pjs) },
		// In a WorkQueue stream an acknowledged message is removed, so the
		// acknowledged count is the messages published less those left.
		acked: func(ctx context.Context) (int64, error) {
			info, err := stream.Info(ctx)
			if err != nil {
				return 0, err
			}
			if e := handleErr.Load(); e != nil {
				return 0, *e
			}
			return int64(info.State.LastSeq - info.State.Msgs), nil
		},
		settle: func(ctx context.Context) error { return asyncDone(ctx, wjs) },
	}
	stop := func() error {
		for _, c := range closers {
			c()
		}
		return node.stop()
	}
	return newGoTaskServer(q, probe, []int{node.cmd.Process.Pid}, stop), nil
}
