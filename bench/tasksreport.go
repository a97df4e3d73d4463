package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"
)

// taskResult is one system's medians over the rounds.
type taskResult struct {
	System string `json:"system"`
	About  string `json:"about"`
	// Throughput has a run per results mode measured; a mode the system
	// does not support is absent.
	Throughput []taskRunResult `json:"throughput"`
	PickupP50  time.Duration   `json:"pickup_p50_ns"`
	PickupP99  time.Duration   `json:"pickup_p99_ns"`
}

type taskRunResult struct {
	Results     bool    `json:"results"`
	TasksPerSec float64 `json:"tasks_per_sec"`
	// ServerCPU is the server processes' (broker, node) CPU per task.
	ServerCPU time.Duration `json:"server_cpu_ns_per_task"`
	// WorkCPU is the producer's and the workers' CPU per task: this
	// process's, and that of the processes the system started for them.
	WorkCPU time.Duration `json:"producer_worker_cpu_ns_per_task"`
	// DriverCPU is this process's share of WorkCPU.
	DriverCPU time.Duration `json:"driver_cpu_ns_per_task"`
}

// medianTasks takes the median of each figure over the rounds.
func medianTasks(o *taskOptions, samples map[string][]taskSample) []taskResult {
	var rs []taskResult
	for _, name := range o.systems {
		ss := samples[name]
		dur := func(f func(taskSample) time.Duration) time.Duration {
			return time.Duration(median(collect(ss, func(s taskSample) float64 { return float64(f(s)) })))
		}
		r := taskResult{System: name, About: taskSystems[name].about,
			PickupP50: dur(func(s taskSample) time.Duration { return s.p50 }),
			PickupP99: dur(func(s taskSample) time.Duration { return s.p99 }),
		}
		for _, results := range o.modes() {
			if _, ok := ss[0].runs[results]; !ok {
				continue
			}
			run := func(f func(throughputRun) time.Duration) time.Duration {
				return dur(func(s taskSample) time.Duration { return f(s.runs[results]) })
			}
			r.Throughput = append(r.Throughput, taskRunResult{
				Results:     results,
				TasksPerSec: median(collect(ss, func(s taskSample) float64 { return s.runs[results].perSec })),
				ServerCPU:   run(func(t throughputRun) time.Duration { return t.serverCPU }),
				WorkCPU:     run(func(t throughputRun) time.Duration { return t.workCPU }),
				DriverCPU:   run(func(t throughputRun) time.Duration { return t.driverCPU }),
			})
		}
		rs = append(rs, r)
	}
	return rs
}

func writeTaskReport(w io.Writer, o *taskOptions, rs []taskResult) error {
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{
			"command": o.command, "date": time.Now().UTC().Format(time.RFC3339), "cpu": cpuModel(),
			"go_version": runtime.Version(), "tasks": o.tasks, "pickup_samples": o.samples, "rounds": o.rounds,
			"results": rs,
		})
	}
	fmt.Fprintf(w, "# Task queue benchmark\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", o.command)
	fmt.Fprintf(w, "- date: %s; %s; CPU: %s\n", time.Now().UTC().Format(time.RFC3339), runtime.Version(), cpuModel())
	fmt.Fprintf(w, "- setup: every server is its own process on 127.0.0.1, started fresh for each round; medians of %s, systems interleaved in each. "+
		"Throughput: %d no-op tasks, producer and workers at once, from just before the first enqueue until the last task has been run and acknowledged "+
		"(after an untimed warmup of %d tasks). Pickup: %d tasks one at a time on an idle queue (%v apart, each after the previous has been run), "+
		"from just before the enqueue call to the start of the handler, results off.\n",
		plural(o.rounds, "round"), o.tasks, max(100, o.tasks/50), o.samples, pickupGap)
	fmt.Fprintf(w, "- CPU per task, from /proc: server = the broker or node process; producer+workers = this benchmark process "+
		"(where the Go producer and workers run) plus any processes a system starts for them (Celery's worker and producer); driver = this process alone.\n")
	for _, r := range rs {
		fmt.Fprintf(w, "- %s: %s\n", r.System, r.About)
	}
	fmt.Fprintf(w, "\n## Throughput, %d no-op tasks\n\n", o.tasks)
	rows := [][]string{{"system", "results", "tasks/s", "server CPU µs/task", "producer+workers CPU µs/task", "driver CPU µs/task"}}
	for _, r := range rs {
		for _, results := range o.modes() {
			row := []string{r.System, onOff(results), "n/a", "–", "–", "–"}
			for _, t := range r.Throughput {
				if t.Results == results {
					row = []string{r.System, onOff(results), fmt.Sprintf("%.0f", t.TasksPerSec),
						formatMicros(t.ServerCPU), formatMicros(t.WorkCPU), formatMicros(t.DriverCPU)}
				}
			}
			rows = append(rows, row)
		}
	}
	writeTable(w, rows)
	fmt.Fprintf(w, "\n## Pickup latency on an idle queue, %d samples per round\n\n", o.samples)
	rows = [][]string{{"system", "p50", "p99"}}
	for _, r := range rs {
		rows = append(rows, []string{r.System, formatLatency(r.PickupP50), formatLatency(r.PickupP99)})
	}
	writeTable(w, rows)
	return nil
}

// formatLatency is "85 µs" below a millisecond and "12.3 ms" above.
func formatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
