package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The driver runs its servers by re-executing its own binary, which in
	// tests is this test binary.
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "serve-node") {
		os.Exit(runMain())
	}
	goleak.VerifyTestMain(m)
}

// shortArgs runs netrpc and grpc end to end, briefly.
var shortArgs = []string{
	"-systems", "netrpc,grpc", "-concurrency", "1,4",
	"-duration", "200ms", "-warmup", "50ms", "-rounds", "1",
}

// runDriver runs the command with args and returns its stdout; it fails t
// unless the command exits with code want.
func runDriver(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	var out bytes.Buffer
	var errOut lockedBuffer // server processes' stderr is copied in by exec's goroutines
	if code := run(t.Context(), args, nil, &out, &errOut); code != want {
		t.Fatalf("bench %s: exit code %d, want %d; stderr:\n%s", strings.Join(args, " "), code, want, errOut.String())
	}
	return out.String(), errOut.String()
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestHarnessShort(t *testing.T) {
	out, _ := runDriver(t, 0, shortArgs...)
	for _, want := range []string{"## 1 caller\n", "## 4 concurrent callers\n", "- GOMAXPROCS: ", "default options (no tuning)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, sys := range []string{"netrpc", "grpc"} {
		if n := strings.Count(out, "\n| "+sys+" "); n != 2 {
			t.Errorf("output has %d %s rows, want 2:\n%s", n, sys, out)
		}
	}
}

func TestHarnessShortJSON(t *testing.T) {
	out, _ := runDriver(t, 0, append(shortArgs, "-o", "json")...)
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(rep.Levels) != 2 {
		t.Fatalf("got %d levels, want 2", len(rep.Levels))
	}
	for _, lv := range rep.Levels {
		for _, res := range lv.Results {
			if res.Calls == 0 || res.P50 <= 0 || res.ServerCPUPerCall <= 0 || res.VsNetRPC == nil || res.VsGRPC == nil {
				t.Errorf("concurrency %d, %s: incomplete result %+v", lv.Concurrency, res.System, res)
			}
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-systems", "netrpc,nope"}, 2, `unknown system "nope"`},
		{[]string{"-systems", "grpc,grpc"}, 2, `listed twice`},
		{[]string{"-concurrency", "1,0"}, 2, `not a positive integer`},
		{[]string{"-rounds", "0"}, 2, `-rounds must be at least 1`},
		{[]string{"-duration", "0s"}, 2, `-duration must be positive`},
		{[]string{"-o", "xml"}, 2, `want markdown or json`},
		{[]string{"extra"}, 2, `unexpected arguments`},
		{[]string{"-nope"}, 2, `flag provided but not defined`},
		{[]string{"-h"}, 0, `usage: bench`},
		{[]string{"serve"}, 2, `-system is required`},
		{[]string{"serve", "-system", "nope"}, 2, `unknown system "nope"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			_, stderr := runDriver(t, tt.code, tt.args...)
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr)
			}
		})
	}
}

func TestParseOptionsShort(t *testing.T) {
	o, err := parseOptions([]string{"-short", "-rounds", "2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.duration != shortDuration || o.rounds != 2 {
		t.Errorf("-short -rounds 2: duration %v, rounds %d; want %v, 2", o.duration, o.rounds, shortDuration)
	}
}

func TestPercentile(t *testing.T) {
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = time.Duration(i + 1)
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{sorted, 50, 50},
		{sorted, 99, 99},
		{sorted, 100, 100},
		{sorted, 0, 1},
		{sorted[:1], 99, 1},
		{nil, 50, 0},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tt.in), tt.p, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCPULine(t *testing.T) {
	want := cpuTimes{user: 1234567, sys: 89}
	got, err := parseCPULine(cpuLine(want))
	if err != nil || got != want {
		t.Errorf("parseCPULine(cpuLine(%v)) = %v, %v; want %v", want, got, err, want)
	}
	if _, err := parseCPULine("listening 127.0.0.1:1"); err == nil {
		t.Error(`parseCPULine("listening 127.0.0.1:1") succeeded`)
	}
}

func TestCommandLine(t *testing.T) {
	got := commandLine([]string{"-systems", "netrpc,grpc", "-o", "it's"})
	want := `bench -systems netrpc,grpc -o 'it'\''s'`
	if got != want {
		t.Errorf("commandLine = %q, want %q", got, want)
	}
}

// fakeCaller echoes in memory; wrong makes it reply with the wrong bytes.
type fakeCaller struct{ wrong bool }

func (f fakeCaller) Echo(_ context.Context, payload []byte) ([]byte, error) {
	if f.wrong {
		return []byte("wrong"), nil
	}
	return payload, nil
}

func (fakeCaller) Close() error { return nil }

func TestCallLoopDoesNotAllocate(t *testing.T) {
	lat := make([]time.Duration, 0, 1<<22)
	payload := makePayload(16)
	allocs := testing.AllocsPerRun(10, func() {
		lat, _ = callLoop(t.Context(), fakeCaller{}, payload, time.Now().Add(time.Millisecond), lat[:0])
	})
	if allocs != 0 || len(lat) == 0 {
		t.Errorf("callLoop: %v allocations for %d calls, want 0", allocs, len(lat))
	}
}

func TestRunCallersStopsOnMismatch(t *testing.T) {
	lats := make([][]time.Duration, 4)
	_, err := runCallers(t.Context(), fakeCaller{wrong: true}, makePayload(16), time.Minute, lats)
	if err == nil || !strings.Contains(err.Error(), `reply "wrong"`) {
		t.Errorf("runCallers with a wrong reply: err = %v, want a mismatch", err)
	}
}

func BenchmarkEchoNetRPC(b *testing.B) { benchmarkEcho(b, "netrpc") }

func BenchmarkEchoGRPC(b *testing.B) { benchmarkEcho(b, "grpc") }

func BenchmarkEchoMortar(b *testing.B) { benchmarkEcho(b, "mortar") }

// benchmarkEcho is a 16-byte echo round trip over loopback TCP, client
// and server in this process, with one caller and with 64.
func benchmarkEcho(b *testing.B, name string) {
	c := startInProcess(b, name)
	payload := makePayload(16)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			echoOnce(b, c, payload)
		}
	})
	b.Run("parallel64", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !echoOnce(b, c, payload) {
					return
				}
			}
		})
	})
}

func echoOnce(b *testing.B, c caller, payload []byte) bool {
	reply, err := c.Echo(b.Context(), payload)
	if err != nil {
		b.Error(err)
		return false
	}
	if !bytes.Equal(reply, payload) {
		b.Errorf("echo: reply %q, want %q", reply, payload)
		return false
	}
	return true
}

// startInProcess serves system name on a loopback listener and dials it;
// cleanups close both.
func startInProcess(tb testing.TB, name string) caller {
	tb.Helper()
	sys, err := lookupSystem(name)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	stop, err := sys.serve(l)
	if err != nil {
		l.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("%s: stop: %v", name, err)
		}
	})
	c, err := sys.dial(tb.Context(), l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("%s: close client: %v", name, err)
		}
	})
	return c
}
