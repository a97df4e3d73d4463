package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// serverSlack is how long a server process may live beyond its
// measurement's warmup and timed window before it is killed.
const serverSlack = 30 * time.Second

// stats are one measurement's numbers, or the medians of several.
type stats struct {
	Calls               int64         `json:"calls"`
	CallsPerSec         float64       `json:"calls_per_sec"`
	P50                 time.Duration `json:"p50_ns"`
	P90                 time.Duration `json:"p90_ns"`
	P99                 time.Duration `json:"p99_ns"`
	ClientAllocsPerCall float64       `json:"client_allocs_per_call"`
	ClientCPUPerCall    time.Duration `json:"client_cpu_ns_per_call"`
	ServerCPUPerCall    time.Duration `json:"server_cpu_ns_per_call"`
}

// measure runs one measurement: a fresh server process for sys, one client
// connection, concurrency callers.
func measure(ctx context.Context, sys system, concurrency int, o *options, stderr io.Writer) (stats, error) {
	srv, err := startServer(ctx, sys.name, o.warmup+o.duration+serverSlack, stderr)
	if err != nil {
		return stats{}, err
	}
	defer srv.kill()
	c, err := sys.dial(ctx, srv.addr)
	if err != nil {
		return stats{}, fmt.Errorf("dial: %w", err)
	}
	st, err := drive(ctx, c, srv, concurrency, o)
	if cerr := c.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close client: %w", cerr)
	}
	if err != nil {
		return stats{}, err
	}
	if err := srv.stop(); err != nil {
		return stats{}, err
	}
	return st, nil
}

// drive warms up, then measures one timed window on c.
func drive(ctx context.Context, c caller, srv *serverProc, concurrency int, o *options) (stats, error) {
	payload := makePayload(o.payload)
	lats := make([][]time.Duration, concurrency)
	if _, err := runCallers(ctx, c, payload, o.warmup, lats); err != nil {
		return stats{}, fmt.Errorf("warmup: %w", err)
	}
	preallocate(lats, o.warmup, o.duration)

	srvStart, err := srv.mark()
	if err != nil {
		return stats{}, err
	}
	start, err := readUsage()
	if err != nil {
		return stats{}, err
	}
	elapsed, err := runCallers(ctx, c, payload, o.duration, lats)
	if err != nil {
		return stats{}, err
	}
	end, err := readUsage()
	if err != nil {
		return stats{}, err
	}
	srvEnd, err := srv.mark()
	if err != nil {
		return stats{}, err
	}
	return summarize(lats, elapsed, end.sub(start), srvEnd.sub(srvStart))
}

// makePayload returns n bytes of a pattern.
func makePayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

// runCallers runs one goroutine per element of lats, each calling echo in a
// loop for d and appending each call's latency to its slice. The first
// error stops every caller and is returned.
func runCallers(ctx context.Context, c caller, payload []byte, d time.Duration, lats [][]time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range lats {
		wg.Go(func() {
			var err error
			lats[i], err = callLoop(ctx, c, payload, end, lats[i][:0])
			if err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start), context.Cause(ctx)
}

// callLoop is the hot loop: no locks, no allocations of its own while lat
// has room.
func callLoop(ctx context.Context, c caller, payload []byte, end time.Time, lat []time.Duration) ([]time.Duration, error) {
	done := ctx.Done()
	for {
		select {
		case <-done:
			return lat, nil
		default:
		}
		start := time.Now()
		if !start.Before(end) {
			return lat, nil
		}
		reply, err := c.Echo(ctx, payload)
		if err != nil {
			return lat, err
		}
		if !bytes.Equal(reply, payload) {
			return lat, fmt.Errorf("echo: reply %q (%d bytes), want %q (%d bytes)", reply, len(reply), payload, len(payload))
		}
		lat = append(lat, time.Since(start))
	}
}

// preallocate gives every latency slice room for the timed window,
// estimated from the warmup's call counts, so that recording does not
// allocate inside the window.
func preallocate(lats [][]time.Duration, warmup, window time.Duration) {
	var warm int
	for _, l := range lats {
		warm += len(l)
	}
	size := 1 << 14
	if warm > 0 && warmup > 0 {
		perCaller := float64(warm) / float64(len(lats))
		size = int(2*perCaller*window.Seconds()/warmup.Seconds()) + 1024
	}
	for i := range lats {
		if cap(lats[i]) < size {
			lats[i] = make([]time.Duration, 0, size)
		}
	}
}

// usage is the client's resource use so far.
type usage struct {
	mallocs uint64
	cpu     cpuTimes
}

func (u usage) sub(v usage) usage { return usage{u.mallocs - v.mallocs, u.cpu.sub(v.cpu)} }

// readUsage reads this process's allocation count and CPU time.
func readUsage() (usage, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cpu, err := selfCPU()
	if err != nil {
		return usage{}, err
	}
	return usage{ms.Mallocs, cpu}, nil
}

// summarize computes a measurement's stats from its latencies and
// resource use over the timed window.
func summarize(lats [][]time.Duration, elapsed time.Duration, client usage, server cpuTimes) (stats, error) {
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return stats{}, fmt.Errorf("no call completed in %v", elapsed)
	}
	slices.Sort(all)
	n := len(all)
	return stats{
		Calls:               int64(n),
		CallsPerSec:         float64(n) / elapsed.Seconds(),
		P50:                 percentile(all, 50),
		P90:                 percentile(all, 90),
		P99:                 percentile(all, 99),
		ClientAllocsPerCall: float64(client.mallocs) / float64(n),
		ClientCPUPerCall:    client.cpu.total() / time.Duration(n),
		ServerCPUPerCall:    server.total() / time.Duration(n),
	}, nil
}

// percentile returns the p-th percentile of sorted by the nearest-rank
// method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
