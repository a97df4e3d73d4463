package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/mortarhq/mortar/rpc"
)

// The "auth" subcommand measures the two figures issue 6 asks of
// authorization, in one run:
//
//  1. Permission checks per second for a subject with 1,000 grants:
//     mortar's compiled grants (auth.CompileGrants) against Shiro's linear
//     scan (AuthorizingRealm.isPermitted asks each granted permission in
//     turn and stops at the first that implies the request), on the same
//     requests, half permitted and half denied. Both must answer every
//     request alike.
//  2. What checking an RPC call costs over not checking it (goal: under
//     2 µs a call): a 16-byte echo, one caller, on two rpc servers in this
//     process, one plain and one with an auth.Verifier's interceptor (the
//     caller sends an API key with auth.RPCClient), the Verifier asking a
//     node in this process. Because a loopback round trip (~30 µs here)
//     varies by more than the figure sought, the two interceptors are also
//     timed alone, with the Verifier's cache warm.

// Short mode, for CI.
const (
	shortAuthRounds      = 2
	shortAuthDuration    = 100 * time.Millisecond
	shortAuthRPCRounds   = 4
	shortAuthRPCDuration = 50 * time.Millisecond
)

// The check benchmark's subject and requests, and the RPC goal.
const (
	authGrants         = 1000
	authRequests       = 1000 // half permitted, half denied
	authPayload        = 16
	authCallGoal       = 2 * time.Microsecond
	authService        = "bench"
	authCallBatch      = 256 // interceptor pairs run between reads of the clock
	authCallerName     = "caller"
	authCallPermission = "rpc:call:" + authService + ":echo" // the method mortarCaller calls
)

// authOptions is the "auth" subcommand's configuration.
type authOptions struct {
	rounds      int
	duration    time.Duration
	rpcRounds   int
	rpcDuration time.Duration
	format      string
	command     string
}

func parseAuthOptions(args []string, stderr io.Writer) (*authOptions, error) {
	o := &authOptions{}
	fs := flag.NewFlagSet("bench auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.rounds, "rounds", 5, "rounds of permission checks and of interceptor runs; the report shows medians")
	fs.DurationVar(&o.duration, "duration", time.Second, "how long each implementation checks, and the interceptors run, per round")
	fs.IntVar(&o.rpcRounds, "rpc-rounds", 20, "rounds of RPC calls, each timing unchecked then checked calls (or the reverse)")
	fs.DurationVar(&o.rpcDuration, "rpc-duration", 250*time.Millisecond, "how long each server is called per RPC round")
	fs.StringVar(&o.format, "o", "markdown", "report format: markdown or json")
	short := fs.Bool("short", false, fmt.Sprintf("a quick run for CI: -rounds %d -duration %v -rpc-rounds %d -rpc-duration %v unless given",
		shortAuthRounds, shortAuthDuration, shortAuthRPCRounds, shortAuthRPCDuration))
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, apply := range map[string]func(){
			"rounds":       func() { o.rounds = shortAuthRounds },
			"duration":     func() { o.duration = shortAuthDuration },
			"rpc-rounds":   func() { o.rpcRounds = shortAuthRPCRounds },
			"rpc-duration": func() { o.rpcDuration = shortAuthRPCDuration },
		} {
			if !set[name] {
				apply()
			}
		}
	}
	switch {
	case fs.NArg() > 0:
		return nil, errors.New("unexpected arguments")
	case o.rounds < 1 || o.rpcRounds < 1:
		return nil, errors.New("-rounds and -rpc-rounds must be at least 1")
	case o.duration <= 0 || o.rpcDuration <= 0:
		return nil, errors.New("-duration and -rpc-duration must be positive")
	case o.format != "markdown" && o.format != "json":
		return nil, fmt.Errorf("-o %q: want markdown or json", o.format)
	}
	o.command = strings.TrimSpace("go run ./bench auth " + strings.Join(args, " "))
	return o, nil
}

// authReport is the subcommand's output; -o json prints it as is.
type authReport struct {
	Command      string            `json:"command"`
	Date         string            `json:"date"`
	GoVersion    string            `json:"go_version"`
	CPU          string            `json:"cpu"`
	Rounds       int               `json:"rounds"`
	Duration     time.Duration     `json:"duration_ns"`
	Checks       checkReport       `json:"checks"`
	RPC          rpcAuthReport     `json:"rpc"`
	Interceptors interceptorReport `json:"interceptors"`
}

// checkReport is the permission check comparison.
type checkReport struct {
	Grants    int `json:"grants"`
	Requests  int `json:"requests"`
	Permitted int `json:"permitted"`
	// Agree is set once both implementations have answered every request
	// alike (the run fails otherwise).
	Agree bool `json:"agree"`
	// ScanExamined is how many grants the scan asks per request, on
	// average over the requests.
	ScanExamined float64       `json:"scan_mean_grants_examined"`
	Compile      time.Duration `json:"compile_ns"`
	Results      []checkResult `json:"results"`
	// Ratio is the compiled grants' checks/s over the scan's.
	Ratio float64 `json:"ratio_compiled_vs_scan"`
}

type checkResult struct {
	Implementation string  `json:"implementation"`
	About          string  `json:"about"`
	ChecksPerSec   float64 `json:"checks_per_sec"`
	NsPerCheck     float64 `json:"ns_per_check"`
	AllocsPerCheck float64 `json:"allocs_per_check"`
}

// rpcAuthReport is the checked against unchecked round trip.
type rpcAuthReport struct {
	Rounds       int           `json:"rounds"`
	Round        time.Duration `json:"round_ns"`
	PayloadBytes int           `json:"payload_bytes"`
	Unchecked    time.Duration `json:"unchecked_ns_per_call"`
	Checked      time.Duration `json:"checked_ns_per_call"`
	// Overhead is the median of the rounds' differences, checked minus
	// unchecked; OverheadQ1 and OverheadQ3 their quartiles.
	Overhead   time.Duration `json:"overhead_ns_per_call"`
	OverheadQ1 time.Duration `json:"overhead_q1_ns"`
	OverheadQ3 time.Duration `json:"overhead_q3_ns"`
	Goal       time.Duration `json:"goal_ns"`
	Met        bool          `json:"goal_met"`
}

// interceptorReport is the client and server interceptors alone.
type interceptorReport struct {
	NsPerOp     float64 `json:"ns_per_op"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	Met         bool    `json:"goal_met"`
}

func authMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseAuthOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench auth: %v\n", err)
		return 2
	}
	rep := &authReport{
		Command: o.command, Date: time.Now().UTC().Format(time.RFC3339), CPU: cpuModel(),
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		Rounds:    o.rounds, Duration: o.duration,
	}
	if err := measureChecks(ctx, o, &rep.Checks, stderr); err != nil {
		fmt.Fprintf(stderr, "bench auth: permission checks: %v\n", err)
		return 1
	}
	if err := measureCheckedCalls(ctx, o, rep, stderr); err != nil {
		fmt.Fprintf(stderr, "bench auth: rpc: %v\n", err)
		return 1
	}
	if err := rep.write(stdout, o.format); err != nil {
		fmt.Fprintf(stderr, "bench auth: %v\n", err)
		return 1
	}
	return 0
}

// checkImpl is one way of deciding whether the subject holds a
// permission.
type checkImpl struct {
	name, about string
	implies     func(q auth.Permission) bool
}

// shiroScan is Shiro's AuthorizingRealm.isPermitted: ask each granted
// permission in turn, stop at the first that implies q. It also returns
// how many it asked.
func shiroScan(granted []auth.Permission, q auth.Permission) (bool, int) {
	for i, p := range granted {
		if p.Implies(q) {
			return true, i + 1
		}
	}
	return false, len(granted)
}

// measureChecks times the compiled grants and the linear scan on the same
// requests, after checking that they answer every request alike.
func measureChecks(ctx context.Context, o *authOptions, rep *checkReport, stderr io.Writer) error {
	grants, reqs, permitted, err := checkWorkload()
	if err != nil {
		return err
	}
	start := time.Now()
	compiled := auth.CompileGrants(grants)
	rep.Compile = time.Since(start)
	impls := []checkImpl{
		{"compiled", "mortar: auth.CompileGrants(grants).Implies(q), a trie walked once per request", compiled.Implies},
		{"scan", "Shiro's AuthorizingRealm.isPermitted: granted[i].Implies(q) for each grant in turn, stopping at the first true",
			func(q auth.Permission) bool { ok, _ := shiroScan(grants, q); return ok }},
	}
	examined := 0
	for _, q := range reqs {
		want, n := shiroScan(grants, q)
		examined += n
		if got := compiled.Implies(q); got != want {
			return fmt.Errorf("compiled grants answer %v for %s, the scan %v", got, q, want)
		}
	}
	rep.Grants, rep.Requests, rep.Permitted, rep.Agree = compiled.Len(), len(reqs), permitted, true
	rep.ScanExamined = float64(examined) / float64(len(reqs))

	samples := make([][]loopSample, len(impls))
	for round := range o.rounds {
		for k := range impls {
			i := (k + round) % len(impls) // alternate which goes first
			s, err := timeLoop(ctx, o.duration, func() (int, error) {
				n := 0
				for _, q := range reqs {
					if impls[i].implies(q) {
						n++
					}
				}
				if n != permitted {
					return 0, fmt.Errorf("%s permitted %d of the requests, want %d", impls[i].name, n, permitted)
				}
				return len(reqs), nil
			})
			if err != nil {
				return err
			}
			samples[i] = append(samples[i], s)
			fmt.Fprintf(stderr, "round %d/%d  checks  %-8s %12.0f checks/s  %8.1f ns/check\n",
				round+1, o.rounds, impls[i].name, s.perSec(), s.nsPerOp())
		}
	}
	for i, im := range impls {
		rep.Results = append(rep.Results, checkResult{
			Implementation: im.name, About: im.about,
			ChecksPerSec:   median(collect(samples[i], loopSample.perSec)),
			NsPerCheck:     median(collect(samples[i], loopSample.nsPerOp)),
			AllocsPerCheck: median(collect(samples[i], loopSample.allocsPerOp)),
		})
	}
	rep.Ratio = rep.Results[0].ChecksPerSec / rep.Results[1].ChecksPerSec
	return nil
}

// checkWorkload builds, from a fixed seed, authGrants distinct grants of the
// shapes mortar's own permissions take, and authRequests requests in random
// order, half of them implied by some grant (permitted) and half by none.
// Every denied request makes the scan ask all the grants, its worst case.
func checkWorkload() (grants, reqs []auth.Permission, permitted int, err error) {
	r := rand.New(rand.NewPCG(6, 1000))
	queues := []string{"email", "sms", "push", "webhook", "report", "billing", "export", "import", "thumbnail", "index", "digest", "cleanup"}
	q := func() string { return queues[r.IntN(len(queues))] }
	// Each shape returns a grant and a request it implies.
	shapes := []func() (grant, implied string){
		func() (string, string) {
			ns := r.IntN(200)
			return fmt.Sprintf("config:read:ns%d", ns), fmt.Sprintf("config:read:ns%d:key%d", ns, r.IntN(50))
		},
		func() (string, string) { g := fmt.Sprintf("config:write:ns%d", r.IntN(200)); return g, g },
		func() (string, string) {
			ns := r.IntN(200)
			return fmt.Sprintf("config:*:ns%d", ns), fmt.Sprintf("config:delete:ns%d", ns)
		},
		func() (string, string) { g := fmt.Sprintf("registry:write:svc%d", r.IntN(300)); return g, g },
		func() (string, string) {
			svc := r.IntN(300)
			return fmt.Sprintf("registry:read,watch:svc%d", svc), fmt.Sprintf("registry:watch:svc%d", svc)
		},
		func() (string, string) { a, b := q(), q(); return "task:submit:" + a + "," + b, "task:submit:" + b },
		func() (string, string) { g := "task:cancel:" + q(); return g, g },
		func() (string, string) {
			g := fmt.Sprintf("rpc:call:svc%d:method%d", r.IntN(300), r.IntN(20))
			return g, g
		},
		func() (string, string) {
			svc := r.IntN(300)
			return fmt.Sprintf("rpc:call:svc%d:*", svc), fmt.Sprintf("rpc:call:svc%d:method%d", svc, r.IntN(20))
		},
		func() (string, string) {
			svc, m := r.IntN(300), r.IntN(20)
			return fmt.Sprintf("rpc:call:svc%d:method%d,method%d", svc, m, m+1), fmt.Sprintf("rpc:call:svc%d:method%d", svc, m+1)
		},
		func() (string, string) {
			u := r.IntN(1000)
			return fmt.Sprintf("push:send:*:user%d", u), fmt.Sprintf("push:send:ch%d:user%d", r.IntN(10), u)
		},
	}
	// Requests of the same shapes, most of them denied.
	candidates := []func() string{
		func() string { return fmt.Sprintf("config:read:ns%d", r.IntN(400)) },
		func() string { return fmt.Sprintf("config:write:ns%d:key%d", r.IntN(400), r.IntN(50)) },
		func() string { return fmt.Sprintf("registry:write:svc%d", r.IntN(600)) },
		func() string { return "task:submit:" + q() + ",audit" },
		func() string { return fmt.Sprintf("rpc:call:svc%d:method%d", r.IntN(600), r.IntN(40)) },
		func() string { return fmt.Sprintf("push:send:ch%d:user%d", r.IntN(10), r.IntN(2000)) },
		func() string { return "auth:user:add" },
	}
	seen := map[string]bool{}
	var implied []string
	for len(grants) < authGrants {
		g, im := shapes[r.IntN(len(shapes))]()
		p := auth.MustParsePermission(g)
		if !seen[p.String()] {
			seen[p.String()] = true
			grants = append(grants, p)
			implied = append(implied, im)
		}
	}
	for len(reqs) < authRequests/2 {
		p := auth.MustParsePermission(implied[r.IntN(len(implied))])
		if ok, _ := shiroScan(grants, p); !ok {
			return nil, nil, 0, fmt.Errorf("workload: no grant implies %s", p)
		}
		reqs = append(reqs, p)
	}
	permitted = len(reqs)
	for tries := 0; len(reqs) < authRequests; tries++ {
		if tries > 100*authRequests {
			return nil, nil, 0, errors.New("workload: too few denied requests")
		}
		p := auth.MustParsePermission(candidates[r.IntN(len(candidates))]())
		if ok, _ := shiroScan(grants, p); !ok {
			reqs = append(reqs, p)
		}
	}
	r.Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	return grants, reqs, permitted, nil
}

// loopSample is one timed run of a loop.
type loopSample struct {
	ops     int
	elapsed time.Duration
	mallocs uint64
}

func (s loopSample) perSec() float64      { return float64(s.ops) / s.elapsed.Seconds() }
func (s loopSample) nsPerOp() float64     { return float64(s.elapsed) / float64(s.ops) }
func (s loopSample) allocsPerOp() float64 { return float64(s.mallocs) / float64(s.ops) }

// timeLoop runs pass, which returns how many operations it did, until d
// has passed, and returns the operations, the time and this process's
// allocations.
func timeLoop(ctx context.Context, d time.Duration, pass func() (int, error)) (loopSample, error) {
	before, err := readUsage()
	if err != nil {
		return loopSample{}, err
	}
	var s loopSample
	start := time.Now()
	for s.elapsed < d {
		if err := ctx.Err(); err != nil {
			return s, err
		}
		n, err := pass()
		if err != nil {
			return s, err
		}
		s.ops += n
		s.elapsed = time.Since(start)
	}
	after, err := readUsage()
	s.mallocs = after.sub(before).mallocs
	return s, err
}

// measureCheckedCalls runs a node in this process, a user permitted to
// call echo on the service "bench" with an API key, and two echo servers,
// one checking calls with a Verifier; it fills rep.RPC and
// rep.Interceptors.
func measureCheckedCalls(ctx context.Context, o *authOptions, rep *authReport, stderr io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "mortar-bench-auth-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n, err := startPushNode(ctx, &node.Config{
		Name: "bench", DataDir: dir, Port: -1, AdminAddr: "off", Push: node.PushConfig{TCPAddr: "off"},
		Auth:   node.AuthConfig{Announce: io.Discard}, // the benchmark uses the local credential
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	defer func() { err = errors.Join(err, n.stop()) }()
	token, err := os.ReadFile(filepath.Join(dir, mortar.LocalCredentialFile))
	if err != nil {
		return err
	}
	conn, err := dialNode(ctx, n.control, strings.TrimSpace(string(token)), "bench-auth", log)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Do(ctx, "auth.user.add", authwire.UserRequest{Name: authCallerName, Permissions: []string{authCallPermission}}, nil); err != nil {
		return err
	}
	var key authwire.APIKey
	if err := conn.Do(ctx, "auth.apikey.create", authwire.APIKeyRequest{User: authCallerName}, &key); err != nil {
		return err
	}
	v, err := auth.NewVerifier(conn, nil)
	if err != nil {
		return err
	}
	defer v.Close()

	plainEP, stopPlain, err := startAuthEcho(nil)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopPlain()) }()
	checkedEP, stopChecked, err := startAuthEcho([]rpc.Interceptor{v.RPCServer(authService)})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopChecked()) }()
	// The check is live: a call without a credential is refused.
	anon, err := dialAuthEcho(ctx, checkedEP, nil)
	if err != nil {
		return err
	}
	_, err = anon.Echo(ctx, []byte("x"))
	anon.Close()
	if re, ok := errors.AsType[*rpc.RemoteError](err); !ok || re.Name != "Unauthenticated" {
		return fmt.Errorf("a call without credential to the checked server: %v, want Unauthenticated", err)
	}
	callers := make([]caller, 2) // unchecked, checked
	for i, ep := range []string{plainEP, checkedEP} {
		var ics []rpc.Interceptor
		if i == 1 {
			ics = []rpc.Interceptor{auth.RPCClient(key.Key)}
		}
		if callers[i], err = dialAuthEcho(ctx, ep, ics); err != nil {
			return err
		}
		defer callers[i].Close()
	}
	if err := timeCheckedCalls(ctx, o, callers, &rep.RPC, stderr); err != nil {
		return err
	}
	return timeInterceptors(ctx, o, v, key.Key, &rep.Interceptors, stderr)
}

// startAuthEcho serves an echo method on 127.0.0.1 with the interceptors
// ics.
func startAuthEcho(ics []rpc.Interceptor) (endpoint string, stop func() error, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := rpc.NewServer(&rpc.ServerConfig{Name: authService, Logger: quiet, Interceptors: ics})
	srv.Handle("echo", func(p []byte) []byte { return p }, nil)
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}
	return rpc.Endpoint(l.Addr()), serveInBackground(func() error { return srv.Serve(l) }, shutdown, rpc.ErrServerClosed), nil
}

func dialAuthEcho(ctx context.Context, endpoint string, ics []rpc.Interceptor) (caller, error) {
	c, err := rpc.Dial(ctx, endpoint, &rpc.ClientConfig{Logger: quiet, Interceptors: ics})
	if err != nil {
		return nil, err
	}
	return mortarCaller{c}, nil
}

// timeCheckedCalls times serial echo calls on callers (unchecked, checked)
// for o.rpcDuration each per round, after an untimed warmup that fills the
// Verifier's cache.
func timeCheckedCalls(ctx context.Context, o *authOptions, callers []caller, rep *rpcAuthReport, stderr io.Writer) error {
	payload := makePayload(authPayload)
	lats := [][]time.Duration{nil}
	call := func(c caller, d time.Duration) (time.Duration, error) {
		elapsed, err := runCallers(ctx, c, payload, d, lats)
		if err == nil && len(lats[0]) == 0 {
			err = fmt.Errorf("no call completed in %v", elapsed)
		}
		if err != nil {
			return 0, err
		}
		return elapsed / time.Duration(len(lats[0])), nil
	}
	for _, c := range callers {
		if _, err := call(c, o.rpcDuration); err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
	}
	preallocate(lats, o.rpcDuration, o.rpcDuration)
	var plain, checked, diffs []time.Duration
	for round := range o.rpcRounds {
		var per [2]time.Duration
		for k := range callers {
			i := (k + round) % 2 // alternate which goes first
			d, err := call(callers[i], o.rpcDuration)
			if err != nil {
				return fmt.Errorf("round %d: %w", round+1, err)
			}
			per[i] = d
		}
		plain, checked, diffs = append(plain, per[0]), append(checked, per[1]), append(diffs, per[1]-per[0])
		fmt.Fprintf(stderr, "round %d/%d  rpc  unchecked %s µs/call  checked %s µs/call  difference %+.0f ns\n",
			round+1, o.rpcRounds, formatMicros(per[0]), formatMicros(per[1]), float64(per[1]-per[0]))
	}
	slices.Sort(diffs)
	*rep = rpcAuthReport{
		Rounds: o.rpcRounds, Round: o.rpcDuration, PayloadBytes: authPayload,
		Unchecked: medianDuration(plain), Checked: medianDuration(checked),
		Overhead: medianDuration(diffs), OverheadQ1: percentile(diffs, 25), OverheadQ3: percentile(diffs, 75),
		Goal: authCallGoal,
	}
	rep.Met = rep.Overhead < authCallGoal
	return nil
}

// timeInterceptors times the client interceptor setting the credential
// and the server interceptor checking it, with a no-op next, for
// o.duration per round.
func timeInterceptors(ctx context.Context, o *authOptions, v *auth.Verifier, key string, rep *interceptorReport, stderr io.Writer) error {
	client, server := auth.RPCClient(key), v.RPCServer(authService)
	req := &rpc.Request{}
	noop := func(context.Context) error { return nil }
	// The cache is warm after the RPC rounds; this checks the subject.
	*req = rpc.Request{Method: "echo"}
	err := client(ctx, req, noop)
	if err == nil {
		err = server(ctx, req, func(ctx context.Context) error {
			if s, ok := auth.SubjectFrom(ctx); !ok || s.Principal() != authCallerName {
				return fmt.Errorf("the handler's subject is %v, want %s", s, authCallerName)
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("interceptors: %w", err)
	}
	var samples []loopSample
	for round := range o.rounds {
		s, err := timeLoop(ctx, o.duration, func() (int, error) {
			for range authCallBatch {
				*req = rpc.Request{Method: "echo"} // a fresh request, as every Call makes
				if err := client(ctx, req, noop); err != nil {
					return 0, err
				}
				if err := server(ctx, req, noop); err != nil {
					return 0, err
				}
			}
			return authCallBatch, nil
		})
		if err != nil {
			return fmt.Errorf("interceptors: %w", err)
		}
		samples = append(samples, s)
		fmt.Fprintf(stderr, "round %d/%d  interceptors  %.0f ns/op  %.1f allocs/op\n", round+1, o.rounds, s.nsPerOp(), s.allocsPerOp())
	}
	rep.NsPerOp = median(collect(samples, loopSample.nsPerOp))
	rep.AllocsPerOp = median(collect(samples, loopSample.allocsPerOp))
	rep.Met = rep.NsPerOp < float64(authCallGoal)
	return nil
}

func (r *authReport) write(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	c, rp, ic := r.Checks, r.RPC, r.Interceptors
	fmt.Fprintf(w, "# Authorization benchmark\n\n")
	fmt.Fprintf(w, "- command: `%s`\n", r.Command)
	fmt.Fprintf(w, "- date: %s; %s; CPU: %s\n", r.Date, r.GoVersion, r.CPU)
	fmt.Fprintf(w, "- checks: a subject with %s grants (config, registry, task, rpc:call and push permissions, some with comma lists or *; fixed seed); "+
		"%s requests in random order, %s permitted and the rest denied (each denied one makes the scan ask every grant); "+
		"each implementation runs through them for %v per round, the two interleaved; medians of %s. "+
		"Both answered every request alike. The scan asks %.0f grants per request on average; compiling the grants took %s µs.\n",
		thousands(c.Grants), thousands(c.Requests), thousands(c.Permitted), r.Duration, plural(r.Rounds, "round"), c.ScanExamined, formatMicros(c.Compile))
	for _, res := range c.Results {
		fmt.Fprintf(w, "- %s: %s\n", res.Implementation, res.About)
	}
	fmt.Fprintf(w, "- rpc: a node, an echo server without and one with an auth.Verifier interceptor (its service permission %s), "+
		"and their clients, all in this process over 127.0.0.1; the checked client sends a user's API key with auth.RPCClient. "+
		"One caller, %d-byte payload; %s of %v on each server, the order alternating; the Verifier's cache is warm. "+
		"The interceptors alone: auth.RPCClient then Verifier.RPCServer on a fresh rpc.Request with a no-op next, "+
		"%v per round, medians of %s (what they leave out: the extra header entry on the wire and the server finding it in the header as received).\n",
		authCallPermission, rp.PayloadBytes, plural(rp.Rounds, "round"), rp.Round, r.Duration, plural(r.Rounds, "round"))

	fmt.Fprintf(w, "\n## Permission checks, a subject with %s grants\n\n", thousands(c.Grants))
	rows := [][]string{{"implementation", "checks/s", "ns/check", "allocs/check", "vs scan"}}
	for _, res := range c.Results {
		rows = append(rows, []string{res.Implementation, thousands(int(res.ChecksPerSec)), formatNanos(res.NsPerCheck),
			fmt.Sprintf("%.2f", res.AllocsPerCheck), fmt.Sprintf("%.1f×", res.ChecksPerSec/c.Results[len(c.Results)-1].ChecksPerSec)})
	}
	writeTable(w, rows)

	fmt.Fprintf(w, "\n## Checked against unchecked RPC call, one caller, %d-byte echo (goal: under %v more)\n\n", rp.PayloadBytes, rp.Goal)
	writeTable(w, [][]string{
		{"measured", "ns/call", "goal"},
		{"unchecked call", thousands(int(rp.Unchecked)), ""},
		{"checked call", thousands(int(rp.Checked)), ""},
		{fmt.Sprintf("difference (IQR %+d to %+d ns)", rp.OverheadQ1, rp.OverheadQ3), fmt.Sprintf("%+d", rp.Overhead), metOrNot(rp.Met)},
		{fmt.Sprintf("interceptors alone (%.1f allocs/op)", ic.AllocsPerOp), formatNanos(ic.NsPerOp), metOrNot(ic.Met)},
	})
	return nil
}

// formatNanos is "67.4" below 1,000 and "11,363" above.
func formatNanos(ns float64) string {
	if ns < 1000 {
		return fmt.Sprintf("%.1f", ns)
	}
	return thousands(int(ns + 0.5))
}

func metOrNot(met bool) string {
	if met {
		return "met"
	}
	return "not met"
}
