package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/registry"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The "registry" subcommand measures a service registry the way a fleet
// uses one, side by side with etcd 3.4 used as one (a key per instance
// under its own lease, kept alive by the client): N instances register
// and heartbeat every interval; the server's CPU and memory are read from
// /proc over a window; then W watchers, each on its own connection,
// follow a service while one instance at a time changes, and the time
// until the last watcher has each change is recorded.

// regSystem is a registry the benchmark measures.
type regSystem struct {
	name  string
	about string
	start func(ctx context.Context, dir string, o *regOptions, stderr io.Writer) (*regServer, error)
}

// regServer is a running server process.
type regServer struct {
	pid  int
	stop func() error
	// fleet registers n instances and keeps them alive until ctx ends.
	fleet func(ctx context.Context, n int) error
	// watcher opens a client of its own watching the "watched" service;
	// each change's instance ID is sent on the channel.
	watcher func(ctx context.Context) (<-chan string, func(), error)
	// change registers (or re-registers) instance id of "watched".
	change func(ctx context.Context, id string) error
}

var regSystems = map[string]regSystem{
	"mortar": {name: "mortar", about: "mortar node (one process, sync_always); instances registered with RegisterOnce and a TTL of 3 intervals, heartbeats published on core NATS as registry.Registration does; watchers are registry.Watch, each on its own connection", start: startMortarRegistry},
	"etcd":   {name: "etcd", about: "etcd 3.4 (Debian etcd-server, single member); one lease per instance (TTL 3 intervals) with a key under it, kept alive by clientv3's KeepAlive (every TTL/3); watchers are prefix watches, each on its own client", start: startEtcdRegistry},
}

type regOptions struct {
	systems   []string
	instances int
	heartbeat time.Duration
	window    time.Duration
	watchers  int
	changes   int
	format    string
	command   string
}

func parseRegOptions(args []string, stderr io.Writer) (*regOptions, error) {
	o := &regOptions{}
	fs := flag.NewFlagSet("bench registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	systemsFlag := fs.String("systems", "etcd,mortar", "comma-separated `systems`: etcd, mortar")
	fs.IntVar(&o.instances, "instances", 10000, "registered instances")
	fs.DurationVar(&o.heartbeat, "heartbeat", 5*time.Second, "heartbeat interval of every instance (the lease is 3 intervals)")
	fs.DurationVar(&o.window, "window", 30*time.Second, "window over which the server's CPU is measured, with every instance heartbeating")
	fs.IntVar(&o.watchers, "watchers", 100, "watchers of the changing service, each on its own connection")
	fs.IntVar(&o.changes, "changes", 50, "changes whose arrival at every watcher is timed")
	fs.StringVar(&o.format, "o", "markdown", "report format: markdown or json")
	short := fs.Bool("short", false, "a quick smoke run (CI)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *short {
		o.instances, o.heartbeat, o.window, o.watchers, o.changes = 500, time.Second, time.Second, 10, 5
	}
	o.systems = strings.Split(*systemsFlag, ",")
	for _, s := range o.systems {
		if _, ok := regSystems[s]; !ok {
			return nil, fmt.Errorf("unknown system %q (have etcd, mortar)", s)
		}
	}
	if o.instances < 1 || o.heartbeat < 100*time.Millisecond || o.window <= 0 || o.watchers < 1 || o.changes < 1 || o.format != "markdown" && o.format != "json" {
		return nil, errors.New("bad -instances, -heartbeat, -window, -watchers, -changes or -o")
	}
	o.command = strings.TrimSpace("go run ./bench registry " + strings.Join(args, " "))
	return o, nil
}

// regResult is one system's figures.
type regResult struct {
	System       string        `json:"system"`
	Instances    int           `json:"instances"`
	RegisterRate float64       `json:"registrations_per_sec"`
	IdleRSS      int64         `json:"idle_rss_bytes"`
	FleetRSS     int64         `json:"fleet_rss_bytes"`
	CPUPercent   float64       `json:"cpu_percent_of_one_core"`
	AllP50       time.Duration `json:"change_to_all_watchers_p50_ns"`
	AllP99       time.Duration `json:"change_to_all_watchers_p99_ns"`
	EachP50      time.Duration `json:"change_to_one_watcher_p50_ns"`
}

func registryMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseRegOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench registry: %v\n", err)
		return 2
	}
	var results []regResult
	for _, name := range o.systems {
		r, err := measureRegistry(ctx, regSystems[name], o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "bench registry: %s: %v\n", name, err)
			return 1
		}
		results = append(results, *r)
	}
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"command": o.command, "results": results}); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "`%s` on %s\n\n", o.command, cpuModel())
	fmt.Fprintf(stdout, "%s instances, heartbeat every %v; CPU over %v; %d watchers, %d changes.\n\n",
		strconv.Itoa(o.instances), o.heartbeat, o.window, o.watchers, o.changes)
	rows := [][]string{{"system", "registrations/s", "server CPU (% of a core)", "RSS idle → with fleet", "change → all watchers p50", "p99", "change → one watcher p50"}}
	for _, r := range results {
		rows = append(rows, []string{r.System, fmt.Sprintf("%.0f", r.RegisterRate), fmt.Sprintf("%.1f%%", r.CPUPercent),
			fmt.Sprintf("%.0f → %.0f MiB", float64(r.IdleRSS)/(1<<20), float64(r.FleetRSS)/(1<<20)),
			formatMillis(r.AllP50), formatMillis(r.AllP99), formatMillis(r.EachP50)})
	}
	writeTable(stdout, rows)
	fmt.Fprintln(stdout)
	for _, name := range o.systems {
		fmt.Fprintf(stdout, "- %s: %s\n", name, regSystems[name].about)
	}
	return 0
}

func formatMillis(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func measureRegistry(ctx context.Context, sys regSystem, o *regOptions, stderr io.Writer) (*regResult, error) {
	dir, err := os.MkdirTemp("", "bench-registry-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := sys.start(ctx, dir, o, stderr)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	res := &regResult{System: sys.name, Instances: o.instances}
	if res.IdleRSS, err = procRSS(srv.pid); err != nil {
		return nil, err
	}

	fctx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	start := time.Now()
	if err := srv.fleet(fctx, o.instances); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	res.RegisterRate = float64(o.instances) / time.Since(start).Seconds()
	// One full heartbeat round before measuring.
	select {
	case <-time.After(o.heartbeat):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu0, err := procCPU(srv.pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	select {
	case <-time.After(o.window):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cpu1, err := procCPU(srv.pid)
	if err != nil {
		return nil, err
	}
	res.CPUPercent = 100 * float64(cpu1.sub(cpu0).total()) / float64(time.Since(t0))
	if res.FleetRSS, err = procRSS(srv.pid); err != nil {
		return nil, err
	}

	// Watchers, while the fleet keeps heartbeating.
	var chans []<-chan string
	for range o.watchers {
		ch, closeW, err := srv.watcher(ctx)
		if err != nil {
			return nil, fmt.Errorf("watcher: %w", err)
		}
		defer closeW()
		chans = append(chans, ch)
	}
	var all, each []time.Duration
	for i := range o.changes + 1 { // the first change warms up
		id := "w" + strconv.Itoa(i)
		var arrived sync.WaitGroup
		var last atomic.Int64
		lats := make([]time.Duration, len(chans))
		begin := time.Now()
		for j, ch := range chans {
			arrived.Go(func() {
				for {
					select {
					case got := <-ch:
						if got == id {
							lats[j] = time.Since(begin)
							for {
								l := last.Load()
								if int64(lats[j]) <= l || last.CompareAndSwap(l, int64(lats[j])) {
									break
								}
							}
							return
						}
					case <-time.After(10 * time.Second):
						lats[j] = -1
						return
					}
				}
			})
		}
		if err := srv.change(ctx, id); err != nil {
			return nil, fmt.Errorf("change: %w", err)
		}
		arrived.Wait()
		if slices.Contains(lats, -1) {
			return nil, fmt.Errorf("change %s did not reach every watcher within 10s", id)
		}
		if i > 0 {
			all = append(all, time.Duration(last.Load()))
			each = append(each, lats...)
		}
	}
	slices.Sort(all)
	slices.Sort(each)
	res.AllP50, res.AllP99, res.EachP50 = percentile(all, 50), percentile(all, 99), percentile(each, 50)
	return res, nil
}

// procRSS reads a process's resident set size from /proc/PID/status.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// registerAll runs register for ids 0..n-1 from 64 goroutines.
func registerAll(ctx context.Context, n int, register func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := register(ctx, i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func startMortarRegistry(ctx context.Context, dir string, o *regOptions, stderr io.Writer) (*regServer, error) {
	p, err := startNode(ctx, dir, "always", time.Hour, stderr)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dial := func(ctx context.Context) (*mortar.Conn, *registry.Client, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := dialNode(dctx, p.addr, p.token, "bench", log)
		if err != nil {
			return nil, nil, err
		}
		rc, err := registry.New(conn, &registry.Config{Logger: log})
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		return conn, rc, nil
	}
	conn, rc, err := dial(ctx)
	if err != nil {
		p.kill()
		return nil, err
	}
	var fleetWG sync.WaitGroup
	srv := &regServer{pid: p.cmd.Process.Pid}
	srv.stop = func() error {
		fleetWG.Wait()
		conn.Close()
		return p.stop()
	}
	srv.fleet = func(ctx context.Context, n int) error {
		err := registerAll(ctx, n, func(ctx context.Context, i int) error {
			_, err := rc.RegisterOnce(ctx, registry.Instance{Service: "fleet", ID: "i" + strconv.Itoa(i), Address: "10.0.0.1", Port: 1 + i%65000, TTL: 3 * o.heartbeat})
			return err
		})
		if err != nil {
			return err
		}
		// Heartbeat every instance once per interval, spread evenly, as n
		// registry.Registrations would.
		subjects := make([]string, n)
		for i := range subjects {
			subjects[i] = registrywire.HeartbeatSubject("fleet", "i"+strconv.Itoa(i))
		}
		const slices = 100
		fleetWG.Go(func() {
			t := time.NewTicker(o.heartbeat / slices)
			defer t.Stop()
			nc := conn.NATS()
			for k := 0; ; k = (k + 1) % slices {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				for i := k; i < n; i += slices {
					nc.Publish(subjects[i], nil)
				}
			}
		})
		return nil
	}
	srv.watcher = func(ctx context.Context) (<-chan string, func(), error) {
		wconn, wrc, err := dial(ctx)
		if err != nil {
			return nil, nil, err
		}
		w, err := wrc.Watch(ctx, "watched")
		if err != nil {
			wconn.Close()
			return nil, nil, err
		}
		out := make(chan string, 1024)
		wctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				ev, err := w.Next(wctx)
				if err != nil {
					return
				}
				select {
				case out <- ev.Instance.ID:
				default:
				}
			}
		})
		return out, func() { cancel(); wg.Wait(); w.Stop(); wconn.Close() }, nil
	}
	srv.change = func(ctx context.Context, id string) error {
		_, err := rc.RegisterOnce(ctx, registry.Instance{Service: "watched", ID: id, Address: "10.0.0.2", Port: 80})
		return err
	}
	return srv, nil
}

func startEtcdRegistry(ctx context.Context, dir string, o *regOptions, stderr io.Writer) (*regServer, error) {
	e, err := runEtcd(ctx, dir, stderr)
	if err != nil {
		return nil, err
	}
	var fleetWG sync.WaitGroup
	srv := &regServer{pid: e.pid}
	srv.stop = func() error {
		fleetWG.Wait()
		e.cli.Close()
		return e.stop()
	}
	ttl := int64((3 * o.heartbeat).Seconds())
	srv.fleet = func(ctx context.Context, n int) error {
		return registerAll(ctx, n, func(rctx context.Context, i int) error {
			lease, err := e.cli.Grant(rctx, max(ttl, 1))
			if err != nil {
				return err
			}
			val := fmt.Sprintf(`{"address":"10.0.0.1","port":%d}`, 1+i%65000)
			if _, err := e.cli.Put(rctx, "fleet/i"+strconv.Itoa(i), val, clientv3.WithLease(lease.ID)); err != nil {
				return err
			}
			// KeepAlive renews every TTL/3 until ctx (the fleet's) ends;
			// its responses are drained.
			ka, err := e.cli.KeepAlive(ctx, lease.ID)
			if err != nil {
				return err
			}
			fleetWG.Go(func() {
				for range ka {
				}
			})
			return nil
		})
	}
	srv.watcher = func(ctx context.Context) (<-chan string, func(), error) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.endpoint}, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, nil, err
		}
		wctx, cancel := context.WithCancel(ctx)
		wch := cli.Watch(clientv3.WithRequireLeader(wctx), "watched/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		if resp := <-wch; !resp.Created {
			cancel()
			cli.Close()
			return nil, nil, errors.New("etcd watch not created")
		}
		out := make(chan string, 1024)
		var wg sync.WaitGroup
		wg.Go(func() {
			for resp := range wch {
				for _, ev := range resp.Events {
					select {
					case out <- strings.TrimPrefix(string(ev.Kv.Key), "watched/"):
					default:
					}
				}
			}
		})
		return out, func() { cancel(); wg.Wait(); cli.Close() }, nil
	}
	srv.change = func(ctx context.Context, id string) error {
		_, err := e.cli.Put(ctx, "watched/"+id, `{"address":"10.0.0.2","port":80}`)
		return err
	}
	return srv, nil
}
