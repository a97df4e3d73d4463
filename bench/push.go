package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The "push" subcommand holds many idle WebSocket connections on mortar's
// push gateway and, side by side in the same run, on a hub written the
// common Go way with gorilla/websocket (pushgorilla.go). For each system
// it measures, in a server process of its own ("bench serve-push"):
//
//   - memory per idle connection: the server's RSS and Go heap+stacks
//     with N connections, minus before any, over N (after a full GC that
//     returned freed memory to the OS; the kernel's socket buffers are not
//     in RSS);
//   - CPU per minute to keep N connections alive, heartbeats on (ping
//     every 25 s), from the server's getrusage over an idle window;
//   - broadcast to all N: from just before the push until the last
//     connection has it;
//   - push to one client ID among the N: p50/p99, one at a time.
//
// Then, for mortar, a 3-node cluster (three processes): a client on node 2,
// pushes published through node 1, one at a time: p50/p99 (and the same
// with the client on node 1, for reference).
//
// This process is the load generator: one gorilla/websocket client and
// goroutine per connection, dialled from several 127.0.0.x source
// addresses so that ephemeral ports do not run short, different ones for
// each system so that one run's TIME_WAIT cannot disturb the next.

// pushOptions is the "push" subcommand's configuration.
type pushOptions struct {
	systems     []string
	conns       int
	idle        time.Duration // the CPU window
	baseline    time.Duration // the CPU window with no connections
	settle      time.Duration // idle time after connecting, before memory is read
	broadcasts  int
	pushes      int
	cluster     bool
	concurrency int // dials in flight
	format      string
	command     string
}

// pushSystemNames is the default -systems, in order.
var pushSystemNames = []string{"mortar", "gorilla"}

// Short mode, for CI.
const (
	shortPushConns  = 500
	shortPushIdle   = 5 * time.Second
	shortPushPushes = 200
)

// Per-run constants.
const (
	pushWarm          = 50 // untimed pushes before the timed ones
	pushDialInFlight  = 64
	pushClientBufSize = 512 // the driver's gorilla client buffers
	pushFDSlack       = 200 // descriptors a process needs besides the connections
	pushPerSource     = 20000
	broadcastTimeout  = 60 * time.Second
	broadcastGap      = 250 * time.Millisecond
)

// pushSources are the local addresses each system's connections come
// from, in turn.
var pushSources = map[string][]string{
	"mortar":  {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"},
	"gorilla": {"127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"},
}

func parsePushOptions(args []string, stderr io.Writer) (*pushOptions, error) {
	o := &pushOptions{concurrency: pushDialInFlight}
	fs := flag.NewFlagSet("bench push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	systemsFlag := fs.String("systems", strings.Join(pushSystemNames, ","), "comma-separated `systems`: mortar, gorilla")
	fs.IntVar(&o.conns, "conns", 19000, "idle WebSocket connections held on each system")
	fs.DurationVar(&o.idle, "idle", 60*time.Second, "window over which the server's CPU is measured with every connection idle")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "idle time after the last connection before memory is read")
	fs.IntVar(&o.broadcasts, "broadcasts", 5, "timed broadcasts to every connection (after one untimed)")
	fs.IntVar(&o.pushes, "pushes", 2000, "timed pushes to one client ID, one at a time")
	fs.BoolVar(&o.cluster, "cluster", true, "measure cross-node pushes on a 3-node mortar cluster")
	fs.StringVar(&o.format, "o", "markdown", "report format: markdown or json")
	short := fs.Bool("short", false, fmt.Sprintf("a quick run for CI: -conns %d -idle %v -pushes %d -settle 1s -cluster=false unless given",
		shortPushConns, shortPushIdle, shortPushPushes))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["conns"] {
			o.conns = shortPushConns
		}
		if !set["idle"] {
			o.idle = shortPushIdle
		}
		if !set["pushes"] {
			o.pushes = shortPushPushes
		}
		if !set["settle"] {
			o.settle = time.Second
		}
		if !set["cluster"] {
			o.cluster = false
		}
	}
	for s := range strings.SplitSeq(*systemsFlag, ",") {
		if !slices.Contains(pushSystemNames, s) {
			return nil, fmt.Errorf("unknown system %q (have %s)", s, strings.Join(pushSystemNames, ", "))
		}
		if slices.Contains(o.systems, s) {
			return nil, fmt.Errorf("system %q listed twice", s)
		}
		o.systems = append(o.systems, s)
	}
	o.baseline = max((o.idle / 6).Round(time.Second), time.Second)
	switch {
	case fs.NArg() > 0:
		return nil, errors.New("unexpected arguments")
	case o.conns < 2 || o.conns > pushPerSource*len(pushSources["mortar"]):
		return nil, fmt.Errorf("-conns %d: want 2 to %d", o.conns, pushPerSource*len(pushSources["mortar"]))
	case o.idle <= 0 || o.settle < 0:
		return nil, errors.New("-idle must be positive and -settle not negative")
	case o.broadcasts < 1 || o.pushes < 1:
		return nil, errors.New("-broadcasts and -pushes must be at least 1")
	case o.format != "markdown" && o.format != "json":
		return nil, fmt.Errorf("-o %q: want markdown or json", o.format)
	}
	o.command = strings.TrimSpace("go run ./bench push " + strings.Join(args, " "))
	return o, nil
}

func pushMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parsePushOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench push: %v\n", err)
		return 2
	}
	if err := checkOpenFiles(o.conns); err != nil {
		fmt.Fprintf(stderr, "bench push: %v\n", err)
		return 1
	}
	rep := newPushReport(o)
	for _, name := range o.systems {
		r, err := measurePush(ctx, name, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench push: %s: %v\n", name, err)
			return 1
		}
		rep.Results = append(rep.Results, *r)
	}
	if o.cluster && slices.Contains(o.systems, "mortar") {
		c, err := measurePushCluster(ctx, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench push: cluster: %v\n", err)
			return 1
		}
		rep.Cluster = c
	}
	if err := rep.write(stdout, o.format); err != nil {
		fmt.Fprintf(stderr, "bench push: %v\n", err)
		return 1
	}
	return 0
}

// checkOpenFiles fails unless this process, and so each server process
// (which inherits the limit), may open conns descriptors and some more.
// (The Go runtime has already raised the soft limit to the hard one.)
func checkOpenFiles(conns int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if need := uint64(conns) + pushFDSlack; rl.Cur < need {
		return fmt.Errorf("the open-file limit (RLIMIT_NOFILE) is %d (hard %d); -conns %d needs %d in this process and in each server process: raise it (ulimit -n) or lower -conns",
			rl.Cur, rl.Max, conns, need)
	}
	return nil
}

// measurePush runs every measurement of one system on a fresh server
// process.
func measurePush(ctx context.Context, name string, o *pushOptions, stderr io.Writer) (res *pushResult, err error) {
	dir, err := os.MkdirTemp("", "mortar-bench-push-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	timeout := o.baseline + o.idle + o.settle + 20*time.Minute
	var srv *pushServer
	switch name {
	case "mortar":
		srv, err = startMortarPush(ctx, filepath.Join(dir, "n1"), "n1", newPushSecret(), nil, timeout, stderr)
	case "gorilla":
		srv, err = startGorillaPush(ctx, timeout, stderr)
	}
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	var fleet *pushFleet
	defer func() {
		if fleet != nil {
			fleet.closing.Store(true) // the server closes them first
		}
		serr := srv.stop()
		if fleet != nil {
			fleet.close()
		}
		if serr != nil {
			err = errors.Join(err, fmt.Errorf("stop: %w", serr))
		}
	}()
	res = &pushResult{System: name, About: pushAbout[name], Conns: o.conns}
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "push %-8s "+format+"\n", append([]any{name}, args...)...)
	}

	if res.Before, err = srv.stats(ctx); err != nil {
		return nil, err
	}
	cpu, err := srv.cpuOver(ctx, o.baseline)
	if err != nil {
		return nil, err
	}
	res.BaselineCPUPerMin = perMinute(cpu, o.baseline)

	start := time.Now()
	fleet, err = dialFleet(ctx, srv.fleetConfig(o.conns, pushSources[name], o.concurrency))
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	res.ConnectTime = time.Since(start)
	progress("%d connections in %v", o.conns, res.ConnectTime.Round(time.Millisecond))
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	if err := measureIdle(ctx, srv, fleet, o, res, progress); err != nil {
		return nil, err
	}
	if err := measureBroadcasts(ctx, srv, fleet, o, res, progress); err != nil {
		return nil, err
	}
	probe := o.conns / 2
	lats, err := fleet.pushLatencies(ctx, probe, pushWarm, o.pushes, func(ctx context.Context, seq int) error {
		return srv.toClient(ctx, pushClientID(probe), []byte(`{"seq":`+strconv.Itoa(seq)+`}`))
	})
	if err != nil {
		return nil, fmt.Errorf("push to one: %w", err)
	}
	res.Push = summarizeLatencies(lats)
	progress("push to one of %d: p50 %v p99 %v", o.conns-res.Dropped, res.Push.P50, res.Push.P99)
	return res, nil
}

// measureIdle reads the server's memory with the fleet connected, then
// its CPU over the idle window, then its memory again.
func measureIdle(ctx context.Context, srv *pushServer, fleet *pushFleet, o *pushOptions, res *pushResult, progress func(string, ...any)) error {
	var err error
	if res.Connected, err = srv.stats(ctx); err != nil {
		return err
	}
	res.ConnectedMem = res.Connected.perConn(res.Before, o.conns)
	progress("connected: RSS %.1f → %.1f MiB: %s", mib(res.Before.RSS), mib(res.Connected.RSS), res.ConnectedMem)

	pings := fleet.pings.Load()
	cpu, err := srv.cpuOver(ctx, o.idle)
	if err != nil {
		return err
	}
	res.IdleWindow = o.idle
	res.CPUPerMin = perMinute(cpu, o.idle)
	res.PingsPerConn = float64(fleet.pings.Load()-pings) / float64(o.conns)
	progress("CPU %v over %v idle (%.3f s per minute, %.2f%% of a core); %.2f pings per connection",
		cpu.total().Round(time.Millisecond), o.idle, res.CPUPerMin.Seconds(), 100*float64(cpu.total())/float64(o.idle), res.PingsPerConn)

	if res.After, err = srv.stats(ctx); err != nil {
		return err
	}
	res.AfterMem = res.After.perConn(res.Before, o.conns)
	progress("after the idle window: RSS %.1f MiB: %s", mib(res.After.RSS), res.AfterMem)
	dropped, dropErr := fleet.drops()
	res.Dropped = dropped
	if dropErr != nil {
		res.DropError = dropErr.Error()
		progress("%d connections dropped while idle; the first: %v", dropped, dropErr)
	}
	if dropped == o.conns {
		return fmt.Errorf("every connection dropped while idle: %v", dropErr)
	}
	return nil
}

// measureBroadcasts times broadcasts to every live connection of the
// fleet, with the server's CPU time for each.
func measureBroadcasts(ctx context.Context, srv *pushServer, fleet *pushFleet, o *pushOptions, res *pushResult, progress func(string, ...any)) error {
	alive := o.conns - res.Dropped
	for i := range o.broadcasts + 1 { // the first is untimed
		data := []byte(fmt.Sprintf(`{"b":%d}`, i))
		c0, err := srv.proc.mark()
		if err != nil {
			return err
		}
		d, err := fleet.broadcast(ctx, alive, broadcastTimeout, func(ctx context.Context) error { return srv.toAll(ctx, data) })
		if err != nil {
			return fmt.Errorf("broadcast %d: %w", i, err)
		}
		c1, err := srv.proc.mark()
		if err != nil {
			return err
		}
		if i > 0 {
			res.Broadcasts = append(res.Broadcasts, d)
			res.BroadcastCPU = append(res.BroadcastCPU, c1.sub(c0).total())
		}
		if err := sleepCtx(ctx, broadcastGap); err != nil {
			return err
		}
	}
	res.BroadcastMedian = medianDuration(res.Broadcasts)
	res.BroadcastCPUMedian = medianDuration(res.BroadcastCPU)
	progress("broadcast to %d: median %v (%v); server CPU median %v", alive, res.BroadcastMedian, res.Broadcasts, res.BroadcastCPUMedian)
	return nil
}

// measurePushCluster starts a 3-node mortar cluster and times pushes
// published through node 1 to a client on node 2, then to one on node 1.
func measurePushCluster(ctx context.Context, o *pushOptions, stderr io.Writer) (res *pushClusterResult, err error) {
	dir, err := os.MkdirTemp("", "mortar-bench-push-cluster-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	secret := newPushSecret()
	addrs := []string{freePort(), freePort(), freePort()}
	nodes := make([]*pushServer, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			name := "n" + strconv.Itoa(i+1)
			nodes[i], errs[i] = startMortarPush(ctx, filepath.Join(dir, name), name, secret,
				[]string{"-cluster-listen", addrs[i], "-routes", strings.Join(addrs, ",")}, 20*time.Minute, stderr)
		})
	}
	wg.Wait()
	defer func() {
		var stops sync.WaitGroup
		serrs := make([]error, len(nodes))
		for i, n := range nodes {
			if n != nil {
				stops.Go(func() { serrs[i] = n.stop() })
			}
		}
		stops.Wait()
		if serr := errors.Join(serrs...); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop: %w", serr))
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	fmt.Fprintf(stderr, "push cluster  3 nodes ready\n")
	pub := nodes[0]
	res = &pushClusterResult{}
	for _, run := range []struct {
		at  *pushServer
		out *latencySummary
		id  string
	}{
		{nodes[1], &res.CrossNode, "far"},
		{nodes[0], &res.SameNode, "near"},
	} {
		cfg := run.at.fleetConfig(1, nil, 1)
		cfg.url = func(int) string { return run.at.wsURL(run.id) }
		cfg.hello = func(int) []byte { return run.at.hello(run.id) }
		f, err := dialFleet(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("connect: %w", err)
		}
		lats, err := f.pushLatencies(ctx, 0, pushWarm, o.pushes, func(ctx context.Context, seq int) error {
			return pub.toClient(ctx, run.id, []byte(`{"seq":`+strconv.Itoa(seq)+`}`))
		})
		f.close()
		if err != nil {
			return nil, fmt.Errorf("push to %s: %w", run.id, err)
		}
		*run.out = summarizeLatencies(lats)
		fmt.Fprintf(stderr, "push cluster  publisher on n1, client on %s: p50 %v p99 %v\n",
			map[string]string{"far": "n2", "near": "n1"}[run.id], run.out.P50, run.out.P99)
	}
	return res, nil
}

// newPushSecret returns a random token secret for a node or cluster.
func newPushSecret() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// pushClientID is connection i's client ID.
func pushClientID(i int) string { return "c" + strconv.Itoa(i) }

// perMinute scales CPU time used over window to a minute.
func perMinute(c cpuTimes, window time.Duration) time.Duration {
	return time.Duration(float64(c.total()) * float64(time.Minute) / float64(window))
}

func medianDuration(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}

// latencySummary describes timed pushes.
type latencySummary struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func summarizeLatencies(lats []time.Duration) latencySummary {
	s := slices.Sorted(slices.Values(lats))
	if len(s) == 0 {
		return latencySummary{}
	}
	return latencySummary{N: len(s), P50: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1]}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
