package rpc_test

// Interoperability tests: mortar against other ZeroRPC implementations, in
// both directions, with the TestService conformance checks.
//
// The peers live in testdata/interop:
//
//   - python-raw: python/zpeer.py, a from-scratch peer on Debian's pyzmq
//     (real libzmq) and msgpack. Needs /usr/bin/python3 with python3-zmq and
//     python3-msgpack.
//   - node: zerorpc-node 0.9.8 (node/client.js, node/server.js). Needs node
//     and `npm ci` in testdata/interop/node.
//   - zerorpc-python: the real library (zerorpc-python/client.py,
//     server.py). It is not packaged, so it runs only when
//     MORTAR_ZERORPC_PYTHON names a checkout (the directory holding the
//     zerorpc package); it also needs python3-gevent and python3-future.
//
// For each peer, "PeerClient" runs the peer's client, whose checks print one
// JSON line each, against TestService served in-process by mortar, and
// "PeerServer" runs the Go checks of conformance through an rpc.Client
// against the peer's TestService. With CI=true a missing python-raw or node
// peer fails the test instead of skipping it.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mortarhq/mortar/internal/testservice"
	"github.com/mortarhq/mortar/rpc"
)

// debianPython is the interpreter with Debian's python3-zmq and
// python3-msgpack; a python3 earlier on PATH (pyenv) may lack them.
const debianPython = "/usr/bin/python3"

// interopHeartbeat is the heartbeat interval of both ends in every
// interop test, short so that the heartbeat check (sleep(2.5)) only
// passes if both sides really heartbeat.
const interopHeartbeat = time.Second

// peerCaps is what a peer's server can express; conformance skips the rest.
type peerCaps struct {
	int64s        bool   // 64-bit integers survive a round trip
	nameError     bool   // an unknown method gets ERR NameError
	header        bool   // methods can read the request header
	introspection bool   // _zerorpc_name, _zerorpc_list, _zerorpc_help, docs in _zerorpc_inspect
	pingName      string // the name in _zerorpc_ping's reply
}

type interopPeer struct {
	name     string
	dir      string   // under testdata/interop
	client   []string // the client role's command; ENDPOINT and flags follow
	server   []string // the server role's command; ENDPOINT and flags follow
	required bool     // with CI=true, unavailability fails the test
	// available returns nil if the peer can run, else why not and how to
	// enable it.
	available func() error
	// clientSkips are the checks the peer's client may skip (it cannot
	// express them); any other skip is an error.
	clientSkips []string
	// extraChecks are checks the peer's client runs beyond interopChecks.
	extraChecks []string
	caps        peerCaps
}

var interopPeers = []*interopPeer{
	{
		name:        "python-raw",
		dir:         "python",
		client:      []string{debianPython, "zpeer.py", "client"},
		server:      []string{debianPython, "zpeer.py", "server"},
		required:    true,
		available:   func() error { return pythonHas("zmq", "msgpack") },
		extraChecks: []string{"flow_control", "wire"},
		caps:        peerCaps{int64s: true, nameError: true, header: true, introspection: true, pingName: testservice.Name},
	},
	{
		name:     "node",
		dir:      "node",
		client:   []string{"node", "client.js"},
		server:   []string{"node", "server.js"},
		required: true,
		available: func() error {
			if _, err := exec.LookPath("node"); err != nil {
				return fmt.Errorf("no node on PATH: install nodejs and npm")
			}
			for _, mod := range []string{"zerorpc", "zeromq"} {
				if _, err := os.Stat(filepath.Join("testdata", "interop", "node", "node_modules", mod)); err != nil {
					return fmt.Errorf("zerorpc-node is not installed: run `npm ci` in rpc/testdata/interop/node (%v)", err)
				}
			}
			return nil
		},
		clientSkips: []string{"echo/uint64_max", "echo/int64_min", "header"},
		// zerorpc-node: msgpack-lite has no 64-bit integers, unknown
		// methods get no reply, no _zerorpc_name/_list/_help, empty docs,
		// ["pong", ""], and methods cannot see the header.
		caps: peerCaps{pingName: ""},
	},
	{
		name:   "zerorpc-python",
		dir:    "zerorpc-python",
		client: []string{debianPython, "client.py"},
		server: []string{debianPython, "server.py"},
		available: func() error {
			dir := os.Getenv("MORTAR_ZERORPC_PYTHON")
			if dir == "" {
				return errors.New("set MORTAR_ZERORPC_PYTHON to a zerorpc-python checkout (the directory holding the zerorpc package) to run it")
			}
			if _, err := os.Stat(filepath.Join(dir, "zerorpc", "__init__.py")); err != nil {
				return fmt.Errorf("MORTAR_ZERORPC_PYTHON=%s: no zerorpc package there: %v", dir, err)
			}
			return pythonHas("zmq", "msgpack", "gevent", "future")
		},
		caps: peerCaps{int64s: true, nameError: true, header: true, introspection: true, pingName: testservice.Name},
	},
}

// pythonHas checks that debianPython can import modules.
func pythonHas(modules ...string) error {
	out, err := exec.Command(debianPython, "-c", "import "+strings.Join(modules, ", ")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import %s (apt-get install python3-zmq python3-msgpack python3-gevent python3-future): %v: %s",
			debianPython, strings.Join(modules, ", "), err, bytes.TrimSpace(out))
	}
	return nil
}

// require skips or fails the test if the peer cannot run.
func (p *interopPeer) require(t *testing.T) {
	t.Helper()
	err := p.available()
	if err == nil {
		return
	}
	switch {
	case p.required && os.Getenv("CI") == "true":
		t.Fatalf("interop peer %s is unavailable in CI: %v", p.name, err)
	case p.name == "zerorpc-python" && os.Getenv("MORTAR_ZERORPC_PYTHON") != "":
		t.Fatalf("MORTAR_ZERORPC_PYTHON is set but zerorpc-python cannot run: %v", err)
	}
	t.Skipf("interop peer %s unavailable: %v", p.name, err)
}

// The conformance checks: every client role prints these names, and
// conformance runs them as subtests. The labels match
// testdata/interop/python/checks.py and node/client.js.
var (
	interopEcho = []struct {
		label string
		v     any
	}{
		{"nil", nil}, {"true", true}, {"false", false},
		{"0", int64(0)}, {"1", int64(1)}, {"-1", int64(-1)},
		{"uint64_max", uint64(math.MaxUint64)}, {"int64_min", int64(math.MinInt64)},
		{"1.5", 1.5}, {"empty_str", ""}, {"utf8_str", "héllo"},
		{"empty_bin", []byte{}}, {"bin", []byte{0, 0xff}},
		{"array", []any{int64(1), "a", []byte("b")}},
		{"map", map[string]any{"k": []any{int64(1), int64(2)}}},
		{"large_bin", bytes.Repeat(byteRange(), 400)}, // 100 KiB: ZMTP long frames both ways
	}
	interopTypeof = []struct {
		label string
		v     any
	}{
		{"nil", nil}, {"bool", true}, {"int", int64(7)}, {"float", 1.5},
		{"str", "s"}, {"bin", []byte("b")}, {"array", []any{int64(1)}}, {"map", map[string]any{"a": int64(1)}},
	}
	// interopMethods are TestService's methods: argument names and docs.
	interopMethods = map[string]struct {
		args []string
		doc  string
	}{
		"hello":           {nil, "Return the string 'hello'."},
		"echo":            {[]string{"x"}, "Return x unchanged."},
		"add":             {[]string{"a", "b"}, "Return a + b."},
		"typeof":          {[]string{"x"}, "Return the msgpack type name of x."},
		"fail":            {[]string{"msg"}, "Raise TestError(msg)."},
		"count":           {[]string{"n"}, "Stream the integers 0..n-1."},
		"count_then_fail": {[]string{"n", "msg"}, "Stream 0..n-1, then raise TestError(msg)."},
		"sleep":           {[]string{"seconds"}, "Sleep for seconds, then return seconds."},
		"header":          {[]string{"key"}, "Return the value of key in the request event header, or nil."},
	}
)

// byteRange returns the bytes 0 to 255.
func byteRange() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// fmtArgs formats call arguments for a log line.
func fmtArgs(args []any) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = short(a)
	}
	return strings.Join(s, ", ")
}

// short formats v for a log line, truncated.
func short(v any) string {
	s := fmt.Sprintf("%#v", v)
	if len(s) > 200 {
		s = fmt.Sprintf("%s... (%d chars)", s[:200], len(s))
	}
	return s
}

// interopChecks lists the names of the conformance checks, in order.
func interopChecks() []string {
	names := []string{"hello", "add/int", "add/float"}
	for _, e := range interopEcho {
		names = append(names, "echo/"+e.label)
	}
	for _, e := range interopTypeof {
		names = append(names, "typeof/"+e.label)
	}
	return append(names, "fail", "count/5", "count/0", "count/300", "count_then_fail",
		"unknown_method", "wrong_arity", "concurrency", "heartbeat", "header",
		"inspect", "ping", "name", "list", "help")
}

func TestInterop(t *testing.T) {
	t.Parallel()
	trackPeerFiles(t)
	for _, p := range interopPeers {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			p.require(t)
			t.Run("PeerClient", func(t *testing.T) {
				t.Parallel()
				testPeerClient(t, p)
			})
			t.Run("PeerServer", func(t *testing.T) {
				t.Parallel()
				ep := startPeerServer(t, p)
				c := dial(t, ep, &rpc.ClientConfig{
					HeartbeatInterval: interopHeartbeat,
					Interceptors:      []rpc.Interceptor{withHeader("x-token", "secret")},
				})
				conformance(t, c, p.name)
			})
		})
	}
}

// trackPeerFiles stats the peers' sources so that go test's cache knows
// them: editing a peer invalidates a cached result, as editing Go does.
func trackPeerFiles(t *testing.T) {
	root := filepath.Join("testdata", "interop")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() == "node_modules" || d.Name() == "__pycache__" {
			return cmp.Or(err, filepath.SkipDir)
		}
		if !d.IsDir() {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func withHeader(key string, value any) rpc.Interceptor {
	return func(ctx context.Context, req *rpc.Request, next func(context.Context) error) error {
		if err := req.Header().Set(key, value); err != nil {
			return err
		}
		return next(ctx)
	}
}

// peerCommand builds the command for one of p's roles, run in p's
// directory; its stdout and stderr are logged line by line.
func peerCommand(t *testing.T, ctx context.Context, p *interopPeer, argv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
	cmd.Dir = filepath.Join("testdata", "interop", p.dir)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	cmd.WaitDelay = 5 * time.Second // then pipes held by stray children are closed
	cmd.Stderr = &lineLogger{t: t, prefix: p.name + " stderr: "}
	return cmd
}

// testPeerClient runs p's client against TestService served by mortar and
// reports each check the client prints as a subtest.
func testPeerClient(t *testing.T, p *interopPeer) {
	_, ep := startServer(t, &rpc.ServerConfig{HeartbeatInterval: interopHeartbeat}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := []string{ep, "--heartbeat", fmt.Sprint(interopHeartbeat.Seconds())}
	if testing.Short() {
		args = append(args, "--skip-slow")
	}
	cmd := peerCommand(t, ctx, p, p.client, args...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("%s client ran %.1fs: %v", p.name, time.Since(start).Seconds(), runErr)

	type result struct {
		Check   string          `json:"check"`
		OK      bool            `json:"ok"`
		Detail  json.RawMessage `json:"detail"`
		Skipped bool            `json:"skipped"`
	}
	seen := map[string]bool{}
	failed := 0
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Check == "" {
			t.Logf("%s client: %s", p.name, sc.Text())
			continue
		}
		if seen[r.Check] {
			t.Errorf("check %s reported twice", r.Check)
		}
		seen[r.Check] = true
		detail := string(r.Detail)
		var s string
		if json.Unmarshal(r.Detail, &s) == nil {
			detail = s
		}
		if !r.OK {
			failed++
		}
		t.Run(r.Check, func(t *testing.T) {
			switch {
			case !r.OK:
				t.Errorf("%s client → mortar server: %s", p.name, detail)
			case r.Skipped && (slices.Contains(p.clientSkips, r.Check) || (r.Check == "heartbeat" && testing.Short())):
				t.Skip(detail)
			case r.Skipped:
				t.Errorf("%s client skipped %s, which it must run: %s", p.name, r.Check, detail)
			default:
				t.Log(detail)
			}
		})
	}
	want := append(interopChecks(), p.extraChecks...)
	if len(seen) < len(want) {
		t.Errorf("%s client reported %d checks, want at least %d (did it crash? %v)", p.name, len(seen), len(want), runErr)
	}
	for _, name := range want {
		if !seen[name] {
			t.Errorf("%s client did not report check %s", p.name, name)
		}
	}
	if failed == 0 && runErr != nil {
		t.Errorf("%s client: %v, with every check passed", p.name, runErr)
	}
}

// startPeerServer runs p's server on a free loopback port until the test
// ends and returns its endpoint. A port taken meanwhile is retried once.
func startPeerServer(t *testing.T, p *interopPeer) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ep, err := tryStartPeerServer(t, p)
		if err == nil {
			return ep
		}
		if attempt == 1 && errors.Is(err, errPortTaken) {
			t.Logf("%v; retrying on another port", err)
			continue
		}
		t.Fatal(err)
	}
}

var errPortTaken = errors.New("port taken")

var portTakenRE = regexp.MustCompile(`(?i)address already in use|EADDRINUSE`)

func tryStartPeerServer(t *testing.T, p *interopPeer) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ep := "tcp://" + l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := peerCommand(t, ctx, p, p.server, ep, "--heartbeat", fmt.Sprint(interopHeartbeat.Seconds()))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // then SIGKILL after WaitDelay
	stderr := cmd.Stderr.(*lineLogger)
	stdout := &lineLogger{t: t, prefix: p.name + " server: ", watch: "listening ", ready: make(chan struct{})}
	cmd.Stdout = stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return "", fmt.Errorf("start %s server: %w", p.name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-stdout.ready:
	case err := <-exited:
		cancel()
		if portTakenRE.MatchString(stderr.text()) {
			return "", fmt.Errorf("%s server on %s: %w: %v", p.name, ep, errPortTaken, err)
		}
		return "", fmt.Errorf("%s server exited before listening: %v", p.name, err)
	case <-time.After(30 * time.Second):
		cancel()
		<-exited
		return "", fmt.Errorf("%s server did not print its listening line within 30s", p.name)
	}
	t.Cleanup(func() {
		select {
		case err := <-exited:
			t.Errorf("%s server died during the test: %v", p.name, err)
			cancel()
			return
		default:
		}
		// Ask politely (EOF on stdin), then SIGTERM, then SIGKILL: the
		// process is reaped before the test ends either way.
		stdin.Close()
		select {
		case err := <-exited:
			t.Logf("%s server exited: %v", p.name, err)
		case <-time.After(5 * time.Second):
			cancel()
			t.Logf("%s server ignored EOF on stdin; terminated: %v", p.name, <-exited)
		}
		cancel()
	})
	return ep, nil
}

// lineLogger logs what a peer writes, line by line; with watch set, it
// closes ready at the first line starting with watch.
type lineLogger struct {
	t      *testing.T
	prefix string
	watch  string
	ready  chan struct{}

	mu   sync.Mutex
	buf  []byte
	all  strings.Builder
	seen bool
}

func (w *lineLogger) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, b...)
	w.all.Write(b)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.t.Log(w.prefix + line)
		if w.watch != "" && !w.seen && strings.HasPrefix(line, w.watch) {
			w.seen = true
			close(w.ready)
		}
	}
	return len(b), nil
}

func (w *lineLogger) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// conformance runs the TestService checks through c against a peer's
// server, skipping what the peer cannot express. c must send the header
// key x-token = "secret" on every request.
func conformance(t *testing.T, c *rpc.Client, peer string) {
	var caps peerCaps
	for _, p := range interopPeers {
		if p.name == peer {
			caps = p.caps
		}
	}
	call := func(t *testing.T, method string, args ...any) (any, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		var got any
		err := c.Call(ctx, method, &got, args...)
		return got, err
	}
	want := func(t *testing.T, method string, expected any, args ...any) {
		t.Helper()
		got, err := call(t, method, args...)
		if err != nil {
			t.Fatalf("%s(%s): %v", method, fmtArgs(args), err)
		}
		if !reflect.DeepEqual(got, expected) {
			t.Fatalf("%s(%s) = %s (%T), want %s (%T)", method, fmtArgs(args), short(got), got, short(expected), expected)
		}
		t.Logf("%s(%s) = %s", method, fmtArgs(args), short(got))
	}
	wantRemote := func(t *testing.T, err error, name, msg string) *rpc.RemoteError {
		t.Helper()
		re, ok := errors.AsType[*rpc.RemoteError](err)
		if !ok || re.Name != name || (msg != "" && re.Message != msg) {
			t.Fatalf("got %v, want ERR %s %s", err, name, msg)
		}
		t.Logf("ERR %s: %s", re.Name, re.Message)
		return re
	}
	stream := func(t *testing.T, method string, args ...any) ([]any, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		var items []any
		for raw, err := range c.Stream(ctx, method, args...) {
			if err != nil {
				return items, err
			}
			v, err := raw.Value()
			if err != nil {
				t.Fatalf("%s item %d: %v", method, len(items), err)
			}
			items = append(items, v)
		}
		return items, nil
	}
	ints := func(n int) []any {
		if n == 0 {
			return nil // what stream collects from an empty stream
		}
		s := make([]any, n)
		for i := range s {
			s[i] = int64(i)
		}
		return s
	}

	t.Run("hello", func(t *testing.T) { want(t, "hello", "hello") })
	t.Run("add/int", func(t *testing.T) { want(t, "add", int64(3), 1, 2) })
	t.Run("add/float", func(t *testing.T) { want(t, "add", 3.5, 1, 2.5) })
	for _, e := range interopEcho {
		t.Run("echo/"+e.label, func(t *testing.T) {
			if !caps.int64s && (e.label == "uint64_max" || e.label == "int64_min") {
				t.Skipf("%s has no 64-bit integers", peer)
			}
			want(t, "echo", e.v, e.v)
		})
	}
	for _, e := range interopTypeof {
		t.Run("typeof/"+e.label, func(t *testing.T) { want(t, "typeof", e.label, e.v) })
	}
	t.Run("fail", func(t *testing.T) {
		_, err := call(t, "fail", "boom")
		if re := wantRemote(t, err, "TestError", "boom"); re.Traceback == "" {
			t.Error("empty traceback")
		}
	})
	for _, n := range []int{5, 0, 300} {
		t.Run(fmt.Sprintf("count/%d", n), func(t *testing.T) {
			items, err := stream(t, "count", n)
			if err != nil || !reflect.DeepEqual(items, ints(n)) {
				t.Fatalf("Stream(count, %d) = %v, %v; want 0..%d", n, items, err, n-1)
			}
			var list []int // Call collects the stream into a list
			if err := c.Call(t.Context(), "count", &list, n); err != nil || len(list) != n {
				t.Fatalf("Call(count, %d) = %d items, %v", n, len(list), err)
			}
		})
	}
	t.Run("count_then_fail", func(t *testing.T) {
		items, err := stream(t, "count_then_fail", 3, "late")
		if !reflect.DeepEqual(items, ints(3)) {
			t.Errorf("items %v, want [0 1 2]", items)
		}
		wantRemote(t, err, "TestError", "late")
	})
	t.Run("unknown_method", func(t *testing.T) {
		if !caps.nameError {
			t.Skipf("%s sends no reply to an unknown method", peer)
		}
		_, err := call(t, "no_such_method")
		wantRemote(t, err, "NameError", "")
	})
	t.Run("wrong_arity", func(t *testing.T) {
		_, err := call(t, "add", 1)
		wantRemote(t, err, "TypeError", "")
	})
	t.Run("concurrency", func(t *testing.T) {
		slow := make(chan error, 1)
		var slept any
		go func() {
			var err error
			slept, err = call(t, "sleep", 1)
			slow <- err
		}()
		time.Sleep(50 * time.Millisecond) // let sleep(1) reach the server first
		start := time.Now()
		want(t, "hello", "hello")
		took := time.Since(start)
		if err := <-slow; err != nil || slept != int64(1) {
			t.Fatalf("sleep(1) = %#v, %v", slept, err)
		}
		if took > 500*time.Millisecond {
			t.Errorf("hello took %v while sleep(1) was in flight", took)
		}
		t.Logf("hello took %v while sleep(1) was in flight", took)
	})
	t.Run("heartbeat", func(t *testing.T) {
		if testing.Short() {
			t.Skip("slow check (-short)")
		}
		start := time.Now()
		want(t, "sleep", 2.5, 2.5) // outlives two heartbeat intervals
		t.Logf("sleep(2.5) returned after %v", time.Since(start))
	})
	t.Run("header", func(t *testing.T) {
		if !caps.header {
			t.Skipf("%s methods cannot see the request header", peer)
		}
		want(t, "header", "secret", "x-token")
		want(t, "header", nil, "x-absent")
	})
	t.Run("inspect", func(t *testing.T) {
		got, err := call(t, "_zerorpc_inspect")
		if err != nil {
			t.Fatal(err)
		}
		r, _ := got.(map[string]any)
		if r["name"] != testservice.Name {
			t.Errorf("name = %#v, want %q", r["name"], testservice.Name)
		}
		methods, _ := r["methods"].(map[string]any)
		if len(methods) != len(interopMethods) {
			t.Errorf("methods = %v, want the %d of TestService", slices.Sorted(maps.Keys(methods)), len(interopMethods))
		}
		for name, m := range interopMethods {
			desc, _ := methods[name].(map[string]any)
			if desc == nil {
				t.Errorf("method %s missing", name)
				continue
			}
			var args []string
			list, _ := desc["args"].([]any)
			for _, a := range list {
				am, _ := a.(map[string]any)
				s, _ := am["name"].(string)
				args = append(args, s)
			}
			if !slices.Equal(args, m.args) {
				t.Errorf("%s args = %q, want %q", name, args, m.args)
			}
			if caps.introspection && desc["doc"] != m.doc {
				t.Errorf("%s doc = %#v, want %q", name, desc["doc"], m.doc)
			}
		}
	})
	t.Run("ping", func(t *testing.T) { want(t, "_zerorpc_ping", []any{"pong", caps.pingName}) })
	t.Run("name", func(t *testing.T) {
		if !caps.introspection {
			t.Skipf("%s has no _zerorpc_name", peer)
		}
		want(t, "_zerorpc_name", testservice.Name)
	})
	t.Run("list", func(t *testing.T) {
		if !caps.introspection {
			t.Skipf("%s has no _zerorpc_list", peer)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		var names []string
		if err := c.Call(ctx, "_zerorpc_list", &names); err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		if w := slices.Sorted(maps.Keys(interopMethods)); !slices.Equal(names, w) {
			t.Errorf("_zerorpc_list = %q, want %q", names, w)
		}
	})
	t.Run("help", func(t *testing.T) {
		if !caps.introspection {
			t.Skipf("%s has no _zerorpc_help", peer)
		}
		want(t, "_zerorpc_help", interopMethods["add"].doc, "add")
	})
}
