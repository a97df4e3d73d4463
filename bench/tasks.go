package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// The "tasks" subcommand compares task queues side by side on no-op
// tasks: end-to-end throughput (N tasks, producer and workers at once,
// from the first enqueue until the last task has been run and
// acknowledged), with results off and on; pickup latency on an idle
// queue (from just before the enqueue call to the start of the handler);
// and CPU per task, of the server processes (from /proc) and of the
// producer and workers.
//
// Adding a system: a file registers a taskSystem from init with
// registerTask. Its start runs the system's server processes (startRedis,
// or startNode for a mortar node) and returns a taskServer. A system
// whose producer and workers are Go code in this process only writes
// "enqueue" and "handle": it builds a goQueue and calls newGoTaskServer,
// and its handler calls taskProbe.started first thing (see asynq.go and
// jetstream.go). The harness times every run, reads CPU, takes the
// medians over rounds and writes the report. A mortar system, in a file
// of its own (the name "mortar" in this table is free; the RPC systems'
// table is another), would be:
//
//	func init() {
//		registerTask(taskSystem{name: "mortar", about: "...", results: true,
//			start: func(ctx context.Context, dir string, o *taskOptions, stderr io.Writer) (*taskServer, error) {
//				node, err := startNode(ctx, dir, "always", 2*time.Hour, stderr)
//				if err != nil {
//					return nil, err
//				}
//				// Dial node.addr (the node's NATS URL); start workers whose
//				// handler calls probe.started() first, then stores a result
//				// if the task asks for one.
//				probe := &taskProbe{}
//				q := goQueue{
//					enqueue: func(ctx context.Context, i int, results bool) error { ... },
//					acked:   func(ctx context.Context) (int64, error) { ... }, // the server's count
//				}
//				return newGoTaskServer(q, probe, []int{node.cmd.Process.Pid}, func() error {
//					// stop the workers, close the connections
//					return node.stop()
//				}), nil
//			},
//		})
//	}

// taskSystem is one task queue the "tasks" subcommand measures.
type taskSystem struct {
	// name is what -systems takes and what the report shows.
	name string
	// about says, for the report, what is measured and how the system is
	// configured: concurrency, persistence, what "results on" stores.
	about string
	// results says whether the system can store a result per task;
	// without, its results-on row shows n/a.
	results bool
	// check, optional, reports a missing program or package, naming what
	// to install. It runs before anything is started.
	check func() error
	// start runs the system's server processes on 127.0.0.1, with any data
	// under dir (a fresh temporary directory, removed afterwards), and
	// returns them running and ready. It is called once per round.
	start func(ctx context.Context, dir string, o *taskOptions, stderr io.Writer) (*taskServer, error)
}

// taskServer is a running system.
type taskServer struct {
	// serverPIDs are the server processes (a broker, a node); their CPU,
	// with their children's, is the report's server CPU.
	serverPIDs []int
	// otherPIDs are processes besides the servers and this one that start
	// ran for the producer or the workers (Celery's); their CPU, with
	// their children's, counts as producer and worker CPU with this
	// process's.
	otherPIDs []int
	// throughput enqueues n no-op tasks while the workers run them, each
	// storing a small result if results is set. It returns once the last
	// task has been run and acknowledged, with the time just before the
	// first enqueue and the time the last task was done (this machine's
	// clock; a monotonic reading is used when both carry one).
	throughput func(ctx context.Context, n int, results bool) (start, end time.Time, err error)
	// pickup enqueues one task (sample i) on the idle queue, waits until
	// it has been run, and returns the time from just before the enqueue
	// call to the start of its handler.
	pickup func(ctx context.Context, i int) (time.Duration, error)
	// stop stops every process start started, by PID, and waits for them.
	stop func() error
}

var taskSystems = map[string]taskSystem{}

// taskOrder is the order of the default -systems list; systems not in it
// follow, sorted by name.
var taskOrder = []string{"mortar", "jetstream", "jetstream-always", "asynq", "celery"}

// registerTask adds s to the systems "bench tasks" can measure; call it
// from init. It panics on a missing field or a name registered twice.
func registerTask(s taskSystem) {
	if s.name == "" || s.start == nil {
		panic(fmt.Sprintf("bench: registerTask %q: name and start are required", s.name))
	}
	if _, dup := taskSystems[s.name]; dup {
		panic(fmt.Sprintf("bench: registerTask %q: registered twice", s.name))
	}
	taskSystems[s.name] = s
}

func taskNames() []string {
	var names []string
	for _, n := range taskOrder {
		if _, ok := taskSystems[n]; ok {
			names = append(names, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(taskSystems)) {
		if !slices.Contains(taskOrder, n) {
			names = append(names, n)
		}
	}
	return names
}

// taskOptions is the "tasks" subcommand's configuration.
type taskOptions struct {
	systems []string
	tasks   int    // tasks per throughput run
	results string // both, off, on
	samples int    // pickup latency samples per round
	rounds  int
	format  string
	command string
}

// modes are the results settings measured, off first.
func (o *taskOptions) modes() []bool {
	switch o.results {
	case "off":
		return []bool{false}
	case "on":
		return []bool{true}
	}
	return []bool{false, true}
}

// Short mode: one round of 5,000 tasks and 20 pickup samples. (An idle
// asynq worker polls about once a second, so each of its samples takes
// about a second: 20 keep -short under a minute.)
const (
	shortTasks   = 5000
	shortSamples = 20
)

// pickupGap is the pause after each pickup sample has been run, so that
// the next finds the queue idle.
const pickupGap = 5 * time.Millisecond

func parseTaskOptions(args []string, stderr io.Writer) (*taskOptions, error) {
	o := &taskOptions{}
	fs := flag.NewFlagSet("bench tasks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	systemsFlag := fs.String("systems", strings.Join(taskNames(), ","), "comma-separated `systems` to compare: "+strings.Join(taskNames(), ", "))
	fs.IntVar(&o.tasks, "tasks", 100000, "no-op tasks per throughput run")
	fs.StringVar(&o.results, "results", "both", "store a result per task: both, off or on")
	fs.IntVar(&o.samples, "samples", 300, "pickup latency samples per round")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; the report shows medians")
	fs.StringVar(&o.format, "o", "markdown", "report format: markdown or json")
	short := fs.Bool("short", false, fmt.Sprintf("a quick run for CI: -tasks %d -samples %d -rounds 1 unless given", shortTasks, shortSamples))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["tasks"] {
			o.tasks = shortTasks
		}
		if !set["samples"] {
			o.samples = shortSamples
		}
		if !set["rounds"] {
			o.rounds = 1
		}
	}
	for s := range strings.SplitSeq(*systemsFlag, ",") {
		if _, ok := taskSystems[s]; !ok {
			return nil, fmt.Errorf("unknown system %q (have %s)", s, strings.Join(taskNames(), ", "))
		}
		if slices.Contains(o.systems, s) {
			return nil, fmt.Errorf("system %q listed twice", s)
		}
		o.systems = append(o.systems, s)
	}
	switch {
	case fs.NArg() > 0:
		return nil, errors.New("unexpected arguments")
	case o.tasks < 1 || o.samples < 1 || o.rounds < 1:
		return nil, errors.New("-tasks, -samples and -rounds must be at least 1")
	case o.results != "both" && o.results != "off" && o.results != "on":
		return nil, fmt.Errorf("-results %q: want both, off or on", o.results)
	case o.format != "markdown" && o.format != "json":
		return nil, fmt.Errorf("-o %q: want markdown or json", o.format)
	}
	o.command = strings.TrimSpace("go run ./bench tasks " + strings.Join(args, " "))
	return o, nil
}

func tasksMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseTaskOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench tasks: %v\n", err)
		return 2
	}
	for _, name := range o.systems {
		if c := taskSystems[name].check; c != nil {
			if err := c(); err != nil {
				fmt.Fprintf(stderr, "bench tasks: %s: %v\n", name, err)
				return 1
			}
		}
	}
	samples := map[string][]taskSample{}
	for round := 1; round <= o.rounds; round++ {
		for _, name := range o.systems {
			s, err := measureTasks(ctx, taskSystems[name], o, round, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "bench tasks: round %d, %s: %v\n", round, name, err)
				return 1
			}
			samples[name] = append(samples[name], s)
		}
	}
	if err := writeTaskReport(stdout, o, medianTasks(o, samples)); err != nil {
		fmt.Fprintf(stderr, "bench tasks: %v\n", err)
		return 1
	}
	return 0
}

// taskSample is one round's figures for one system.
type taskSample struct {
	runs     map[bool]throughputRun // by results on
	p50, p99 time.Duration
}

// throughputRun is one throughput run's figures; CPU is per task.
type throughputRun struct {
	perSec    float64
	serverCPU time.Duration // the server processes
	workCPU   time.Duration // producer and workers: this process and the other processes
	driverCPU time.Duration // this process alone
}

// measureTasks runs one round of sys on a fresh server: an untimed
// warmup and a throughput run per results mode, then the pickup samples.
func measureTasks(ctx context.Context, sys taskSystem, o *taskOptions, round int, stderr io.Writer) (s taskSample, err error) {
	dir, err := os.MkdirTemp("", "mortar-bench-tasks-"+sys.name+"-")
	if err != nil {
		return s, err
	}
	defer os.RemoveAll(dir)
	srv, err := sys.start(ctx, dir, o, stderr)
	if err != nil {
		return s, fmt.Errorf("start: %w", err)
	}
	defer func() {
		if serr := srv.stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop: %w", serr))
		}
	}()
	s.runs = map[bool]throughputRun{}
	for _, results := range o.modes() {
		if results && !sys.results {
			continue
		}
		if _, _, err := srv.throughput(ctx, max(100, o.tasks/50), results); err != nil {
			return s, fmt.Errorf("warmup (results %s): %w", onOff(results), err)
		}
		r, err := measureThroughput(ctx, srv, o.tasks, results)
		if err != nil {
			return s, fmt.Errorf("throughput (results %s): %w", onOff(results), err)
		}
		s.runs[results] = r
		fmt.Fprintf(stderr, "round %d/%d  %-16s results %-3s %8.0f tasks/s  server CPU %s µs/task  producer+workers %s µs/task\n",
			round, o.rounds, sys.name, onOff(results), r.perSec, formatMicros(r.serverCPU), formatMicros(r.workCPU))
	}
	lats := make([]time.Duration, 0, o.samples)
	for i := range o.samples {
		l, err := srv.pickup(ctx, i)
		if err != nil {
			return s, fmt.Errorf("pickup sample %d: %w", i, err)
		}
		lats = append(lats, l)
		if err := sleepCtx(ctx, pickupGap); err != nil {
			return s, err
		}
	}
	slices.Sort(lats)
	s.p50, s.p99 = percentile(lats, 50), percentile(lats, 99)
	fmt.Fprintf(stderr, "round %d/%d  %-16s pickup p50 %v  p99 %v\n", round, o.rounds, sys.name, s.p50, s.p99)
	return s, nil
}

// measureThroughput runs one throughput run and reads the CPU time of
// every process involved around it.
func measureThroughput(ctx context.Context, srv *taskServer, n int, results bool) (throughputRun, error) {
	cpu := func() (server, other, self cpuTimes, err error) {
		if server, err = pidsCPU(srv.serverPIDs); err != nil {
			return
		}
		if other, err = pidsCPU(srv.otherPIDs); err != nil {
			return
		}
		self, err = selfCPU()
		return
	}
	s0, o0, d0, err := cpu()
	if err != nil {
		return throughputRun{}, err
	}
	start, end, err := srv.throughput(ctx, n, results)
	if err != nil {
		return throughputRun{}, err
	}
	s1, o1, d1, err := cpu()
	if err != nil {
		return throughputRun{}, err
	}
	elapsed := end.Sub(start)
	if elapsed <= 0 {
		return throughputRun{}, fmt.Errorf("run took %v", elapsed)
	}
	per := func(c cpuTimes) time.Duration { return c.total() / time.Duration(n) }
	driver := d1.sub(d0)
	return throughputRun{
		perSec:    float64(n) / elapsed.Seconds(),
		serverCPU: per(s1.sub(s0)),
		workCPU:   per(o1.sub(o0)) + per(driver),
		driverCPU: per(driver),
	}, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
