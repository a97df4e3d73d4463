package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func init() {
	registerKV(kvSystem{
		name:  "engine-kv",
		about: "mortar's engine alone: a JetStream KV bucket (R1, sync_always) on the node, written with nats.go; the floor under the config center",
		start: func(ctx context.Context, dir string, stderr io.Writer) (*kvServer, error) {
			return startNodeKV(ctx, dir, "always", stderr, newEngineKV)
		},
	})
	registerKV(kvSystem{
		name:  "engine-kv-interval",
		about: "as engine-kv with --durability interval (fsync every 2 minutes)",
		start: func(ctx context.Context, dir string, stderr io.Writer) (*kvServer, error) {
			return startNodeKV(ctx, dir, "interval", stderr, newEngineKV)
		},
	})
}

// serveNodeMain is "bench serve-node -data-dir D -durability always|interval":
// a mortar node in this process, printing "listening NATS_URL", until
// stdin ends.
func serveNodeMain(ctx context.Context, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench serve-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("data-dir", "", "data directory (required)")
	dur := fs.String("durability", "always", "always or interval")
	if err := fs.Parse(args); err != nil || *dir == "" {
		return 2
	}
	// MORTAR_BENCH_CPUPROFILE=FILE profiles the node process alone.
	if path := os.Getenv("MORTAR_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(stderr, "bench serve-node:", err)
			return 2
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench serve-node:", err)
			return 2
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	n, err := node.New(&node.Config{
		Name: "bench", DataDir: *dir, Port: -1, AdminAddr: "off", Push: node.PushConfig{TCPAddr: "off"},
		Durability: node.Durability(*dur),
		Auth:       node.AuthConfig{Announce: io.Discard}, // bench clients use the local credential
		Logger:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(stderr, "bench serve-node:", err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- n.Run(ctx) }()
	select {
	case <-n.Ready():
	case err := <-errc:
		fmt.Fprintln(stderr, "bench serve-node:", err)
		return 1
	}
	in, restore, err := interruptible(stdin)
	if err != nil {
		return 1
	}
	defer restore()
	fmt.Fprintf(stdout, "listening %s\n", n.ClientURL())
	if err := commands(ctx, in, stdout); err != nil {
		fmt.Fprintln(stderr, "bench serve-node:", err)
	}
	cancel()
	if err := <-errc; err != nil {
		fmt.Fprintln(stderr, "bench serve-node:", err)
		return 1
	}
	printCPU(stdout)
	return 0
}

// startNode starts a mortar node process ("bench serve-node") with its
// data in dir and durability "always" or "interval", and waits until it
// serves. Its addr is the node's NATS URL (nats://127.0.0.1:PORT), its
// token the node's local admin credential and p.cmd.Process.Pid its PID.
// The process is killed if ctx ends or after timeout; the caller calls
// p.stop, or p.kill on an error path (a no-op after stop).
func startNode(ctx context.Context, dir, durability string, timeout time.Duration, stderr io.Writer) (*serverProc, error) {
	p, err := startSelf(ctx, "mortar", timeout, stderr, "serve-node", "-data-dir", dir, "-durability", durability)
	if err != nil {
		return nil, err
	}
	if err := p.readToken(dir); err != nil {
		return nil, err
	}
	return p, nil
}

// readToken sets p.token to the local admin credential of p, a node
// process with its data in dir that has reported it is ready (the node
// writes the file before). On error it kills p.
func (p *serverProc) readToken(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, mortar.LocalCredentialFile))
	if err == nil {
		p.token = strings.TrimSpace(string(b))
		if p.token == "" {
			err = fmt.Errorf("%s is empty", filepath.Join(dir, mortar.LocalCredentialFile))
		}
	}
	if err != nil {
		p.kill()
		return fmt.Errorf("start %s server: local admin credential: %w", p.name, err)
	}
	return nil
}

// dialNode connects to the node at url as its local admin (token).
func dialNode(ctx context.Context, url, token, name string, log *slog.Logger) (*mortar.Conn, error) {
	return mortar.Dial(ctx, url, &mortar.Options{Name: name, Logger: log, Token: token})
}

// nodeNATSOptions are the options a plain NATS client needs to connect
// to a node as its local admin (token): the credential and its inbox
// prefix.
func nodeNATSOptions(token string) []nats.Option {
	return []nats.Option{nats.Token(token), nats.CustomInboxPrefix(mortar.InboxPrefix(token, ""))}
}

// startNodeKV starts "bench serve-node" and connects a client made by
// newClient.
func startNodeKV(ctx context.Context, dir, durability string, stderr io.Writer,
	newClient func(ctx context.Context, c *mortar.Conn) (kvClient, error)) (*kvServer, error) {
	p, err := startNode(ctx, dir, durability, 10*time.Minute, stderr)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := dialNode(dctx, p.addr, p.token, "bench", slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		p.kill()
		return nil, err
	}
	cl, err := newClient(dctx, conn)
	if err != nil {
		conn.Close()
		p.kill()
		return nil, err
	}
	return &kvServer{client: cl, pid: p.cmd.Process.Pid, stop: func() error {
		conn.Close()
		return p.stop()
	}}, nil
}

type engineKV struct{ kv jetstream.KeyValue }

func newEngineKV(ctx context.Context, c *mortar.Conn) (kvClient, error) {
	kv, err := c.JetStream().CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "bench", Storage: jetstream.FileStorage, History: 64})
	if err != nil {
		return nil, err
	}
	return engineKV{kv}, nil
}

func (e engineKV) Put(ctx context.Context, key string, val []byte) error {
	_, err := e.kv.Put(ctx, key, val)
	return err
}

func (e engineKV) Watch(ctx context.Context, key string) (<-chan []byte, error) {
	w, err := e.kv.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	out := make(chan []byte, 1024)
	go func() {
		defer close(out)
		for ent := range w.Updates() {
			if ent == nil {
				continue
			}
			select {
			case out <- ent.Value():
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (e engineKV) Close() error { return nil }
