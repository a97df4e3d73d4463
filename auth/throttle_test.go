package auth_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mortarhq/mortar/auth"
)

func newThrottle(t testing.TB, cfg *auth.ThrottleConfig) *auth.Throttle {
	t.Helper()
	th, err := auth.NewThrottle(cfg)
	if err != nil {
		t.Fatalf("NewThrottle: %v", err)
	}
	return th
}

func TestNewThrottleConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    auth.ThrottleConfig
		wantOK bool
	}{
		{"zero", auth.ThrottleConfig{}, true},
		{"ones", auth.ThrottleConfig{UserFailures: 1, UserWindow: 1, AddrFailures: 1, AddrWindow: 1, MaxKeys: 2, AttemptTimeout: 1}, true},
		{"max failures", auth.ThrottleConfig{UserFailures: auth.MaxThrottleFailures, AddrFailures: auth.MaxThrottleFailures}, true},
		{"negative user failures", auth.ThrottleConfig{UserFailures: -1}, false},
		{"negative address failures", auth.ThrottleConfig{AddrFailures: -1}, false},
		{"user failures above max", auth.ThrottleConfig{UserFailures: auth.MaxThrottleFailures + 1}, false},
		{"address failures above max", auth.ThrottleConfig{AddrFailures: auth.MaxThrottleFailures + 1}, false},
		{"negative user window", auth.ThrottleConfig{UserWindow: -time.Second}, false},
		{"negative address window", auth.ThrottleConfig{AddrWindow: -time.Second}, false},
		{"negative attempt timeout", auth.ThrottleConfig{AttemptTimeout: -time.Second}, false},
		{"negative max keys", auth.ThrottleConfig{MaxKeys: -1}, false},
		{"max keys 1", auth.ThrottleConfig{MaxKeys: 1}, false},
		{"50-year window", auth.ThrottleConfig{UserWindow: 50 * 365 * 24 * time.Hour}, true},
		{"100-year window", auth.ThrottleConfig{AddrWindow: 100 * 365 * 24 * time.Hour}, false},
		{"100-year attempt timeout", auth.ThrottleConfig{AttemptTimeout: 100 * 365 * 24 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			if _, err := auth.NewThrottle(&cfg); (err == nil) != tt.wantOK {
				t.Errorf("NewThrottle(%+v) error = %v, want ok %v", tt.cfg, err, tt.wantOK)
			}
			if cfg != tt.cfg {
				t.Errorf("NewThrottle modified its config: %+v", cfg)
			}
		})
	}
}

// Operations in a throttle scenario.
const (
	opCheck   = "check"   // Check, and compare with want
	opAttempt = "attempt" // Check, compare with want, and report Failed if ok
	opFailed  = "failed"  // Failed
	opOK      = "ok"      // Succeeded
)

// throttleStep is one call in a scenario, at a time after the scenario's
// start.
type throttleStep struct {
	at         time.Duration
	op         string
	user, addr string
	wantOK     bool          // for opCheck and opAttempt
	wantRetry  time.Duration // for opCheck and opAttempt
}

func check(at time.Duration, user, addr string, ok bool, retry time.Duration) throttleStep {
	return throttleStep{at: at, op: opCheck, user: user, addr: addr, wantOK: ok, wantRetry: retry}
}

func attempt(at time.Duration, user, addr string, ok bool, retry time.Duration) throttleStep {
	return throttleStep{at: at, op: opAttempt, user: user, addr: addr, wantOK: ok, wantRetry: retry}
}

func report(at time.Duration, op, user, addr string) throttleStep {
	return throttleStep{at: at, op: op, user: user, addr: addr}
}

// attempts are n failed attempts by user from addr, one every gap from at.
func attempts(n int, at, gap time.Duration, user func(i int) string, addr func(i int) string) []throttleStep {
	var s []throttleStep
	for i := range n {
		s = append(s, attempt(at+time.Duration(i)*gap, user(i), addr(i), true, 0))
	}
	return s
}

func same(s string) func(int) string { return func(int) string { return s } }

func numbered(format string) func(int) string {
	return func(i int) string { return fmt.Sprintf(format, i) }
}

// start is a scenario's time zero, a real time of day, not the zero Time.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestThrottleScenarios(t *testing.T) {
	t.Parallel()
	const m = time.Minute
	small := &auth.ThrottleConfig{UserFailures: 3, AddrFailures: 5}
	tests := []struct {
		name  string
		cfg   *auth.ThrottleConfig
		steps []throttleStep
	}{
		{
			name: "five failures lock the user until the oldest leaves the window",
			steps: append(attempts(5, 0, m, same("alice"), numbered("192.0.2.%d")),
				check(5*m, "alice", "198.51.100.1", false, 10*m),
				check(15*m-1, "alice", "198.51.100.1", false, 1),
				attempt(15*m, "alice", "198.51.100.1", true, 0), // the failure at 0 has left
				check(15*m+time.Second, "alice", "198.51.100.1", false, m-time.Second),
				check(16*m, "alice", "198.51.100.1", true, 0),
			),
		},
		{
			name: "the lock is per user",
			steps: append(attempts(5, 0, 0, same("alice"), same("192.0.2.1")),
				check(0, "alice", "192.0.2.1", false, 15*m),
				check(0, "Alice", "192.0.2.1", true, 0),
				check(0, "bob", "192.0.2.1", true, 0),
			),
		},
		{
			name: "fifty failures lock the address, whatever the users",
			steps: append(attempts(50, 0, 10*time.Second, numbered("user%d"), same("192.0.2.1")),
				check(10*m, "carol", "192.0.2.1", false, 5*m),
				check(10*m, "carol", "192.0.2.2", true, 0),
				check(15*m, "carol", "192.0.2.1", true, 0),
			),
		},
		{
			name: "the longer of the two waits",
			cfg:  small,
			steps: append(append(attempts(5, 0, m, numbered("user%d"), same("192.0.2.1")),
				attempts(3, m, m, same("alice"), same("192.0.2.2"))...),
				check(5*m, "alice", "192.0.2.1", false, 11*m), // user until 16m, address until 15m
				check(5*m, "bob", "192.0.2.1", false, 10*m),
				check(5*m, "alice", "192.0.2.3", false, 11*m),
			),
		},
		{
			name: "success clears the user's failures, not the address's",
			cfg:  small,
			steps: append(attempts(2, 0, 0, same("alice"), same("192.0.2.1")),
				check(0, "alice", "192.0.2.1", true, 0),
				report(0, opOK, "alice", "192.0.2.1"),
				attempt(m, "alice", "192.0.2.2", true, 0),
				attempt(m, "alice", "192.0.2.2", true, 0),
				attempt(m, "bob", "192.0.2.1", true, 0),
				attempt(m, "bob", "192.0.2.1", true, 0),
				attempt(m, "carol", "192.0.2.1", true, 0), // 192.0.2.1: 5 failures, 1 success
				check(2*m, "dave", "192.0.2.1", false, 13*m),
				attempt(2*m, "alice", "192.0.2.2", true, 0),
				check(2*m, "alice", "192.0.2.2", false, 14*m),
			),
		},
		{
			name: "success from an unknown address",
			cfg:  small,
			steps: append(attempts(3, 0, 0, same("alice"), same("192.0.2.1")),
				report(m, opOK, "alice", "192.0.2.9"),
				check(m, "alice", "192.0.2.1", true, 0),
			),
		},
		{
			name: "attempts in flight count until reported",
			cfg:  small,
			steps: []throttleStep{
				check(0, "alice", "192.0.2.1", true, 0),
				check(0, "alice", "192.0.2.2", true, 0),
				check(10*time.Second, "alice", "192.0.2.3", true, 0),
				check(20*time.Second, "alice", "192.0.2.4", false, 40*time.Second), // the first two time out at 1m
				report(30*time.Second, opFailed, "alice", "192.0.2.1"),             // ends the attempt at 0
				check(30*time.Second, "alice", "192.0.2.4", false, 30*time.Second), // the other at 0 times out
				check(m, "alice", "192.0.2.4", true, 0),
				check(m, "alice", "192.0.2.4", false, 10*time.Second), // the attempt at 10s times out
				report(m, opOK, "alice", "192.0.2.4"),
				check(m, "alice", "192.0.2.4", true, 0),
			},
		},
		{
			name: "failures reported without a Check count",
			cfg:  small,
			steps: []throttleStep{
				report(0, opFailed, "alice", "192.0.2.1"),
				report(0, opFailed, "alice", "192.0.2.1"),
				report(0, opFailed, "alice", "192.0.2.1"),
				report(0, opFailed, "alice", "192.0.2.1"), // beyond the limit: still locked until 15m
				check(14*m, "alice", "", false, m),
				check(15*m, "alice", "", true, 0),
			},
		},
		{
			name: "an empty user or address is not tracked",
			cfg:  small,
			steps: append(attempts(10, 0, 0, same(""), same("")),
				check(0, "", "", true, 0),
				report(0, opFailed, "", "192.0.2.1"),
				report(0, opFailed, "alice", ""),
				check(0, "", "192.0.2.1", true, 0),
				check(0, "alice", "", true, 0),
			),
		},
		{
			name: "an IPv6 address counts as its /64",
			cfg:  small,
			steps: append(attempts(5, 0, 0, numbered("user%d"), numbered("2001:db8:1:2::%x")),
				check(0, "carol", "2001:db8:1:2:ffff:ffff:ffff:ffff", false, 15*m),
				check(0, "carol", "[2001:db8:1:2::1]:443", false, 15*m),
				check(0, "carol", "2001:db8:1:3::", true, 0),
				check(0, "carol", "2001:db8:1:1:ffff:ffff:ffff:ffff", true, 0),
			),
		},
		{
			name: "an IPv4 address counts alone, mapped or with a port",
			cfg:  small,
			steps: append(attempts(5, 0, 0, numbered("user%d"), func(i int) string {
				return []string{"192.0.2.1", "::ffff:192.0.2.1", "192.0.2.1:1234", "[::ffff:192.0.2.1]:80", "192.0.2.1"}[i]
			}),
				check(0, "carol", "192.0.2.1", false, 15*m),
				check(0, "carol", "::ffff:c000:201", false, 15*m),
				check(0, "carol", "192.0.2.2", true, 0),
				check(0, "carol", "192.0.2.0", true, 0),
			),
		},
		{
			name: "zones are dropped",
			cfg:  small,
			steps: append(attempts(5, 0, 0, numbered("user%d"), numbered("fe80::%d%%eth0")),
				check(0, "carol", "fe80::1", false, 15*m),
				check(0, "carol", "fe80::1%eth1", false, 15*m),
			),
		},
		{
			name: "an address that is not an IP is used as given",
			cfg:  small,
			steps: append(attempts(5, 0, 0, numbered("user%d"), same("nats-client-42")),
				check(0, "carol", "nats-client-42", false, 15*m),
				check(0, "carol", "NATS-client-42", true, 0),
				check(0, "carol", "192.0.2.1", true, 0),
			),
		},
		{
			name: "user names and addresses are separate keys",
			cfg:  small,
			steps: append(attempts(3, 0, 0, same("192.0.2.1"), same("")),
				check(0, "192.0.2.1", "", false, 15*m),
				check(0, "carol", "192.0.2.1", true, 0),
			),
		},
		{
			name: "long names are told apart",
			cfg:  small,
			steps: append(attempts(3, 0, 0, same(string(make([]byte, 100))+"a"), same("")),
				check(0, string(make([]byte, 100))+"a", "", false, 15*m),
				check(0, string(make([]byte, 100))+"b", "", true, 0),
				check(0, string(make([]byte, 64)), "", true, 0),
			),
		},
		{
			name: "custom windows",
			cfg:  &auth.ThrottleConfig{UserFailures: 2, UserWindow: time.Hour, AddrFailures: 2, AddrWindow: time.Second},
			steps: append(attempts(2, 0, 0, same("alice"), same("192.0.2.1")),
				check(0, "bob", "192.0.2.1", false, time.Second),
				check(time.Second, "bob", "192.0.2.1", true, 0),
				check(time.Second, "alice", "192.0.2.2", false, time.Hour-time.Second),
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			th := newThrottle(t, tt.cfg)
			for i, s := range tt.steps {
				now := start.Add(s.at)
				switch s.op {
				case opCheck, opAttempt:
					retry, ok := th.Check(s.user, s.addr, now)
					if ok != s.wantOK || retry != s.wantRetry {
						t.Fatalf("step %d at %v: Check(%.20q, %q) = %v, %v; want %v, %v",
							i, s.at, s.user, s.addr, retry, ok, s.wantRetry, s.wantOK)
					}
					if ok && s.op == opAttempt {
						th.Failed(s.user, s.addr, now)
					}
				case opFailed:
					th.Failed(s.user, s.addr, now)
				case opOK:
					th.Succeeded(s.user, s.addr, now)
				}
			}
		})
	}
}

// TestThrottleClock checks that times from time.Now work, with their
// monotonic readings or without.
func TestThrottleClock(t *testing.T) {
	t.Parallel()
	th := newThrottle(t, &auth.ThrottleConfig{UserFailures: 1})
	now := time.Now()
	th.Failed("alice", "", now)
	if retry, ok := th.Check("alice", "", now.Add(time.Minute)); ok || retry != 14*time.Minute {
		t.Errorf("Check a minute after a failure = %v, %v; want 14m, false", retry, ok)
	}
	// The same instant by the wall clock only: the Throttle's start and
	// now differ by the wall clock as by the monotonic one, give or take
	// the reading's jitter.
	if retry, ok := th.Check("alice", "", now.Round(0).Add(time.Minute)); ok || (retry-14*time.Minute).Abs() > time.Millisecond {
		t.Errorf("Check with a wall-clock time = %v, %v; want about 14m, false", retry, ok)
	}
}

// TestThrottleConcurrent runs many logins for one user at once, from many
// addresses: exactly the limit get past Check, however they interleave,
// because an attempt counts from Check on.
func TestThrottleConcurrent(t *testing.T) {
	t.Parallel()
	const limit, goroutines, tries = 5, 8, 50
	th := newThrottle(t, &auth.ThrottleConfig{UserFailures: limit})
	var passed atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			addr := fmt.Sprintf("192.0.2.%d", g)
			for i := range tries {
				now := start.Add(time.Duration(i) * time.Millisecond)
				if _, ok := th.Check("alice", addr, now); ok {
					passed.Add(1)
					th.Failed("alice", addr, now)
				}
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != limit {
		t.Errorf("%d concurrent logins passed Check, want %d", n, limit)
	}
}

// BenchmarkThrottle measures a failed login's Check and Failed: for one
// user from one address (refused once locked), and spread over many
// users and addresses with time moving on (mostly allowed, with keys
// forgotten as they expire).
func BenchmarkThrottle(b *testing.B) {
	users := make([]string, 10_000)
	addrs := make([]string, 1_000)
	for i := range users {
		users[i] = fmt.Sprintf("user%d@example.com", i)
	}
	for i := range addrs {
		addrs[i] = fmt.Sprintf("2001:db8:%x::%x", i, i)
	}
	b.Run("one key", func(b *testing.B) {
		th := newThrottle(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := th.Check("alice", "192.0.2.1", start); ok {
				th.Failed("alice", "192.0.2.1", start)
			}
		}
	})
	b.Run("many keys", func(b *testing.B) {
		th := newThrottle(b, nil)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			now := start.Add(time.Duration(i) * 100 * time.Millisecond)
			user, addr := users[i%len(users)], addrs[i%len(addrs)]
			if _, ok := th.Check(user, addr, now); ok {
				th.Failed(user, addr, now)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		th := newThrottle(b, nil)
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				now := start.Add(time.Duration(i) * 100 * time.Millisecond)
				user, addr := users[i%len(users)], addrs[i%len(addrs)]
				if _, ok := th.Check(user, addr, now); ok {
					th.Failed(user, addr, now)
				}
			}
		})
	})
}
