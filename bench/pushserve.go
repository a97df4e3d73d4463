package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar/internal/node"
)

// servePushMain is the internal subcommand "bench serve-push -system
// mortar|gorilla …", one server process of the push benchmark. It starts
// the system, plus a stats listener of its own (GET /stats, see
// pushStats), prints "listening STATS_ADDR WS_URL CONTROL", then answers
// "mark" on stdin with its CPU time, as "bench serve" does, until stdin
// ends; then it stops and prints a last cpu line. CONTROL is how the
// driver pushes: the node's NATS URL for mortar, the hub's base URL for
// gorilla.
func servePushMain(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench serve-push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sys := fs.String("system", "", "mortar or gorilla (required)")
	dir := fs.String("data-dir", "", "mortar: data directory (required)")
	name := fs.String("name", "bench", "mortar: node name")
	secret := fs.String("secret", "", "mortar: push token secret (required)")
	clusterListen := fs.String("cluster-listen", "", "mortar: cluster route address")
	routes := fs.String("routes", "", "mortar: comma-separated cluster routes")
	if err := fs.Parse(args); err != nil {
		return parseExitCode(err)
	}
	// MORTAR_BENCH_CPUPROFILE=FILE profiles a single server process into
	// FILE.SYSTEM (not a cluster's nodes).
	if path := os.Getenv("MORTAR_BENCH_CPUPROFILE"); path != "" && *clusterListen == "" {
		f, err := os.Create(path + "." + *sys)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(stderr, "bench serve-push:", err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	// Once stopping, the node's logs are dropped: a cluster's nodes stop
	// together and each would log failing to reach the others.
	var stopping atomic.Bool
	log := slog.New(quietHandler{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}), &stopping})
	var (
		srv *pushChild
		err error
	)
	switch *sys {
	case "mortar":
		if *dir == "" || *secret == "" {
			fmt.Fprintln(stderr, "bench serve-push: mortar needs -data-dir and -secret")
			return 2
		}
		cfg := &node.Config{
			Name: *name, DataDir: *dir, Port: -1, AdminAddr: "127.0.0.1:0",
			Durability: node.DurabilityInterval,
			Push:       node.PushConfig{TCPAddr: "off", Secrets: []string{*secret}},
			Auth:       node.AuthConfig{Announce: io.Discard}, // bench clients use the local credential
			Logger:     log,
		}
		if *clusterListen != "" {
			cfg.ClusterName, cfg.ClusterListen = "bench", *clusterListen
			cfg.Routes = strings.Split(*routes, ",")
		}
		srv, err = startPushNode(ctx, cfg)
	case "gorilla":
		srv, err = startGorillaHub(log)
	default:
		fmt.Fprintf(stderr, "bench serve-push: -system %q: want mortar or gorilla\n", *sys)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench serve-push %s: %v\n", *sys, err)
		return 1
	}
	err = servePushChild(ctx, srv, stdin, stdout)
	stopping.Store(true)
	if serr := srv.stop(); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop: %w", serr))
	}
	code := 0
	if err != nil {
		fmt.Fprintf(stderr, "bench serve-push %s: %v\n", *sys, err)
		code = 1
	}
	if err := printCPU(stdout); err != nil {
		code = 1
	}
	return code
}

// pushChild is a running push server in this process.
type pushChild struct {
	ws      string // WebSocket URL; clients add ?client=ID (gorilla)
	control string // the node's NATS URL, or the hub's http:// base URL
	stop    func() error
}

// servePushChild serves the stats listener and the driver's commands
// until stdin ends or ctx is done.
func servePushChild(ctx context.Context, srv *pushChild, stdin *os.File, stdout io.Writer) error {
	in, restore, err := interruptible(stdin)
	if err != nil {
		return err
	}
	defer restore()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("stats listen: %w", err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(serveStats), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	defer func() { hs.Close(); <-done }()
	if _, err := fmt.Fprintf(stdout, "listening %s %s %s\n", ln.Addr(), srv.ws, srv.control); err != nil {
		return err
	}
	return commands(ctx, in, stdout)
}

// pushStats is a server process's memory after a full collection that
// returned freed memory to the OS.
type pushStats struct {
	RSS        int64  `json:"rss_bytes"`        // VmRSS
	HeapInuse  uint64 `json:"heap_inuse_bytes"` // runtime.MemStats.HeapInuse
	StackInuse uint64 `json:"stack_inuse_bytes"`
	Goroutines int    `json:"goroutines"`
}

func serveStats(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, err := procRSS(os.Getpid())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	st := pushStats{RSS: rss, HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// quietHandler drops every record once quiet is set.
type quietHandler struct {
	slog.Handler
	quiet *atomic.Bool
}

func (h quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.quiet.Load() && h.Handler.Enabled(ctx, l)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as), h.quiet}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name), h.quiet}
}

// startPushNode runs a mortar node in this process and waits until it
// serves.
func startPushNode(ctx context.Context, cfg *node.Config) (*pushChild, error) {
	n, err := node.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-errc:
		cancel()
		return nil, err
	}
	return &pushChild{
		ws:      "ws://" + n.AdminAddr() + "/push/ws",
		control: n.ClientURL(),
		stop: func() error {
			cancel()
			return <-errc
		},
	}, nil
}
