package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// report is the driver's output; -o json prints it as is.
type report struct {
	Date         string        `json:"date"`
	GoVersion    string        `json:"go_version"`
	GOMAXPROCS   int           `json:"gomaxprocs"`
	CPU          string        `json:"cpu"`
	Command      string        `json:"command"`
	Setup        string        `json:"setup"`
	Systems      []systemInfo  `json:"systems"`
	PayloadBytes int           `json:"payload_bytes"`
	Duration     time.Duration `json:"duration_ns"`
	Warmup       time.Duration `json:"warmup_ns"`
	Rounds       int           `json:"rounds"`
	Levels       []level       `json:"levels"`
}

type systemInfo struct {
	Name  string `json:"name"`
	About string `json:"about,omitempty"`
}

// level is the results at one concurrency.
type level struct {
	Concurrency int      `json:"concurrency"`
	Results     []result `json:"results"`
}

// result is one system's medians at one concurrency. The ratios are its
// calls/s over netrpc's and grpc's, null when those were not measured.
type result struct {
	System string `json:"system"`
	stats
	VsNetRPC *float64 `json:"ratio_vs_netrpc"`
	VsGRPC   *float64 `json:"ratio_vs_grpc"`
}

func newReport(o *options) *report {
	r := &report{
		Date:         time.Now().UTC().Format(time.RFC3339),
		GoVersion:    runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		GOMAXPROCS:   runtime.GOMAXPROCS(0),
		CPU:          cpuModel(),
		Command:      o.command,
		PayloadBytes: o.payload,
		Duration:     o.duration,
		Warmup:       o.warmup,
		Rounds:       o.rounds,
		Setup: fmt.Sprintf("%d-byte echo over 127.0.0.1; client and server in separate processes, a fresh server per measurement; "+
			"one client connection shared by all callers; %v timed window after %v warmup; "+
			"median of %s, systems interleaved in each", o.payload, o.duration, o.warmup, plural(o.rounds, "round")),
	}
	for _, n := range o.systems {
		r.Systems = append(r.Systems, systemInfo{n, systems[n].about})
	}
	return r
}

// addLevel adds the results at concurrency conc, taking each system's
// stats from get.
func (r *report) addLevel(conc int, names []string, get func(name string) stats) {
	lv := level{Concurrency: conc}
	for _, n := range names {
		lv.Results = append(lv.Results, result{System: n, stats: get(n)})
	}
	for i := range lv.Results {
		lv.Results[i].VsNetRPC = lv.ratio(i, "netrpc")
		lv.Results[i].VsGRPC = lv.ratio(i, "grpc")
	}
	r.Levels = append(r.Levels, lv)
}

// ratio is result i's calls/s over base's, or nil if base was not measured.
func (lv level) ratio(i int, base string) *float64 {
	for _, b := range lv.Results {
		if b.System == base && b.CallsPerSec > 0 {
			x := lv.Results[i].CallsPerSec / b.CallsPerSec
			return &x
		}
	}
	return nil
}

func (r *report) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.writeMarkdown(w)
}

func (r *report) writeMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# RPC echo benchmark\n\n")
	fmt.Fprintf(bw, "- date: %s\n", r.Date)
	fmt.Fprintf(bw, "- go version: %s\n", r.GoVersion)
	fmt.Fprintf(bw, "- GOMAXPROCS: %d\n", r.GOMAXPROCS)
	fmt.Fprintf(bw, "- CPU: %s\n", r.CPU)
	fmt.Fprintf(bw, "- command: `%s`\n", r.Command)
	fmt.Fprintf(bw, "- setup: %s\n", r.Setup)
	for _, s := range r.Systems {
		if s.About != "" {
			fmt.Fprintf(bw, "- %s: %s\n", s.Name, s.About)
		}
	}
	for _, lv := range r.Levels {
		fmt.Fprintf(bw, "\n## %s\n\n", callersTitle(lv.Concurrency))
		writeTable(bw, lv.rows())
	}
	return bw.Flush()
}

func callersTitle(n int) string {
	if n == 1 {
		return "1 caller"
	}
	return fmt.Sprintf("%d concurrent callers", n)
}

// rows are the markdown table of lv, header first.
func (lv level) rows() [][]string {
	rows := [][]string{{"system", "calls/s", "vs netrpc", "vs grpc", "p50", "p99",
		"client allocs/call", "client CPU µs/call", "server CPU µs/call"}}
	for _, res := range lv.Results {
		rows = append(rows, []string{
			res.System,
			fmt.Sprintf("%.0f", res.CallsPerSec),
			formatRatio(res.VsNetRPC),
			formatRatio(res.VsGRPC),
			formatMicros(res.P50) + " µs",
			formatMicros(res.P99) + " µs",
			fmt.Sprintf("%.1f", res.ClientAllocsPerCall),
			formatMicros(res.ClientCPUPerCall),
			formatMicros(res.ServerCPUPerCall),
		})
	}
	return rows
}

func formatRatio(r *float64) string {
	if r == nil {
		return "–"
	}
	return fmt.Sprintf("%.2f×", *r)
}

func formatMicros(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond))
}

// writeTable writes rows as a markdown table with padded columns; the
// first column is left-aligned, the others right-aligned.
func writeTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i == 0 {
				fmt.Fprintf(&b, "| %s%s ", c, pad)
			} else {
				fmt.Fprintf(&b, "| %s%s ", pad, c)
			}
		}
		fmt.Fprintln(w, b.String()+"|")
	}
	line(rows[0])
	seps := make([]string, len(widths))
	for i, n := range widths {
		seps[i] = strings.Repeat("-", n)
		if i > 0 {
			seps[i] = seps[i][1:] + ":"
		}
	}
	line(seps)
	for _, row := range rows[1:] {
		line(row)
	}
}

// cpuModel is the first "model name" in /proc/cpuinfo, with the number of
// logical CPUs.
func cpuModel() string {
	model := "unknown"
	data, err := os.ReadFile("/proc/cpuinfo")
	if err == nil {
		for line := range strings.Lines(string(data)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s (%d logical CPUs)", model, runtime.NumCPU())
}

// plural is "1 round", "3 rounds".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
