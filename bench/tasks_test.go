package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestTasksShort runs "bench tasks" briefly on every system whose
// programs are installed, and checks that no process is left behind.
func TestTasksShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and runs every task system")
	}
	var names []string
	for _, n := range taskNames() {
		if c := taskSystems[n].check; c != nil {
			if err := c(); err != nil {
				t.Logf("skipping %s: %v", n, err)
				continue
			}
		}
		names = append(names, n)
	}
	out, _ := runDriver(t, 0, "tasks", "-systems", strings.Join(names, ","), "-tasks", "300", "-samples", "5", "-rounds", "1", "-o", "json")
	var rep struct{ Results []taskResult }
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(rep.Results) != len(names) {
		t.Fatalf("got %d results, want %d:\n%s", len(rep.Results), len(names), out)
	}
	for _, r := range rep.Results {
		modes := 1
		if taskSystems[r.System].results {
			modes = 2
		}
		if r.PickupP50 <= 0 || r.PickupP99 < r.PickupP50 || len(r.Throughput) != modes {
			t.Errorf("%s: incomplete result %+v", r.System, r)
		}
		for _, run := range r.Throughput {
			if run.TasksPerSec <= 0 || run.ServerCPU < 0 || run.WorkCPU < run.DriverCPU {
				t.Errorf("%s, results %v: bad figures %+v", r.System, run.Results, run)
			}
		}
	}
	if kids := children(t); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
}

// children lists this process's child processes.
func children(t *testing.T) []string {
	tree, err := procTree()
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, pid := range tree[os.Getpid()].children {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		kids = append(kids, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
	}
	return kids
}

func TestTasksUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"tasks", "-systems", "asynq,nope"}, `unknown system "nope"`},
		{[]string{"tasks", "-systems", "celery,celery"}, `listed twice`},
		{[]string{"tasks", "-results", "maybe"}, `want both, off or on`},
		{[]string{"tasks", "-tasks", "0"}, `must be at least 1`},
		{[]string{"tasks", "-o", "xml"}, `want markdown or json`},
		{[]string{"tasks", "extra"}, `unexpected arguments`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr := runDriver(t, 2, tt.args...)
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
		})
	}
}

func TestParseTaskOptionsShort(t *testing.T) {
	o, err := parseTaskOptions([]string{"-short", "-rounds", "2", "-results", "off"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.tasks != shortTasks || o.samples != shortSamples || o.rounds != 2 || len(o.modes()) != 1 {
		t.Errorf("-short -rounds 2 -results off: %+v", o)
	}
	if len(o.systems) < 4 {
		t.Errorf("default systems %v, want every registered one", o.systems)
	}
}
