package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() {
	registerKV(kvSystem{
		name:  "etcd",
		about: "etcd 3.4 (Debian etcd-server), single member, default fsync per commit; client go.etcd.io/etcd/client/v3",
		start: startEtcd,
	})
}

// startEtcd runs the etcd binary on two free loopback ports.
func startEtcd(ctx context.Context, dir string, stderr io.Writer) (*kvServer, error) {
	e, err := runEtcd(ctx, dir, stderr)
	if err != nil {
		return nil, err
	}
	return &kvServer{client: etcdClient{e.cli}, pid: e.pid, stop: e.stop}, nil
}

// etcdProc is a running etcd and a client that saw it commit a write.
type etcdProc struct {
	endpoint string
	pid      int
	cli      *clientv3.Client
	stop     func() error
}

// runEtcd runs a single-member etcd with its data in dir.
func runEtcd(ctx context.Context, dir string, stderr io.Writer) (*etcdProc, error) {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("etcd not found (apt-get install etcd-server): %w", err)
	}
	client, peer := freePort(), freePort()
	clientURL := "http://" + client
	peerURL := "http://" + peer
	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, bin,
		"--name", "bench", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "bench="+peerURL, "--log-level", "error", "--logger", "zap")
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	stop := func() error {
		cancel()
		cmd.Wait()
		return nil
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second})
	if err != nil {
		stop()
		return nil, err
	}
	// Wait until a write commits.
	deadline := time.Now().Add(20 * time.Second)
	for {
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		_, err = cli.Put(wctx, "bench/ready", "1")
		wcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cli.Close()
			stop()
			return nil, fmt.Errorf("etcd not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &etcdProc{endpoint: client, pid: cmd.Process.Pid, cli: cli, stop: stop}, nil
}

type etcdClient struct{ c *clientv3.Client }

func (e etcdClient) Put(ctx context.Context, key string, val []byte) error {
	_, err := e.c.Put(ctx, "bench/"+key, string(val))
	return err
}

func (e etcdClient) Watch(ctx context.Context, key string) (<-chan []byte, error) {
	wch := e.c.Watch(clientv3.WithRequireLeader(ctx), "bench/"+key)
	out := make(chan []byte, 1024)
	go func() {
		defer close(out)
		for resp := range wch {
			for _, ev := range resp.Events {
				select {
				case out <- ev.Kv.Value:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	// etcd's watch is registered asynchronously; a put right away could
	// be missed, so prime it: put and wait for the watcher to see it.
	if err := e.Put(ctx, key, make([]byte, 8)); err != nil {
		return nil, err
	}
	select {
	case <-out:
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("etcd watch not established")
	}
	return out, nil
}

func (e etcdClient) Close() error { return e.c.Close() }

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}
