package node_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/config"
	"github.com/mortarhq/mortar/registry"
)

// failoverWindow is the longest a 3-node cluster may refuse writes after
// its leader dies: NATS needs 4 to 9 s to elect a new one
// (ARCHITECTURE.md §3); the rest is one failed attempt (a node gives up
// a publish nobody answers after 2 s) and the client's retry backoff.
const failoverWindow = 12 * time.Second

// ack is one acknowledged write.
type ack struct {
	n  int
	at time.Time
}

// writer writes until stop is closed, recording each acknowledged write.
type writer struct {
	mu    sync.Mutex
	acks  []ack
	errs  []error
	write func(ctx context.Context, n int) error
}

func (w *writer) run(ctx context.Context, stop <-chan struct{}) {
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		// Each write may wait out a failover: the SDK retries it, and the
		// request ID keeps the retry from applying twice.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := w.write(wctx, n)
		cancel()
		w.mu.Lock()
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("write %d: %w", n, err))
		} else {
			w.acks = append(w.acks, ack{n, time.Now()})
		}
		w.mu.Unlock()
	}
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// pause is the longest time without an acknowledgement from the kill on
// (an acknowledgement already on the wire when the leader died may land
// just after the kill: the pause is what follows).
func (w *writer) pause(kill time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	last := kill
	for _, a := range w.acks {
		if a.at.After(kill) {
			longest = max(longest, a.at.Sub(last))
			last = a.at
		}
	}
	return longest
}

// medianStep is the median time between acknowledgements after the
// longest pause following kill.
func (w *writer) medianStep(kill time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var steps []time.Duration
	var last time.Time
	for _, a := range w.acks {
		if a.at.After(kill) && !last.IsZero() && last.After(kill) {
			steps = append(steps, a.at.Sub(last))
		}
		last = a.at
	}
	if len(steps) == 0 {
		return 0
	}
	slices.Sort(steps)
	return steps[len(steps)/2]
}

// TestClusterLeaderKilled kills the leader of the config stream of a
// 3-node cluster while configs are written and instances registered, and
// checks that every acknowledged write survives, watchers see every
// change, and writes resume within the failover window.
func TestClusterLeaderKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test")
	}
	nodes := startProcCluster(t)
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	dial := func() *mortar.Conn {
		c, err := mortar.Dial(ctx, procURLs(nodes), &mortar.Options{Name: "fault-test", Token: nodes[0].token(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	conn := dial()
	cfg, err := config.New(conn, &config.Config{Author: "fault-test"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Set(ctx, "fault", "counter", []byte("0"), nil); err != nil {
		t.Fatal(err)
	}

	// Watchers, on their own connection.
	wconn := dial()
	wcfg, _ := config.New(wconn, nil)
	wreg, _ := registry.New(wconn, nil)
	cw, err := wcfg.Watch(ctx, "fault", "counter")
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Stop()
	rw, err := wreg.Watch(ctx, "fault-svc")
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Stop()
	var seenMu sync.Mutex
	seenValues := map[string]bool{}
	seenInstances := map[string]bool{}
	var watchWG sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchWG.Go(func() {
		for {
			v, err := cw.Next(watchCtx)
			if err != nil {
				if watchCtx.Err() != nil {
					return
				}
				continue // a re-read failed during the failover; Next tries again
			}
			seenMu.Lock()
			seenValues[string(v.Data)] = true
			seenMu.Unlock()
		}
	})
	watchWG.Go(func() {
		for {
			ev, err := rw.Next(watchCtx)
			if err != nil {
				if watchCtx.Err() != nil {
					return
				}
				continue
			}
			if ev.Type == registry.EventPut {
				seenMu.Lock()
				seenInstances[ev.Instance.ID] = true
				seenMu.Unlock()
			}
		}
	})

	configs := &writer{write: func(ctx context.Context, n int) error {
		_, err := cfg.Set(ctx, "fault", "counter", []byte(strconv.Itoa(n)), nil)
		return err
	}}
	instances := &writer{write: func(ctx context.Context, n int) error {
		_, err := reg.RegisterOnce(ctx, registry.Instance{Service: "fault-svc", ID: "i" + strconv.Itoa(n), Address: "127.0.0.1", Port: 1000 + n})
		return err
	}}
	stop := make(chan struct{})
	started := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { configs.run(ctx, stop) })
	wg.Go(func() { instances.run(ctx, stop) })
	for configs.count() < 20 || instances.count() < 20 {
		if ctx.Err() != nil {
			t.Fatal("writers stalled before the kill")
		}
		time.Sleep(10 * time.Millisecond)
	}

	leaderOf := func(stream string) string {
		s, err := conn.JetStream().Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		return info.Cluster.Leader
	}
	leaderName := leaderOf("MORTAR_CONFIG")
	var leader *procNode
	for _, p := range nodes {
		if p.name == leaderName {
			leader = p
		}
	}
	if leader == nil {
		t.Fatalf("no node named %q", leaderName)
	}
	t.Logf("killing %s (SIGKILL), leader of MORTAR_CONFIG (KV_mortar_registry is led by %s)", leaderName, leaderOf("KV_mortar_registry"))
	kill := time.Now()
	t.Logf("before the kill: %d config and %d registry writes in %v", configs.count(), instances.count(), kill.Sub(started).Round(time.Millisecond))
	leader.Kill()
	before := [2]int{configs.count(), instances.count()}
	for configs.count() < before[0]+20 || instances.count() < before[1]+20 {
		if ctx.Err() != nil || time.Since(kill) > 2*failoverWindow {
			nc, ni := configs.count()-before[0], instances.count()-before[1]
			configs.mu.Lock()
			instances.mu.Lock()
			t.Fatalf("writes did not resume: %d config and %d registry writes acknowledged since the kill; errors: %v %v", nc, ni, configs.errs, instances.errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	cgap, rgap := configs.pause(kill), instances.pause(kill)
	t.Logf("longest pause in acknowledged writes after the kill: %v (config), %v (registry); %d and %d writes acknowledged; errors: %v %v",
		cgap.Round(time.Millisecond), rgap.Round(time.Millisecond), configs.count(), instances.count(), configs.errs, instances.errs)
	t.Logf("after the pause: config writes every %v, registry writes every %v (median)", configs.medianStep(kill), instances.medianStep(kill))
	if cgap > failoverWindow || rgap > failoverWindow {
		t.Errorf("writes paused %v (config) and %v (registry): longer than the failover window %v", cgap, rgap, failoverWindow)
	}

	// Every acknowledged write is readable: each acknowledged config
	// write is one version, in order, and each instance is registered.
	versionOf := map[string]uint64{} // value's sha256 → version
	for before := uint64(0); ; {
		page, more, err := cfg.History(ctx, "fault", "counter", &config.HistoryOpts{Before: before, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page {
			if _, dup := versionOf[v.SHA256]; dup {
				t.Fatalf("version %d repeats an earlier value: a retried write applied twice", v.Version)
			}
			versionOf[v.SHA256] = v.Version
			before = v.Version
		}
		if !more || len(page) == 0 {
			break
		}
	}
	prev := uint64(0)
	for _, a := range configs.acks {
		sum := sha256.Sum256([]byte(strconv.Itoa(a.n)))
		v, ok := versionOf[hex.EncodeToString(sum[:])]
		if !ok {
			t.Fatalf("acknowledged config write %d is lost", a.n)
		}
		if v <= prev {
			t.Fatalf("acknowledged config write %d is version %d, not after %d", a.n, v, prev)
		}
		prev = v
	}
	// Every node's view of the registry converges on every acknowledged
	// registration (views are eventually consistent; any node answers).
	listed := map[string]bool{}
	var missing []int
	for deadline := time.Now().Add(20 * time.Second); ; {
		list, err := reg.List(ctx, "fault-svc")
		if err != nil {
			t.Fatal(err)
		}
		clear(listed)
		for _, in := range list {
			listed[in.ID] = true
		}
		missing = missing[:0]
		for _, a := range instances.acks {
			if !listed["i"+strconv.Itoa(a.n)] {
				missing = append(missing, a.n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged registrations are lost: %v", len(missing), missing)
	}

	// The instances the dead node owned were taken over by a survivor.
	for deadline := time.Now().Add(20 * time.Second); ; {
		list, err := reg.List(ctx, "fault-svc")
		orphans := 0
		for _, in := range list {
			if in.Node == leaderName {
				orphans++
			}
		}
		if err == nil && orphans == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d instances still owned by the dead node %s (%v)", orphans, leaderName, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Watchers catch up and have seen every change.
	last := strconv.Itoa(configs.acks[len(configs.acks)-1].n)
	caughtUp := func() bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return seenValues[last] && len(seenInstances) >= len(listed)
	}
	for deadline := time.Now().Add(20 * time.Second); !caughtUp() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	stopWatch()
	watchWG.Wait()
	for _, a := range configs.acks {
		if !seenValues[strconv.Itoa(a.n)] {
			t.Errorf("config watcher missed acknowledged version %d", a.n)
		}
	}
	for id := range listed {
		if !seenInstances[id] {
			t.Errorf("registry watcher missed instance %s", id)
		}
	}
}
