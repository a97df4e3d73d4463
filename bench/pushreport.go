package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// pushReport is the "push" subcommand's output; -o json prints it as is.
type pushReport struct {
	Command    string             `json:"command"`
	Date       string             `json:"date"`
	GoVersion  string             `json:"go_version"`
	GOMAXPROCS int                `json:"gomaxprocs"`
	CPU        string             `json:"cpu"`
	Conns      int                `json:"conns"`
	Idle       time.Duration      `json:"idle_window_ns"`
	Baseline   time.Duration      `json:"baseline_window_ns"`
	Settle     time.Duration      `json:"settle_ns"`
	Broadcasts int                `json:"broadcasts"`
	Pushes     int                `json:"pushes"`
	Results    []pushResult       `json:"results"`
	Cluster    *pushClusterResult `json:"cluster,omitempty"`
}

// pushResult is one system's figures.
type pushResult struct {
	System      string        `json:"system"`
	About       string        `json:"about"`
	Conns       int           `json:"conns"`
	ConnectTime time.Duration `json:"connect_ns"`
	// Before is the server with no connection, Connected after they
	// connected and settled, After after the idle window (heartbeats).
	Before            pushStats       `json:"before"`
	Connected         pushStats       `json:"connected"`
	After             pushStats       `json:"after_idle"`
	ConnectedMem      pushPerConn     `json:"connected_per_conn"`
	AfterMem          pushPerConn     `json:"after_idle_per_conn"`
	BaselineCPUPerMin time.Duration   `json:"cpu_per_minute_without_conns_ns"`
	IdleWindow        time.Duration   `json:"idle_window_ns"`
	CPUPerMin         time.Duration   `json:"cpu_per_minute_ns"`
	PingsPerConn      float64         `json:"pings_per_conn_in_window"`
	Dropped           int             `json:"dropped"`
	DropError         string          `json:"drop_error,omitempty"`
	Broadcasts        []time.Duration `json:"broadcast_ns"`
	BroadcastMedian   time.Duration   `json:"broadcast_median_ns"`
	// BroadcastCPU is the server's CPU time for each broadcast.
	BroadcastCPU       []time.Duration `json:"broadcast_server_cpu_ns"`
	BroadcastCPUMedian time.Duration   `json:"broadcast_server_cpu_median_ns"`
	Push               latencySummary  `json:"push_to_one"`
}

// pushPerConn is memory per connection: a difference of pushStats over
// the connections.
type pushPerConn struct {
	RSS        float64 `json:"rss_bytes"`
	HeapStack  float64 `json:"heap_stack_bytes"`
	Goroutines float64 `json:"goroutines"`
}

func (s pushStats) perConn(before pushStats, n int) pushPerConn {
	return pushPerConn{
		RSS:        float64(s.RSS-before.RSS) / float64(n),
		HeapStack:  (float64(s.HeapInuse+s.StackInuse) - float64(before.HeapInuse+before.StackInuse)) / float64(n),
		Goroutines: float64(s.Goroutines-before.Goroutines) / float64(n),
	}
}

func (p pushPerConn) String() string {
	return fmt.Sprintf("%.2f KiB RSS, %.2f KiB heap+stacks, %.2f goroutines per connection", p.RSS/1024, p.HeapStack/1024, p.Goroutines)
}

// pushClusterResult is the 3-node cluster's push latencies, publisher on
// node 1.
type pushClusterResult struct {
	CrossNode latencySummary `json:"client_on_n2"`
	SameNode  latencySummary `json:"client_on_n1"`
}

func newPushReport(o *pushOptions) *pushReport {
	return &pushReport{
		Command:    o.command,
		Date:       time.Now().UTC().Format(time.RFC3339),
		GoVersion:  runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPU:        cpuModel(),
		Conns:      o.conns,
		Idle:       o.idle,
		Baseline:   o.baseline,
		Settle:     o.settle,
		Broadcasts: o.broadcasts,
		Pushes:     o.pushes,
	}
}

func (r *pushReport) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "# Push gateway benchmark\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", r.Command)
	fmt.Fprintf(w, "- date: %s; %s; GOMAXPROCS %d; CPU: %s\n", r.Date, r.GoVersion, r.GOMAXPROCS, r.CPU)
	fmt.Fprintf(w, "- setup: each server is its own process on 127.0.0.1 (this binary re-executed); this process holds the %s connections "+
		"(gorilla/websocket clients with %d-byte buffers, a goroutine each, answering pings; dialled %d at a time from 4 source addresses per system). "+
		"Memory: the server's VmRSS and Go heap in use + stacks in use, each read after runtime.GC and debug.FreeOSMemory, "+
		"%v after the last connection and again after the CPU window, minus before the first connection, over N (the kernel's socket buffers are not in RSS). "+
		"CPU: the server's getrusage (user+system) over a %v window with every connection idle, scaled to a minute; "+
		"\"without connections\" is the same over %v before any connected. "+
		"Broadcast: from just before the push call until the last of the connections has it, with the server's CPU time over the same span; one untimed, then %d timed, %v apart. "+
		"Push to one: %d pushes to the client ID of one connection, one at a time (each waits for its arrival), from just before the push call, after %d untimed; "+
		"the driver and the server share the machine's CPUs.\n",
		thousands(r.Conns), pushClientBufSize, pushDialInFlight, r.Settle, r.Idle, r.Baseline, r.Broadcasts, broadcastGap, r.Pushes, pushWarm)
	for _, res := range r.Results {
		fmt.Fprintf(w, "- %s: %s\n", res.System, res.About)
	}
	fmt.Fprintf(w, "\n## %s idle connections, heartbeats on\n\n", thousands(r.Conns))
	writeTable(w, r.rows())
	if r.Cluster != nil {
		fmt.Fprintf(w, "\n## Push to one client ID, %s pushes one at a time\n\n", thousands(r.Pushes))
		rows := [][]string{{"path", "p50", "p99", "max"}}
		lat := func(name string, s latencySummary) {
			rows = append(rows, []string{name, formatLatency(s.P50), formatLatency(s.P99), formatLatency(s.Max)})
		}
		lat("mortar, 3-node cluster: publisher on n1, client on n2", r.Cluster.CrossNode)
		lat("mortar, 3-node cluster: publisher and client on n1", r.Cluster.SameNode)
		for _, res := range r.Results {
			lat(fmt.Sprintf("%s, one server holding %s connections", res.System, thousands(res.Conns)), res.Push)
		}
		writeTable(w, rows)
	}
	return nil
}

// rows are the idle-connection table: a row per figure, a column per
// system, and mortar/gorilla when both ran.
func (r *pushReport) rows() [][]string {
	head := []string{"figure"}
	for _, res := range r.Results {
		head = append(head, res.System)
	}
	m, g := r.find("mortar"), r.find("gorilla")
	both := m != nil && g != nil
	if both {
		head = append(head, "mortar/gorilla")
	}
	rows := [][]string{head}
	add := func(name string, cell func(pushResult) string, val func(pushResult) float64) {
		row := []string{name}
		for _, res := range r.Results {
			row = append(row, cell(res))
		}
		if both {
			row = append(row, ratio(val, *m, *g))
		}
		rows = append(rows, row)
	}
	kib := func(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
	add(fmt.Sprintf("RSS per idle connection, after %v idle", r.Idle), func(p pushResult) string { return kib(p.AfterMem.RSS) },
		func(p pushResult) float64 { return p.AfterMem.RSS })
	add(fmt.Sprintf("Go heap + stacks per idle connection, after %v idle", r.Idle), func(p pushResult) string { return kib(p.AfterMem.HeapStack) },
		func(p pushResult) float64 { return p.AfterMem.HeapStack })
	add(fmt.Sprintf("RSS per connection, %v after connecting", r.Settle), func(p pushResult) string { return kib(p.ConnectedMem.RSS) },
		func(p pushResult) float64 { return p.ConnectedMem.RSS })
	add("server RSS: none → connected → after idle", func(p pushResult) string {
		return fmt.Sprintf("%.1f → %.1f → %.1f MiB", mib(p.Before.RSS), mib(p.Connected.RSS), mib(p.After.RSS))
	}, nil)
	add("goroutines per connection", func(p pushResult) string { return fmt.Sprintf("%.2f", p.AfterMem.Goroutines) }, nil)
	add("CPU per minute keeping them alive", func(p pushResult) string {
		return fmt.Sprintf("%.3f s (%.2f%% of a core)", p.CPUPerMin.Seconds(), 100*p.CPUPerMin.Seconds()/60)
	}, func(p pushResult) float64 { return float64(p.CPUPerMin) })
	add("CPU per minute without connections", func(p pushResult) string {
		return fmt.Sprintf("%.3f s", p.BaselineCPUPerMin.Seconds())
	}, nil)
	add("pings answered per connection in the window", func(p pushResult) string { return fmt.Sprintf("%.2f", p.PingsPerConn) }, nil)
	add("connections dropped", func(p pushResult) string { return fmt.Sprint(p.Dropped) }, nil)
	add("connect all (64 at once)", func(p pushResult) string { return fmt.Sprintf("%.2f s", p.ConnectTime.Seconds()) },
		func(p pushResult) float64 { return float64(p.ConnectTime) })
	add(fmt.Sprintf("broadcast to all: median of %d", r.Broadcasts), func(p pushResult) string { return formatLatency(p.BroadcastMedian) },
		func(p pushResult) float64 { return float64(p.BroadcastMedian) })
	add("server CPU per broadcast: median", func(p pushResult) string { return formatLatency(p.BroadcastCPUMedian) },
		func(p pushResult) float64 { return float64(p.BroadcastCPUMedian) })
	add("broadcast: each", func(p pushResult) string {
		s := make([]string, len(p.Broadcasts))
		for i, d := range p.Broadcasts {
			s[i] = formatLatency(d)
		}
		return strings.Join(s, ", ")
	}, nil)
	add("push to one of them: p50", func(p pushResult) string { return formatLatency(p.Push.P50) },
		func(p pushResult) float64 { return float64(p.Push.P50) })
	add("push to one of them: p99", func(p pushResult) string { return formatLatency(p.Push.P99) },
		func(p pushResult) float64 { return float64(p.Push.P99) })
	return rows
}

func (r *pushReport) find(system string) *pushResult {
	for i := range r.Results {
		if r.Results[i].System == system {
			return &r.Results[i]
		}
	}
	return nil
}

// ratio is val(a)/val(b) as "0.05×", or "–" without val or b's value.
func ratio(val func(pushResult) float64, a, b pushResult) string {
	if val == nil || val(b) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", val(a)/val(b))
}

// thousands formats n with comma separators: 19,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
