package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func init() {
	// The push benchmark runs its servers by re-executing its own binary,
	// which in tests is this test binary (as TestMain does for "serve" and
	// "serve-node").
	if len(os.Args) > 1 && os.Args[1] == "serve-push" {
		os.Exit(runMain())
	}
}

// TestPushShort runs "bench push" briefly on both systems and the
// cluster, and checks that no process is left behind.
func TestPushShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and a 3-node cluster")
	}
	out, _ := runDriver(t, 0, "push", "-short", "-conns", "200", "-idle", "1s", "-settle", "200ms",
		"-broadcasts", "2", "-pushes", "20", "-cluster", "-o", "json")
	var rep pushReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(rep.Results) != 2 || rep.Cluster == nil {
		t.Fatalf("got %d results and cluster %v, want 2 and a cluster:\n%s", len(rep.Results), rep.Cluster, out)
	}
	for _, r := range rep.Results {
		if r.Conns != 200 || r.Dropped != 0 || r.After.RSS <= 0 || r.BroadcastCPUMedian <= 0 || r.ConnectTime <= 0 || len(r.Broadcasts) != 2 ||
			r.BroadcastMedian <= 0 || r.Push.N != 20 || r.Push.P50 <= 0 || r.Push.P99 < r.Push.P50 {
			t.Errorf("%s: bad figures %+v", r.System, r)
		}
	}
	if r := rep.Results[1]; r.System != "gorilla" || r.AfterMem.Goroutines < 1.9 {
		t.Errorf("gorilla holds %.2f goroutines per connection, want 2", r.AfterMem.Goroutines)
	}
	for _, s := range []latencySummary{rep.Cluster.CrossNode, rep.Cluster.SameNode} {
		if s.N != 20 || s.P50 <= 0 || s.Max < s.P99 {
			t.Errorf("cluster: bad latencies %+v", s)
		}
	}
	if kids := children(t); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
}

func TestPushUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"push", "-systems", "mortar,nope"}, `unknown system "nope"`},
		{[]string{"push", "-systems", "gorilla,gorilla"}, `listed twice`},
		{[]string{"push", "-conns", "1"}, `-conns 1: want 2 to`},
		{[]string{"push", "-pushes", "0"}, `must be at least 1`},
		{[]string{"push", "-o", "xml"}, `want markdown or json`},
		{[]string{"push", "extra"}, `unexpected arguments`},
		{[]string{"serve-push", "-system", "nope"}, `want mortar or gorilla`},
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

func TestParsePushOptionsShort(t *testing.T) {
	o, err := parsePushOptions([]string{"-short", "-pushes", "7"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.conns != shortPushConns || o.idle != shortPushIdle || o.pushes != 7 || o.cluster || len(o.systems) != 2 {
		t.Errorf("-short -pushes 7: %+v", o)
	}
	o, err = parsePushOptions(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.conns != 19000 || !o.cluster {
		t.Errorf("defaults: %+v", o)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 19000: "19,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
