package registry

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// lbInstances returns n passing instances of service "svc" with IDs i-0 …
// i-(n-1).
func lbInstances(n int) []Instance {
	out := make([]Instance, n)
	for i := range out {
		out[i] = Instance{
			Service: "svc",
			ID:      fmt.Sprintf("i-%d", i),
			Address: fmt.Sprintf("10.0.0.%d", i+1),
			Port:    4242,
			Status:  StatusPassing,
		}
	}
	return out
}

// lbBalancers lists every balancer by name, for tests and benchmarks that
// run them all.
var lbBalancers = []struct {
	name string
	new  func() Balancer
}{
	{"RoundRobin", RoundRobin},
	{"WeightedRandom", WeightedRandom},
	{"LeastInFlight", LeastInFlight},
	{"P2C", P2C},
	{"ConsistentHash", ConsistentHash},
	{"ZoneAffinity", func() Balancer { return ZoneAffinity("z1", P2C()) }},
}

// lbTable returns the peer table of a LeastInFlight or P2C balancer.
func lbTable(t *testing.T, b Balancer) *table {
	t.Helper()
	switch b := b.(type) {
	case *leastInFlight:
		return b.t
	case *p2c:
		return b.t
	}
	t.Fatalf("%T has no table", b)
	return nil
}

func lbPeer(t *testing.T, b Balancer, in Instance) *peer {
	t.Helper()
	tb := lbTable(t, b)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	p := tb.peers[peerKey{in.Service, in.ID}]
	if p == nil {
		t.Fatalf("no peer for %s/%s", in.Service, in.ID)
	}
	return p
}

func TestRoundRobin(t *testing.T) {
	ins := lbInstances(3)
	b := RoundRobin()
	counts := map[string]int{}
	for range 300 {
		in, done := b.Pick(ins, "")
		done(time.Millisecond, nil)
		counts[in.ID]++
	}
	for _, in := range ins {
		if counts[in.ID] != 100 {
			t.Errorf("%s picked %d times of 300, want 100 (all: %v)", in.ID, counts[in.ID], counts)
		}
	}
	// Consecutive picks visit the instances in order.
	first, _ := b.Pick(ins, "")
	second, _ := b.Pick(ins, "")
	i := slices.IndexFunc(ins, func(in Instance) bool { return in.ID == first.ID })
	if want := ins[(i+1)%3].ID; second.ID != want {
		t.Errorf("after %s picked %s, want %s", first.ID, second.ID, want)
	}
}

func TestWeightedRandom(t *testing.T) {
	tests := []struct {
		weights []int
		want    []float64
	}{
		{[]int{100, 300}, []float64{0.25, 0.75}},
		{[]int{0, 300}, []float64{0.25, 0.75}}, // 0 means 100
		{[]int{1, 1, 2}, []float64{0.25, 0.25, 0.5}},
		{[]int{5000}, []float64{1}},
	}
	const picks = 20000
	for _, b := range []struct {
		name string
		b    Balancer
	}{
		{"WeightedRandom", WeightedRandom()},
		{"ConsistentHash/nokey", ConsistentHash()},
	} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%v", b.name, tt.weights), func(t *testing.T) {
				ins := lbInstances(len(tt.weights))
				for i, w := range tt.weights {
					ins[i].Weight = w
				}
				counts := map[string]int{}
				for range picks {
					in, _ := b.b.Pick(ins, "")
					counts[in.ID]++
				}
				for i, in := range ins {
					got := float64(counts[in.ID]) / picks
					if math.Abs(got-tt.want[i]) > 0.03 {
						t.Errorf("%s (weight %d) got %.3f of picks, want %.2f±0.03", in.ID, in.Weight, got, tt.want[i])
					}
				}
			})
		}
	}
}

func TestLeastInFlight(t *testing.T) {
	ins := lbInstances(3)
	a, bb, c := ins[:1], ins[1:2], ins[2:3]
	b := LeastInFlight()

	// Two calls in flight on i-0, one on i-1: i-2 is the idle one.
	_, doneA1 := b.Pick(a, "")
	_, doneA2 := b.Pick(a, "")
	_, doneB := b.Pick(bb, "")
	for range 50 {
		in, done := b.Pick(ins, "")
		if in.ID != "i-2" {
			t.Fatalf("picked %s, want the idle i-2", in.ID)
		}
		done(time.Millisecond, nil)
	}

	// Hold a call on i-2 and finish those on i-0: now i-0 is the idle one.
	_, doneC := b.Pick(c, "")
	doneA1(time.Millisecond, nil)
	doneA2(time.Millisecond, errors.New("boom"))
	for range 50 {
		in, done := b.Pick(ins, "")
		if in.ID != "i-0" {
			t.Fatalf("after Done picked %s, want i-0", in.ID)
		}
		done(time.Millisecond, nil)
	}

	// Everything done: the counts are back to zero.
	doneB(time.Millisecond, nil)
	doneC(time.Millisecond, nil)
	for _, in := range ins {
		if n := lbPeer(t, b, in).inflight; n != 0 {
			t.Errorf("%s has %d in flight after all Done, want 0", in.ID, n)
		}
	}
}

func TestLeastInFlightTiesRandom(t *testing.T) {
	ins := lbInstances(3)
	b := LeastInFlight()
	const picks = 3000
	counts := map[string]int{}
	for range picks {
		in, done := b.Pick(ins, "")
		counts[in.ID]++
		done(0, nil)
	}
	for _, in := range ins {
		if got := float64(counts[in.ID]) / picks; math.Abs(got-1.0/3) > 0.05 {
			t.Errorf("%s got %.3f of picks among idle instances, want 1/3±0.05", in.ID, got)
		}
	}
}

func TestLeastInFlightDoneTwice(t *testing.T) {
	ins := lbInstances(2)
	b := LeastInFlight()
	_, done := b.Pick(ins[:1], "")
	done(0, nil)
	done(0, nil) // misuse: must not drive the count negative
	if n := lbPeer(t, b, ins[0]).inflight; n != 0 {
		t.Errorf("in flight = %d after Done twice, want 0", n)
	}
}

func TestP2CPrefersFast(t *testing.T) {
	ins := lbInstances(2)
	latency := map[string]time.Duration{"i-0": time.Millisecond, "i-1": 50 * time.Millisecond}
	b := P2C()
	for range 20 { // warm up: each instance gets samples
		in, done := b.Pick(ins, "")
		done(latency[in.ID], nil)
	}
	fast := 0
	for range 1000 {
		in, done := b.Pick(ins, "")
		if in.ID == "i-0" {
			fast++
		}
		done(latency[in.ID], nil)
	}
	if fast < 800 {
		t.Errorf("fast instance got %d of 1000 picks, want ≥ 800", fast)
	}
}

func TestP2CAvoidsBusy(t *testing.T) {
	ins := lbInstances(2)
	b := P2C()
	for _, in := range ins { // equal latencies
		_, done := b.Pick([]Instance{in}, "")
		done(10*time.Millisecond, nil)
	}
	var pending []Done
	for range 10 {
		_, done := b.Pick(ins[:1], "")
		pending = append(pending, done)
	}
	for range 100 {
		in, done := b.Pick(ins, "")
		if in.ID != "i-1" {
			t.Fatalf("picked %s with 10 calls in flight, want the idle i-1", in.ID)
		}
		done(10*time.Millisecond, nil)
	}
	for _, done := range pending {
		done(10*time.Millisecond, nil)
	}
	// Once they are done, i-0 gets calls again.
	seen := false
	for range 100 {
		in, done := b.Pick(ins, "")
		seen = seen || in.ID == "i-0"
		done(10*time.Millisecond, nil)
	}
	if !seen {
		t.Error("i-0 got no picks after its calls finished")
	}
}

func TestP2CErrorsPenalised(t *testing.T) {
	ins := lbInstances(2)
	b := P2C()
	for range 50 {
		in, done := b.Pick(ins, "")
		var err error
		if in.ID == "i-0" {
			err = errors.New("refused")
		}
		done(time.Millisecond, err) // i-0 is fast but fails
	}
	if got := lbPeer(t, b, ins[0]).ewma; got < float64(time.Second) {
		t.Errorf("failing instance's EWMA = %v, want ≥ 1s", time.Duration(got))
	}
	ok := 0
	for range 1000 {
		in, done := b.Pick(ins, "")
		if in.ID == "i-1" {
			ok++
		}
		done(time.Millisecond, nil)
	}
	if ok < 900 {
		t.Errorf("working instance got %d of 1000 picks, want ≥ 900", ok)
	}
}

func TestP2CEWMA(t *testing.T) {
	ms := func(d float64) float64 { return d * float64(time.Millisecond) }
	tests := []struct {
		name    string
		start   float64 // first sample, at time 0
		at      time.Duration
		sample  float64 // second sample, at time at
		want    float64
		scoreAt time.Duration // when to read the score, after the second sample
		score   float64       // its expected value (one call in flight → ×2)
	}{
		{"peak", ms(1), time.Second, ms(50), ms(50), time.Second, ms(50) * math.Exp(-0.1) * 2},
		{"decay one tau", ms(50), 10 * time.Second, ms(1), ms(50)/math.E + ms(1)*(1-1/math.E), 10 * time.Second, 0},
		{"instant", ms(50), 0, ms(1), ms(50), 0, 0},
		{"idle decay", ms(20), 0, ms(20), ms(20), 20 * time.Second, ms(20) / (math.E * math.E) * 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var now int64
			b := P2C()
			tb := lbTable(t, b)
			tb.clock = func() int64 { return now }
			in := lbInstances(1)
			_, done := b.Pick(in, "")
			done(time.Duration(tt.start), nil)
			now = int64(tt.at)
			_, done = b.Pick(in, "")
			done(time.Duration(tt.sample), nil)
			p := lbPeer(t, b, in[0])
			if math.Abs(p.ewma-tt.want) > 1 {
				t.Errorf("EWMA = %v, want %v", time.Duration(p.ewma), time.Duration(tt.want))
			}
			if tt.score != 0 {
				now += int64(tt.scoreAt)
				_, _ = b.Pick(in, "") // one call in flight
				tb.mu.Lock()
				s := p.score(now)
				tb.mu.Unlock()
				if math.Abs(s-tt.score) > 1 {
					t.Errorf("score = %v, want %v", time.Duration(s), time.Duration(tt.score))
				}
			}
		})
	}
}

func TestP2CNewInstanceStartsAtMean(t *testing.T) {
	ins := lbInstances(3)
	b := P2C()
	lbTable(t, b).clock = func() int64 { return 0 } // time stands still: samples of 0 do not move the EWMAs
	// An instance seen before any sample starts at zero.
	b.Pick(ins[2:], "")
	if p := lbPeer(t, b, ins[2]); p.ewma != 0 || p.known {
		t.Fatalf("first instance starts at %v (known %v), want 0", time.Duration(p.ewma), p.known)
	}
	_, done := b.Pick(ins[:1], "")
	done(10*time.Millisecond, nil)
	_, done = b.Pick(ins[1:2], "")
	done(30*time.Millisecond, nil)
	late := Instance{Service: "svc", ID: "late"}
	all := append(slices.Clone(ins[:2]), late)
	// Pick until late is created (it is a candidate in 2 of 3 draws).
	for range 100 {
		_, done := b.Pick(all, "")
		tb := lbTable(t, b)
		tb.mu.Lock()
		p := tb.peers[peerKey{"svc", "late"}]
		tb.mu.Unlock()
		if p != nil {
			// Before its first sample late's EWMA is the mean of the
			// others' (20ms).
			if p.known {
				t.Fatal("late already known")
			}
			if got := time.Duration(p.ewma); got != 20*time.Millisecond {
				t.Errorf("new instance starts at %v, want the mean 20ms", got)
			}
			done(5*time.Millisecond, nil)
			return
		}
		done(0, nil)
	}
	t.Fatal("late never picked as a candidate")
}

func TestConsistentHashStable(t *testing.T) {
	ins := lbInstances(5)
	b1, b2 := ConsistentHash(), ConsistentHash()
	shuffled := slices.Clone(ins)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	owner := map[string]string{}
	counts := map[string]int{}
	for k := range 1000 {
		key := fmt.Sprintf("user-%d", k)
		in1, _ := b1.Pick(ins, key)
		in2, _ := b2.Pick(shuffled, key)
		again, _ := b1.Pick(ins, key)
		if in1.ID != in2.ID || in1.ID != again.ID {
			t.Fatalf("key %s went to %s, %s (shuffled) and %s (again)", key, in1.ID, in2.ID, again.ID)
		}
		owner[key] = in1.ID
		counts[in1.ID]++
	}
	for _, in := range ins { // equal weights: about 200 keys each
		if n := counts[in.ID]; n < 130 || n > 270 {
			t.Errorf("%s owns %d of 1000 keys, want about 200", in.ID, n)
		}
	}

	// Remove i-3: only its keys move.
	removed := "i-3"
	rest := slices.DeleteFunc(slices.Clone(ins), func(in Instance) bool { return in.ID == removed })
	moved := 0
	for key, was := range owner {
		in, _ := b2.Pick(rest, key)
		switch {
		case was == removed:
			moved++
		case in.ID != was:
			t.Errorf("key %s moved from %s to %s though %s stayed", key, was, in.ID, was)
		}
	}
	if moved < 130 || moved > 270 {
		t.Errorf("%d of 1000 keys moved on removing one of 5 instances, want about 200", moved)
	}

	// Adding it back restores the original mapping.
	for key, was := range owner {
		if in, _ := b1.Pick(ins, key); in.ID != was {
			t.Fatalf("key %s now on %s, was %s", key, in.ID, was)
		}
	}
}

func TestConsistentHashWeighted(t *testing.T) {
	ins := lbInstances(2)
	ins[0].Weight = 100
	ins[1].Weight = 300
	b := ConsistentHash()
	const keys = 20000
	n := 0
	for k := range keys {
		if in, _ := b.Pick(ins, fmt.Sprintf("k%d", k)); in.ID == "i-1" {
			n++
		}
	}
	if got := float64(n) / keys; math.Abs(got-0.75) > 0.03 {
		t.Errorf("weight-300 instance owns %.3f of keys, want 0.75±0.03", got)
	}
}

// TestConsistentHashGolden pins the mapping: other processes, and other
// versions of this package, must send keys to the same instances.
func TestConsistentHashGolden(t *testing.T) {
	ins := lbInstances(5)
	want := map[string]string{
		"alice":    "i-2",
		"bob":      "i-3",
		"carol":    "i-3",
		"user-42":  "i-3",
		"order/17": "i-2",
		"dave":     "i-2",
		"erin":     "i-3",
		"frank":    "i-2",
		"k0":       "i-4",
		"k1":       "i-4",
		"k2":       "i-1",
		"k3":       "i-1",
		"k4":       "i-2",
		"k5":       "i-0",
		"k6":       "i-3",
		"k7":       "i-3",
	}
	b := ConsistentHash()
	for key, id := range want {
		if in, _ := b.Pick(ins, key); in.ID != id {
			t.Errorf("key %q → %s, want %s", key, in.ID, id)
		}
	}
}

func TestFNV(t *testing.T) {
	for _, s := range []string{"", "a", "svc/i-1", "héllo\x00world"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := fnvString(fnvOffset, s), h.Sum64(); got != want {
			t.Errorf("fnvString(%q) = %#x, want %#x", s, got, want)
		}
	}
	if got, want := fnvByte(fnvString(fnvOffset, "ab"), 'c'), fnvString(fnvOffset, "abc"); got != want {
		t.Errorf("fnvByte = %#x, want %#x", got, want)
	}
}

func TestZoneAffinity(t *testing.T) {
	mk := func(id, zone string, st Status) Instance {
		return Instance{Service: "svc", ID: id, Zone: zone, Status: st}
	}
	tests := []struct {
		name string
		zone string
		ins  []Instance
		want []string // the IDs that may be picked; all of them must be
	}{
		{"in zone", "a", []Instance{mk("a1", "a", StatusPassing), mk("b1", "b", StatusPassing), mk("a2", "a", StatusPassing)}, []string{"a1", "a2"}},
		{"fallback", "c", []Instance{mk("a1", "a", StatusPassing), mk("b1", "b", StatusPassing)}, []string{"a1", "b1"}},
		{"prefer passing", "a", []Instance{mk("a1", "a", StatusWarning), mk("a2", "a", StatusPassing), mk("b1", "b", StatusPassing)}, []string{"a2"}},
		{"empty status is passing", "a", []Instance{mk("a1", "a", StatusWarning), mk("a2", "a", ""), mk("a3", "a", StatusPassing)}, []string{"a2", "a3"}},
		{"warning in zone beats passing elsewhere", "a", []Instance{mk("a1", "a", StatusWarning), mk("b1", "b", StatusPassing)}, []string{"a1"}},
		{"all warning", "a", []Instance{mk("a1", "a", StatusWarning), mk("a2", "a", StatusWarning)}, []string{"a1", "a2"}},
		{"fallback prefers passing", "c", []Instance{mk("a1", "a", StatusWarning), mk("b1", "b", StatusPassing)}, []string{"b1"}},
		{"no zone", "", []Instance{mk("a1", "a", StatusPassing), mk("b1", "b", StatusPassing), mk("x", "", StatusWarning)}, []string{"a1", "b1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ZoneAffinity(tt.zone, RoundRobin())
			seen := map[string]int{}
			for range 60 {
				in, done := b.Pick(tt.ins, "")
				done(0, nil)
				seen[in.ID]++
			}
			for id := range seen {
				if !slices.Contains(tt.want, id) {
					t.Errorf("picked %s, want only %v (picks: %v)", id, tt.want, seen)
				}
			}
			for _, id := range tt.want {
				if seen[id] == 0 {
					t.Errorf("never picked %s (picks: %v)", id, seen)
				}
			}
		})
	}
}

func TestZoneAffinityPassesKeyAndDone(t *testing.T) {
	ins := lbInstances(4)
	for i := range ins {
		ins[i].Zone = []string{"a", "b"}[i%2]
	}
	b := ZoneAffinity("b", ConsistentHash())
	for k := range 100 {
		key := fmt.Sprint(k)
		in, _ := b.Pick(ins, key)
		want, _ := ConsistentHash().Pick([]Instance{ins[1], ins[3]}, key)
		if in.ID != want.ID {
			t.Fatalf("key %s → %s, want %s", key, in.ID, want.ID)
		}
	}
	lif := LeastInFlight()
	z := ZoneAffinity("a", lif)
	_, done := z.Pick(ins, "")
	done(0, nil)
	for _, in := range []Instance{ins[0], ins[2]} {
		tb := lbTable(t, lif)
		tb.mu.Lock()
		p := tb.peers[peerKey{in.Service, in.ID}]
		tb.mu.Unlock()
		if p != nil && p.inflight != 0 {
			t.Errorf("%s in flight %d after Done, want 0", in.ID, p.inflight)
		}
	}
}

func TestHealthy(t *testing.T) {
	in := []Instance{
		{ID: "p", Status: StatusPassing},
		{ID: "c1", Status: StatusCritical},
		{ID: "w", Status: StatusWarning},
		{ID: "e"},
		{ID: "c2", Status: StatusCritical},
	}
	got := Healthy(in)
	var ids []string
	for _, i := range got {
		ids = append(ids, i.ID)
	}
	if want := []string{"p", "w", "e"}; !slices.Equal(ids, want) {
		t.Errorf("Healthy = %v, want %v", ids, want)
	}
	got[0].ID = "changed"
	if in[0].ID != "p" {
		t.Error("Healthy's result shares memory with its argument")
	}
	if got := Healthy([]Instance{{Status: StatusCritical}}); got == nil || len(got) != 0 {
		t.Errorf("Healthy(all critical) = %#v, want an empty non-nil slice", got)
	}
	if got := Healthy(nil); len(got) != 0 {
		t.Errorf("Healthy(nil) = %v, want empty", got)
	}
}

func TestPickEmptyPanics(t *testing.T) {
	for _, bb := range lbBalancers {
		t.Run(bb.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Pick(nil) did not panic")
				}
			}()
			bb.new().Pick(nil, "k")
		})
	}
}

func TestSweep(t *testing.T) {
	tests := []struct {
		step time.Duration // time each generation of instances lives
		max  int           // most peers the map may hold
	}{
		// A sweep keeps the peers seen in the last minute, then lets the
		// map double.
		{61 * time.Second, 2 * 10}, // only the live generation is kept
		{10 * time.Second, 2 * 70}, // up to 7 generations are kept
		{time.Second, 2 * 610},     // up to 61
	}
	for _, tt := range tests {
		for _, mk := range []func() Balancer{LeastInFlight, P2C} {
			b := mk()
			tb := lbTable(t, b)
			var now int64
			tb.clock = func() int64 { return now }
			// Rolling replacement: 200 generations of 10 instances each.
			most := 0
			for g := range 200 {
				ins := lbInstances(10)
				for i := range ins {
					ins[i].ID = fmt.Sprintf("g%d-%d", g, i)
				}
				for range 50 {
					_, done := b.Pick(ins, "")
					done(time.Millisecond, nil)
				}
				most = max(most, len(tb.peers))
				now += int64(tt.step)
			}
			if most > tt.max {
				t.Errorf("%T, %v per generation: %d peers kept for 10 live instances, want ≤ %d", b, tt.step, most, tt.max)
			}

			// The live instances survive sweeps with their state, even
			// after a long pause.
			keep := lbInstances(10)
			for i := range keep {
				_, done := b.Pick(keep[i:i+1], "")
				done(time.Millisecond, nil)
			}
			before := lbPeer(t, b, keep[0])
			now += int64(time.Hour)
			all := slices.Clone(keep)
			for i := range 50 {
				all = append(all, Instance{Service: "svc", ID: fmt.Sprintf("x-%d", i)})
			}
			for range 500 {
				_, done := b.Pick(all, "")
				done(time.Millisecond, nil)
			}
			if after := lbPeer(t, b, keep[0]); after != before {
				t.Errorf("%T: a live instance lost its state in a sweep", b)
			}
			for _, in := range all {
				lbPeer(t, b, in) // fails if a live instance has no peer
			}
			if n := len(tb.peers); n > max(tt.max, 2*len(all)) {
				t.Errorf("%T: %d peers for %d live instances after the pause", b, n, len(all))
			}
		}
	}
}

// TestSweepSharedStable checks that one Balancer serving several stable
// lists keeps every peer once all have been seen.
func TestSweepSharedStable(t *testing.T) {
	for _, mk := range []func() Balancer{LeastInFlight, P2C} {
		b := mk()
		tb := lbTable(t, b)
		var lists [][]Instance
		for s := range 5 {
			ins := lbInstances(10)
			for i := range ins {
				ins[i].Service = fmt.Sprintf("svc%d", s)
			}
			lists = append(lists, ins)
		}
		for range 100 { // warm up: every peer is created
			for _, ins := range lists {
				for i := range ins {
					_, done := b.Pick(ins[i:i+1], "")
					done(time.Millisecond, nil)
				}
			}
		}
		tb.mu.Lock()
		before := maps.Clone(tb.peers)
		tb.mu.Unlock()
		if len(before) != 50 {
			t.Fatalf("%T: %d peers for 5 lists of 10", b, len(before))
		}
		for i := range 1000 {
			_, done := b.Pick(lists[i%5], "")
			done(time.Millisecond, nil)
		}
		tb.mu.Lock()
		if !maps.Equal(before, tb.peers) {
			t.Errorf("%T: peers changed though the lists did not", b)
		}
		tb.mu.Unlock()
	}
}

func TestConcurrent(t *testing.T) {
	const goroutines, picks = 8, 10000
	ins := lbInstances(10)
	for i := range ins {
		ins[i].Zone = []string{"z1", "z2"}[i%2]
		ins[i].Weight = 50 * (i + 1)
	}
	ids := map[string]bool{}
	for _, in := range ins {
		ids[in.ID] = true
	}
	for _, bb := range lbBalancers {
		t.Run(bb.name, func(t *testing.T) {
			b := bb.new()
			var wg sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				wg.Go(func() {
					for i := range picks {
						list := ins
						if i%7 == 0 {
							list = ins[:5] // a subset now and then
						}
						in, done := b.Pick(list, fmt.Sprint(g, i%100))
						if !ids[in.ID] {
							errs <- fmt.Errorf("picked unknown instance %q", in.ID)
							return
						}
						var err error
						if i%13 == 0 {
							err = errors.New("fail")
						}
						done(time.Duration(i%5)*time.Millisecond, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			next := b
			if z, ok := b.(*zoneAffinity); ok {
				next = z.next
			}
			switch next.(type) {
			case *leastInFlight, *p2c:
				tb := lbTable(t, next)
				tb.mu.Lock()
				defer tb.mu.Unlock()
				for k, p := range tb.peers {
					if p.inflight != 0 {
						t.Errorf("%v: %d in flight after all Done", k, p.inflight)
					}
				}
			}
		})
	}
}

func BenchmarkPick(b *testing.B) {
	ins := lbInstances(10)
	for i := range ins {
		ins[i].Zone = []string{"z1", "z2"}[i%2]
	}
	for _, bb := range lbBalancers {
		b.Run(bb.name, func(b *testing.B) {
			bal := bb.new()
			b.ReportAllocs()
			for b.Loop() {
				_, done := bal.Pick(ins, "user-42")
				done(time.Millisecond, nil)
			}
		})
	}
}
