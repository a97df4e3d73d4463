package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mortarhq/mortar/push"
)

// pushAbout describes each system for the report.
var pushAbout = map[string]string{
	"mortar": "a mortar node (`bench serve-push -system mortar`: internal/node, single node, --durability interval, push TCP off), " +
		"WebSocket on its admin port (/push/ws), push defaults: ping 25 s, pong 8 s (closed after 33 s without a read); " +
		"each client sends connect with its own token (push.SignToken) and waits for the reply; " +
		"pushes are push.Client.Send (ToAll, ToClient) through a mortar.Dial connection to the node",
	"gorilla": "gorilla/websocket v1.5.3 hub after its chat example (`bench serve-push -system gorilla`): a read pump and a write pump goroutine per connection, " +
		"a send channel of 256 per client, one hub goroutine fanning out; Upgrader zero value, so gorilla keeps net/http's 4 KiB read and 4 KiB write buffers " +
		"of the hijacked connection; ping every 25 s, read deadline 33 s renewed by pongs; pushes are POST /broadcast and POST /push?client=ID " +
		"(answered once the hub has queued the message) over a keep-alive connection",
}

// pushServer is a running server process of the push benchmark, seen
// from the driver.
type pushServer struct {
	proc     *serverProc
	stats    func(ctx context.Context) (pushStats, error)
	wsURL    func(id string) string
	hello    func(id string) []byte // the first message (mortar's connect); nil for none
	toAll    func(ctx context.Context, data []byte) error
	toClient func(ctx context.Context, id string, data []byte) error
	closeCtl func() // closes the driver's control connection
}

// startPushProc starts "bench serve-push" with args and parses its
// addresses.
func startPushProc(ctx context.Context, name string, timeout time.Duration, stderr io.Writer, args ...string) (*serverProc, []string, error) {
	p, err := startSelf(ctx, name, timeout, stderr, append([]string{"serve-push", "-system", name}, args...)...)
	if err != nil {
		return nil, nil, err
	}
	f := strings.Fields(p.addr)
	if len(f) != 3 {
		p.kill()
		return nil, nil, fmt.Errorf("start %s server: got addresses %q, want STATS WS CONTROL", name, p.addr)
	}
	return p, f, nil
}

// statsClient reads a server's pushStats from its stats listener.
func statsClient(addr string) func(ctx context.Context) (pushStats, error) {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	return func(ctx context.Context) (pushStats, error) {
		var st pushStats
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/stats", nil)
		if err != nil {
			return st, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return st, fmt.Errorf("stats: %s: %s", resp.Status, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
		return st, nil
	}
}

// startMortarPush starts a mortar node process with its data in dir and
// the push secret, and connects a push.Client to it. extra are more
// serve-push flags (the cluster's).
func startMortarPush(ctx context.Context, dir, name, secret string, extra []string, timeout time.Duration, stderr io.Writer) (*pushServer, error) {
	args := append([]string{"-data-dir", dir, "-name", name, "-secret", secret}, extra...)
	p, addrs, err := startPushProc(ctx, "mortar", timeout, stderr, args...)
	if err != nil {
		return nil, err
	}
	if err := p.readToken(dir); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	conn, err := dialNode(dctx, addrs[2], p.token, "bench-push", log)
	if err != nil {
		p.kill()
		return nil, err
	}
	pc, err := push.New(conn, nil)
	if err != nil {
		conn.Close()
		p.kill()
		return nil, err
	}
	key := []byte(secret)
	return &pushServer{
		proc:  p,
		stats: statsClient(addrs[0]),
		wsURL: func(string) string { return addrs[1] },
		hello: func(id string) []byte {
			tok, err := push.SignToken(key, push.Claims{Client: id})
			if err != nil {
				tok = err.Error() // the node refuses it, and the error says why
			}
			b, _ := json.Marshal(map[string]any{"op": "connect", "id": 1, "token": tok})
			return b
		},
		toAll: func(ctx context.Context, data []byte) error {
			_, err := pc.Send(ctx, push.ToAll(), json.RawMessage(data), nil)
			return err
		},
		toClient: func(ctx context.Context, id string, data []byte) error {
			_, err := pc.Send(ctx, push.ToClient(id), json.RawMessage(data), nil)
			return err
		},
		closeCtl: func() { conn.Close() },
	}, nil
}

// startGorillaPush starts the gorilla hub process.
func startGorillaPush(ctx context.Context, timeout time.Duration, stderr io.Writer) (*pushServer, error) {
	p, addrs, err := startPushProc(ctx, "gorilla", timeout, stderr)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	post := func(ctx context.Context, path string, data []byte) error {
		req, err := http.NewRequestWithContext(ctx, "POST", addrs[2]+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("POST %s: %s", path, resp.Status)
		}
		return nil
	}
	return &pushServer{
		proc:  p,
		stats: statsClient(addrs[0]),
		wsURL: func(id string) string { return addrs[1] + "?client=" + url.QueryEscape(id) },
		toAll: func(ctx context.Context, data []byte) error { return post(ctx, "/broadcast", data) },
		toClient: func(ctx context.Context, id string, data []byte) error {
			return post(ctx, "/push?client="+url.QueryEscape(id), data)
		},
		closeCtl: tr.CloseIdleConnections,
	}, nil
}

// fleetConfig is how to open n connections to s, with client IDs
// pushClientID(i).
func (s *pushServer) fleetConfig(n int, sources []string, concurrency int) fleetConfig {
	cfg := fleetConfig{
		n:           n,
		url:         func(i int) string { return s.wsURL(pushClientID(i)) },
		sources:     sources,
		concurrency: concurrency,
		bufSize:     pushClientBufSize,
	}
	if s.hello != nil {
		cfg.hello = func(i int) []byte { return s.hello(pushClientID(i)) }
	}
	return cfg
}

// cpuOver returns the server's CPU time over the next d.
func (s *pushServer) cpuOver(ctx context.Context, d time.Duration) (cpuTimes, error) {
	c0, err := s.proc.mark()
	if err != nil {
		return cpuTimes{}, err
	}
	if err := sleepCtx(ctx, d); err != nil {
		return cpuTimes{}, err
	}
	c1, err := s.proc.mark()
	if err != nil {
		return cpuTimes{}, err
	}
	return c1.sub(c0), nil
}

// stop closes the control connection and stops the process, killing it
// if it does not exit in time.
func (s *pushServer) stop() error {
	s.closeCtl()
	err := s.proc.stop()
	s.proc.kill()
	return err
}
