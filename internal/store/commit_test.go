package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startJS(t testing.TB) jetstream.JetStream {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage, AllowAtomicPublish: true,
	}); err != nil {
		t.Fatal(err)
	}
	return js
}

// TestCommitterConcurrent: every one of many concurrent writes is stored
// exactly once, at the sequence its ack reports.
func TestCommitterConcurrent(t *testing.T) {
	js := startJS(t)
	c := store.NewCommitter(js, 4, 64)
	const writers, each = 32, 20
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				m := nats.NewMsg(fmt.Sprintf("s.w%d.%d", w, i))
				m.Data = []byte(m.Subject)
				ack, err := c.Publish(t.Context(), m)
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- ack.Sequence
			}
		})
	}
	wg.Wait()
	close(seqs)
	stream, err := js.Stream(t.Context(), "S")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]bool{}
	for seq := range seqs {
		if seen[seq] {
			t.Fatalf("sequence %d acked twice", seq)
		}
		seen[seq] = true
		msg, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("GetMsg(%d): %v", seq, err)
		}
		if string(msg.Data) != msg.Subject {
			t.Fatalf("seq %d holds %q on %s", seq, msg.Data, msg.Subject)
		}
	}
	info, _ := stream.Info(t.Context())
	if got := info.State.Msgs; got != writers*each || len(seen) != writers*each {
		t.Fatalf("stream has %d messages, %d acked; want %d", got, len(seen), writers*each)
	}
}

// TestCommitterBatchConflict: a lost compare-and-set inside a batch fails
// that write alone; the others are stored.
func TestCommitterBatchConflict(t *testing.T) {
	js := startJS(t)
	if _, err := js.Publish(t.Context(), "s.taken", []byte("x")); err != nil {
		t.Fatal(err)
	}
	c := store.NewCommitter(js, 1, 64) // always batch
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			subj := fmt.Sprintf("s.k%d", i)
			if i == 3 {
				subj = "s.taken"
			}
			m := nats.NewMsg(subj)
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0") // create only
			<-start
			_, errs[i] = c.Publish(t.Context(), m)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if i == 3 {
			if apiErr, ok := errors.AsType[*jetstream.APIError](err); !ok || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
				t.Errorf("write to taken subject: err = %v, want wrong last sequence", err)
			}
		} else if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
}

// BenchmarkCommitter64 measures durable writes/s with 64 concurrent
// writers through the Committer and through plain publishes.
func BenchmarkCommitter64(b *testing.B) {
	for _, mode := range []string{"committer", "plain"} {
		b.Run(mode, func(b *testing.B) {
			js := startJS(b)
			c := store.NewCommitter(js, 0, 0)
			b.ReportAllocs()
			b.SetParallelism(32) // 64 goroutines on 2 cores
			var n sync.Mutex
			i := 0
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n.Lock()
					i++
					subj := fmt.Sprintf("s.%d", i)
					n.Unlock()
					m := nats.NewMsg(subj)
					var err error
					if mode == "plain" {
						_, err = js.PublishMsg(context.Background(), m)
					} else {
						_, err = c.Publish(context.Background(), m)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}
