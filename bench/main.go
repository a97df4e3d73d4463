// Command bench compares mortar's RPC side by side with net/rpc and
// gRPC-go (unary), in one run: a 16-byte echo over loopback, client and
// server in separate processes, one client connection shared by every
// caller.
//
// Usage:
//
//	go run ./bench [-systems netrpc,grpc,mortar] [-concurrency 1,64]
//	    [-duration 3s] [-warmup 500ms] [-rounds 3] [-payload 16]
//	    [-o markdown|json] [-short]
//
// For every round, concurrency level and system (systems interleaved
// within a round), the driver starts a server process (this binary, run
// as "bench serve -system NAME"), dials it once, warms up, then runs the
// callers for -duration and records calls/s, latency percentiles, client
// allocations and CPU per call, and server CPU per call. The report shows
// the median of each metric across rounds.
//
// A system is added by a file that calls register from init; see
// netrpc.go and grpc.go.
//
// Subcommands compare other parts: "config" (kv.go), "registry"
// (registry.go) and "tasks", task queues on no-op tasks (tasks.go):
//
//	go run ./bench tasks [-systems asynq,celery,jetstream] [-tasks 100000]
//	    [-results both|off|on] [-samples 300] [-rounds 3] [-short]
//	    [-o markdown|json]
//
// "push" compares the push gateway with a gorilla/websocket hub: memory
// and CPU per idle connection, broadcast and push latency (push.go):
//
//	go run ./bench push [-systems mortar,gorilla] [-conns 19000] [-idle 60s]
//	    [-broadcasts 5] [-pushes 2000] [-cluster=true] [-short]
//	    [-o markdown|json]
//
// "auth" measures authorization: permission checks per second for a
// subject with 1,000 grants, mortar's compiled grants against Shiro's
// linear scan, and what checking an RPC call with an auth.Verifier adds
// over an unchecked call, round trip and interceptors alone (auth.go):
//
//	go run ./bench auth [-rounds 5] [-duration 1s] [-rpc-rounds 20]
//	    [-rpc-duration 250ms] [-short] [-o markdown|json]
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

func main() { os.Exit(runMain()) }

// runMain runs the command on the process's arguments and standard files;
// SIGINT and SIGTERM cancel its context.
func runMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// MORTAR_BENCH_DRIVER_CPUPROFILE=FILE profiles this process (the
	// driver, with the Go systems' producers and workers).
	if path := os.Getenv("MORTAR_BENCH_DRIVER_CPUPROFILE"); path != "" && (len(os.Args) < 2 || !strings.HasPrefix(os.Args[1], "serve")) {
		f, err := os.Create(path)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// run is the whole command; it returns the exit code: 0 ok, 1 failure,
// 2 usage.
func run(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return serveMain(ctx, args[1:], stdin, stdout, stderr)
		case "serve-node":
			return serveNodeMain(ctx, args[1:], stdin, stdout, stderr)
		case "serve-push":
			return servePushMain(ctx, args[1:], stdin, stdout, stderr)
		case "config":
			return configMain(ctx, args[1:], stdout, stderr)
		case "registry":
			return registryMain(ctx, args[1:], stdout, stderr)
		case "tasks":
			return tasksMain(ctx, args[1:], stdout, stderr)
		case "push":
			return pushMain(ctx, args[1:], stdout, stderr)
		case "auth":
			return authMain(ctx, args[1:], stdout, stderr)
		}
	}
	return driveMain(ctx, args, stdout, stderr)
}
