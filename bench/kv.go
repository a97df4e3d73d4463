package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// The "config" subcommand compares mortar's config center with etcd 3.4
// (Debian's etcd-server, started on loopback by the benchmark): durable
// puts/s with 1 and 64 concurrent writers, and the latency from the start
// of a put to its arrival at a watcher.

// kvSystem is a store the config benchmark measures.
type kvSystem struct {
	name  string
	about string
	// start runs a fresh server with its data in dir and returns a
	// connected client.
	start func(ctx context.Context, dir string, stderr io.Writer) (*kvServer, error)
}

// kvServer is a running server process and a client connected to it.
type kvServer struct {
	client kvClient
	pid    int
	stop   func() error
}

// kvClient is the client side of a kvSystem.
type kvClient interface {
	Put(ctx context.Context, key string, val []byte) error
	// Watch delivers the value of every change to key until ctx ends.
	Watch(ctx context.Context, key string) (<-chan []byte, error)
	Close() error
}

var kvSystems = map[string]kvSystem{}

func registerKV(s kvSystem) { kvSystems[s.name] = s }

type kvOptions struct {
	systems   []string
	writers   intList
	duration  time.Duration
	warmup    time.Duration
	rounds    int
	watchPuts int
	valueSize int
	format    string
	command   string
}

func parseKVOptions(args []string, stderr io.Writer) (*kvOptions, error) {
	o := &kvOptions{writers: intList{1, 64}}
	fs := flag.NewFlagSet("bench config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	systemsFlag := fs.String("systems", "etcd,mortar,mortar-interval", "comma-separated `systems` to compare: etcd, mortar, mortar-interval, engine-kv")
	fs.Var(&o.writers, "writers", "comma-separated concurrent writer `counts`")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "timed window per measurement")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "untimed warmup before each window")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; the report shows medians")
	fs.IntVar(&o.watchPuts, "watch-puts", 300, "puts whose watch latency is measured per round")
	fs.IntVar(&o.valueSize, "value", 128, "value size in bytes")
	fs.StringVar(&o.format, "o", "markdown", "report format: markdown or json")
	short := fs.Bool("short", false, "a quick smoke run (CI)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *short {
		o.duration, o.warmup, o.rounds, o.watchPuts = 300*time.Millisecond, 100*time.Millisecond, 1, 30
	}
	o.systems = strings.Split(*systemsFlag, ",")
	for _, s := range o.systems {
		if _, ok := kvSystems[s]; !ok {
			return nil, fmt.Errorf("unknown system %q (have %s)", s, strings.Join(slices.Sorted(maps.Keys(kvSystems)), ", "))
		}
	}
	if o.rounds < 1 || o.watchPuts < 2 || o.valueSize < 16 || o.format != "markdown" && o.format != "json" {
		return nil, errors.New("bad -rounds, -watch-puts, -value or -o")
	}
	o.command = "go run ./bench config " + strings.Join(args, " ")
	return o, nil
}

// kvResult is one system's medians.
type kvResult struct {
	System     string                `json:"system"`
	PutsPerSec map[int]float64       `json:"puts_per_sec"` // by writer count
	PutP50     map[int]time.Duration `json:"put_p50_ns"`
	PutP99     map[int]time.Duration `json:"put_p99_ns"`
	ServerCPU  map[int]time.Duration `json:"server_cpu_per_put_ns"`
	WatchP50   time.Duration         `json:"watch_p50_ns"`
	WatchP99   time.Duration         `json:"watch_p99_ns"`
}

func configMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseKVOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench config: %v\n", err)
		return 2
	}
	type sample struct {
		puts     map[int]float64
		p50, p99 map[int]time.Duration
		cpu      map[int]time.Duration
		w50, w99 time.Duration
	}
	samples := map[string][]sample{}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.systems {
			s := sample{puts: map[int]float64{}, p50: map[int]time.Duration{}, p99: map[int]time.Duration{}, cpu: map[int]time.Duration{}}
			err := withKVServer(ctx, kvSystems[name], stderr, func(srv *kvServer) error {
				for _, w := range o.writers {
					r, err := measurePuts(ctx, srv, w, o)
					if err != nil {
						return fmt.Errorf("%d writers: %w", w, err)
					}
					s.puts[w], s.p50[w], s.p99[w], s.cpu[w] = r.perSec, r.p50, r.p99, r.cpuPerPut
					fmt.Fprintf(stderr, "round %d/%d  %-16s %3d writers  %8.0f puts/s  p50 %v  p99 %v\n",
						round, o.rounds, name, w, r.perSec, r.p50, r.p99)
				}
				w50, w99, err := measureWatch(ctx, srv, o)
				if err != nil {
					return fmt.Errorf("watch: %w", err)
				}
				s.w50, s.w99 = w50, w99
				fmt.Fprintf(stderr, "round %d/%d  %-16s watch latency p50 %v  p99 %v\n", round, o.rounds, name, w50, w99)
				return nil
			})
			if err != nil {
				fmt.Fprintf(stderr, "bench config: round %d, %s: %v\n", round, name, err)
				return 1
			}
			samples[name] = append(samples[name], s)
		}
	}
	var results []kvResult
	for _, name := range o.systems {
		ss := samples[name]
		r := kvResult{System: name, PutsPerSec: map[int]float64{}, PutP50: map[int]time.Duration{}, PutP99: map[int]time.Duration{}, ServerCPU: map[int]time.Duration{}}
		for _, w := range o.writers {
			r.PutsPerSec[w] = median(collect(ss, func(s sample) float64 { return s.puts[w] }))
			r.PutP50[w] = time.Duration(median(collect(ss, func(s sample) float64 { return float64(s.p50[w]) })))
			r.PutP99[w] = time.Duration(median(collect(ss, func(s sample) float64 { return float64(s.p99[w]) })))
			r.ServerCPU[w] = time.Duration(median(collect(ss, func(s sample) float64 { return float64(s.cpu[w]) })))
		}
		r.WatchP50 = time.Duration(median(collect(ss, func(s sample) float64 { return float64(s.w50) })))
		r.WatchP99 = time.Duration(median(collect(ss, func(s sample) float64 { return float64(s.w99) })))
		results = append(results, r)
	}
	if err := writeKVReport(stdout, o, results); err != nil {
		fmt.Fprintf(stderr, "bench config: %v\n", err)
		return 1
	}
	return 0
}

func collect[S any](ss []S, f func(S) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

// withKVServer starts a fresh server of sys in a temporary directory,
// runs fn, and stops the server and removes the directory.
func withKVServer(ctx context.Context, sys kvSystem, stderr io.Writer, fn func(*kvServer) error) error {
	dir, err := os.MkdirTemp("", "mortar-bench-"+sys.name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := sys.start(ctx, dir, stderr)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	err = fn(srv)
	err = errors.Join(err, srv.client.Close(), srv.stop())
	return err
}

type putResult struct {
	perSec    float64
	p50, p99  time.Duration
	cpuPerPut time.Duration
}

// measurePuts runs writers concurrent writers, each putting to its own
// keys (100 per writer, round robin), for the warmup and then the timed
// window.
func measurePuts(ctx context.Context, srv *kvServer, writers int, o *kvOptions) (putResult, error) {
	val := make([]byte, o.valueSize)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	run := func(d time.Duration, lats [][]time.Duration) (int, error) {
		end := time.Now().Add(d)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			total int
			first error
		)
		for w := range writers {
			wg.Go(func() {
				n := 0
				for j := 0; time.Now().Before(end); j++ {
					key := fmt.Sprintf("w%d-k%d", w, j%100)
					t0 := time.Now()
					if err := srv.client.Put(ctx, key, val); err != nil {
						mu.Lock()
						first = cmpErr(first, err)
						mu.Unlock()
						return
					}
					if lats != nil {
						lats[w] = append(lats[w], time.Since(t0))
					}
					n++
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		return total, first
	}
	if _, err := run(o.warmup, nil); err != nil {
		return putResult{}, err
	}
	lats := make([][]time.Duration, writers)
	cpu0, err := procCPU(srv.pid)
	if err != nil {
		return putResult{}, err
	}
	t0 := time.Now()
	n, err := run(o.duration, lats)
	elapsed := time.Since(t0)
	if err != nil {
		return putResult{}, err
	}
	cpu1, err := procCPU(srv.pid)
	if err != nil {
		return putResult{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	r := putResult{perSec: float64(n) / elapsed.Seconds(), p50: percentile(all, 50), p99: percentile(all, 99)}
	if n > 0 {
		r.cpuPerPut = cpu1.sub(cpu0).total() / time.Duration(n)
	}
	return r, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// measureWatch puts o.watchPuts values one after another to one key; each
// value starts with the put's start time, and a watcher on the key
// records when each arrives.
func measureWatch(ctx context.Context, srv *kvServer, o *kvOptions) (p50, p99 time.Duration, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const key = "watched"
	ch, err := srv.client.Watch(wctx, key)
	if err != nil {
		return 0, 0, err
	}
	base := time.Now()
	lats := make([]time.Duration, 0, o.watchPuts)
	val := make([]byte, o.valueSize)
	got := make(chan error, 1)
	go func() {
		for len(lats) < o.watchPuts {
			select {
			case v, ok := <-ch:
				if !ok {
					got <- errors.New("watch ended")
					return
				}
				if len(v) < 8 {
					continue
				}
				sent := time.Duration(binary.BigEndian.Uint64(v))
				if sent == 0 {
					continue // the priming put
				}
				lats = append(lats, time.Since(base)-sent)
			case <-time.After(10 * time.Second):
				got <- fmt.Errorf("watch: %d of %d changes after 10s", len(lats), o.watchPuts)
				return
			}
		}
		got <- nil
	}()
	for range o.watchPuts {
		binary.BigEndian.PutUint64(val, uint64(time.Since(base)))
		if err := srv.client.Put(ctx, key, val); err != nil {
			return 0, 0, err
		}
	}
	if err := <-got; err != nil {
		return 0, 0, err
	}
	slices.Sort(lats)
	return percentile(lats, 50), percentile(lats, 99), nil
}

// procCPU reads a process's CPU time from /proc/PID/stat (clock ticks).
func procCPU(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return cpuTimes{}, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return cpuTimes{time.Duration(ut) * tick, time.Duration(st) * tick}, nil
}

func writeKVReport(w io.Writer, o *kvOptions, rs []kvResult) error {
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"command": o.command, "date": time.Now().UTC().Format(time.RFC3339), "cpu": cpuModel(), "results": rs})
	}
	fmt.Fprintf(w, "Command: `%s`  \nCPU: %s; %s of %v after %v warmup, medians; value %d bytes; watch: %d sequential puts to one key.\n\n",
		o.command, cpuModel(), plural(o.rounds, "round"), o.duration, o.warmup, o.valueSize, o.watchPuts)
	rows := [][]string{{"system"}}
	for _, n := range o.writers {
		rows[0] = append(rows[0], fmt.Sprintf("puts/s ×%d", n), fmt.Sprintf("put p50 ×%d", n), fmt.Sprintf("server CPU/put ×%d", n))
	}
	rows[0] = append(rows[0], "watch p50", "watch p99")
	for _, r := range rs {
		row := []string{r.System}
		for _, n := range o.writers {
			row = append(row, fmt.Sprintf("%.0f", r.PutsPerSec[n]), formatMicros(r.PutP50[n]), formatMicros(r.ServerCPU[n]))
		}
		row = append(row, formatMicros(r.WatchP50), formatMicros(r.WatchP99))
		rows = append(rows, row)
	}
	writeTable(w, rows)
	if base := findKV(rs, "etcd"); base != nil {
		fmt.Fprintln(w)
		for _, r := range rs {
			if r.System == "etcd" {
				continue
			}
			var parts []string
			for _, n := range o.writers {
				if base.PutsPerSec[n] > 0 {
					parts = append(parts, fmt.Sprintf("puts ×%d: %.2f× etcd", n, r.PutsPerSec[n]/base.PutsPerSec[n]))
				}
			}
			if base.WatchP99 > 0 {
				parts = append(parts, fmt.Sprintf("watch p99: %.2f× etcd's", float64(r.WatchP99)/float64(base.WatchP99)))
			}
			fmt.Fprintf(w, "- %s: %s\n", r.System, strings.Join(parts, "; "))
		}
	}
	return nil
}

func findKV(rs []kvResult, name string) *kvResult {
	for i := range rs {
		if rs[i].System == name {
			return &rs[i]
		}
	}
	return nil
}
