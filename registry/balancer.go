package registry

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Done reports how a call to the picked instance went; call it exactly once
// when the call ends, with the call's duration as latency and its error, or
// nil, as err. Balancers that keep no statistics return a no-op Done.
type Done func(latency time.Duration, err error)

// Balancer picks one instance per call. Implementations are safe for
// concurrent use.
type Balancer interface {
	// Pick chooses one of instances, which is never empty and holds only
	// instances fit to serve (the caller has removed critical ones; see
	// Healthy). key is the call's affinity key for consistent hashing, or
	// "". The Balancers of this package panic if instances is empty.
	Pick(instances []Instance, key string) (Instance, Done)
}

// noDone is the Done of balancers that keep no statistics.
func noDone(time.Duration, error) {}

// defaultWeight is the weight of an instance whose Weight is 0.
const defaultWeight = 100

// weight returns in's balancing weight: its Weight, or 100 when unset.
func weight(in *Instance) int {
	if in.Weight <= 0 {
		return defaultWeight
	}
	return in.Weight
}

func mustHave(instances []Instance) {
	if len(instances) == 0 {
		panic("registry: Balancer.Pick with no instances")
	}
}

// RoundRobin returns a Balancer that rotates through instances in order,
// one per Pick. The position is a single counter shared by all calls, so
// use one RoundRobin per instance list: picks for several lists that
// alternate regularly could keep landing on the same instances. Its Done
// is a no-op.
func RoundRobin() Balancer { return new(roundRobin) }

type roundRobin struct{ n atomic.Uint64 }

func (r *roundRobin) Pick(instances []Instance, _ string) (Instance, Done) {
	mustHave(instances)
	i := (r.n.Add(1) - 1) % uint64(len(instances))
	return instances[i], noDone
}

// WeightedRandom returns a Balancer that picks an instance at random with
// probability proportional to its Weight (an unset Weight counts as 100).
// Its Done is a no-op.
func WeightedRandom() Balancer { return weightedRandom{} }

type weightedRandom struct{}

func (weightedRandom) Pick(instances []Instance, _ string) (Instance, Done) {
	mustHave(instances)
	return instances[pickWeighted(instances)], noDone
}

// pickWeighted returns the index of an instance chosen at random in
// proportion to weight.
func pickWeighted(instances []Instance) int {
	total := 0
	for i := range instances {
		total += weight(&instances[i])
	}
	r := rand.IntN(total)
	for i := range instances {
		if r -= weight(&instances[i]); r < 0 {
			return i
		}
	}
	return len(instances) - 1 // unreachable
}

// LeastInFlight returns a Balancer that picks the instance with the fewest
// calls in flight, that is picked by this Balancer and whose Done has not
// been called yet. Ties are broken at random.
func LeastInFlight() Balancer { return &leastInFlight{newTable(false)} }

type leastInFlight struct{ t *table }

func (b *leastInFlight) Pick(instances []Instance, _ string) (Instance, Done) {
	mustHave(instances)
	t := b.t
	now := t.now()
	t.mu.Lock()
	var best *peer
	bi, ties := 0, 0
	for i := range instances {
		p := t.lookup(instances, i, now)
		switch {
		case best == nil || p.inflight < best.inflight:
			best, bi, ties = p, i, 1
		case p.inflight == best.inflight:
			// Reservoir sampling: each of the tied instances wins with
			// probability 1/ties.
			ties++
			if rand.IntN(ties) == 0 {
				best, bi = p, i
			}
		}
	}
	best.inflight++
	t.mu.Unlock()
	return instances[bi], best.done
}

// P2C returns a Balancer using the power of two choices: it draws two
// distinct instances at random and picks the one with the lower score,
// where an instance's score is its latency EWMA times its calls in flight
// plus one.
//
// The EWMA is time-weighted with a decay time of 10s, like Finagle's peak
// EWMA: a sample slower than the average replaces it at once, a faster one
// is mixed in with weight 1-exp(-Δt/10s), Δt being the time since the
// previous sample, and the EWMA of an instance that gets no samples decays
// towards zero, so that it is tried again. A call that ends with an error counts as its latency plus a 1s
// penalty. An instance without samples starts at the mean of the instances
// that have some, or at zero; one at zero with calls in flight scores
// worse than any instance with samples.
func P2C() Balancer { return &p2c{newTable(true)} }

type p2c struct{ t *table }

func (b *p2c) Pick(instances []Instance, _ string) (Instance, Done) {
	mustHave(instances)
	t := b.t
	now := t.now()
	n := len(instances)
	if n == 1 {
		t.mu.Lock()
		p := t.lookup(instances, 0, now)
		p.inflight++
		t.mu.Unlock()
		return instances[0], p.done
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	t.mu.Lock()
	a := t.lookup(instances, i, now)
	c := t.lookup(instances, j, now)
	if c.score(now) < a.score(now) {
		a, i = c, j
	}
	a.inflight++
	t.mu.Unlock()
	return instances[i], a.done
}

const (
	// decayTime is the P2C EWMA's decay time constant (tau), in nanoseconds.
	decayTime = float64(10 * time.Second)
	// errorPenalty is added to the latency of a call that failed.
	errorPenalty = time.Second
	// busyUnknown is the score of an instance with no latency estimate and
	// calls in flight, before adding the number of those calls.
	busyUnknown = float64(1 << 50)
	// idleTTL is how long a peer must go unseen before a sweep may drop it.
	idleTTL = int64(time.Minute)
)

// peerKey identifies an instance in a table: Service and ID, a struct key
// rather than Service+"\x00"+ID so that lookups do not build a string.
type peerKey struct{ service, id string }

// peer is what a table knows of one instance. All fields but done are
// guarded by the table's mutex.
type peer struct {
	inflight int64
	ewma     float64 // latency estimate in nanoseconds (P2C)
	stamp    int64   // table time of the last ewma update
	known    bool    // ewma comes from at least one sample
	seen     int64   // table time of the last Pick that saw the instance
	done     Done    // the Done for calls to this peer, made once
}

// score is the P2C cost of sending one more call to p at table time now.
func (p *peer) score(now int64) float64 {
	cost := p.ewma
	if cost == 0 {
		if p.inflight == 0 {
			return 0
		}
		return busyUnknown + float64(p.inflight)
	}
	if td := now - p.stamp; td > 0 {
		cost *= math.Exp(-float64(td) / decayTime)
	}
	return cost * float64(p.inflight+1)
}

// table holds per-instance state for LeastInFlight and P2C. So that
// instances that went away do not pile up, adding a peer to a map that has
// doubled since the last sweep (and holds at least twice the instance
// count) sweeps it, dropping the peers unseen for a minute that are not in
// the current instance list. The map thus stays under about twice the
// number of instances seen in the last minute, and a stable instance list
// never causes a sweep.
type table struct {
	mu      sync.Mutex
	peers   map[peerKey]*peer
	limit   int  // sweep when adding a peer to a map this big
	latency bool // keep the latency EWMA (P2C)

	epoch time.Time
	clock func() int64 // for tests; nil means time since epoch
}

func newTable(latency bool) *table {
	return &table{peers: make(map[peerKey]*peer), latency: latency, epoch: time.Now()}
}

// now returns the table's monotonic time in nanoseconds.
func (t *table) now() int64 {
	if t.clock != nil {
		return t.clock()
	}
	return int64(time.Since(t.epoch))
}

// lookup returns the peer of instances[i], adding it if new, and marks it
// seen at now. t.mu must be held.
func (t *table) lookup(instances []Instance, i int, now int64) *peer {
	in := &instances[i]
	k := peerKey{in.Service, in.ID}
	p := t.peers[k]
	if p == nil {
		p = t.add(k, instances, now)
	}
	p.seen = now
	return p
}

// add adds a peer for k, one of instances, first sweeping the map if it
// has grown too big. t.mu must be held.
func (t *table) add(k peerKey, instances []Instance, now int64) *peer {
	if len(t.peers) >= t.limit {
		t.sweep(instances, now)
	}
	p := &peer{stamp: now}
	p.done = func(latency time.Duration, err error) { t.finish(p, latency, err) }
	if t.latency {
		p.ewma = t.mean(instances)
	}
	t.peers[k] = p
	return p
}

// sweep drops the peers unseen since now-idleTTL that are not in
// instances. t.mu must be held.
func (t *table) sweep(instances []Instance, now int64) {
	for i := range instances {
		in := &instances[i]
		if p := t.peers[peerKey{in.Service, in.ID}]; p != nil {
			p.seen = now
		}
	}
	for k, p := range t.peers {
		if now-p.seen > idleTTL {
			delete(t.peers, k)
		}
	}
	t.limit = max(2*len(t.peers), 2*len(instances), 16)
}

// mean returns the mean latency EWMA of the known peers among instances,
// or 0. t.mu must be held.
func (t *table) mean(instances []Instance) float64 {
	sum, n := 0.0, 0
	for i := range instances {
		in := &instances[i]
		if p := t.peers[peerKey{in.Service, in.ID}]; p != nil && p.known {
			sum += p.ewma
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// finish records the end of a call to p.
func (t *table) finish(p *peer, latency time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.inflight > 0 {
		p.inflight--
	}
	if !t.latency {
		return
	}
	if err != nil {
		latency += errorPenalty
	}
	t.observe(p, float64(max(latency, 0)), t.now())
}

// observe folds a latency sample, in nanoseconds, taken at table time now
// into p's EWMA. t.mu must be held.
func (t *table) observe(p *peer, sample float64, now int64) {
	switch {
	case !p.known:
		// The first sample replaces the starting guess.
		p.ewma = sample
		p.known = true
	case sample > p.ewma:
		p.ewma = sample // peak: slower samples count at once
	default:
		w := 1.0
		if td := now - p.stamp; td > 0 {
			w = math.Exp(-float64(td) / decayTime)
		}
		p.ewma = p.ewma*w + sample*(1-w)
	}
	p.stamp = max(p.stamp, now)
}

// ConsistentHash returns a Balancer that picks by weighted rendezvous
// (highest random weight) hashing of key: each instance scores
// -Weight/ln(u), where u in (0, 1) comes from a 64-bit FNV-1a hash of key
// and the instance's Service+"/"+ID, and the highest score wins. A key
// therefore goes to the same instance as long as that instance is in the
// list, in any order and in any process, and removing an instance moves
// only the keys that were on it. Each instance gets a share of the keys
// proportional to its Weight. With key "", ConsistentHash picks like
// WeightedRandom. Its Done is a no-op.
func ConsistentHash() Balancer { return consistentHash{} }

type consistentHash struct{}

func (consistentHash) Pick(instances []Instance, key string) (Instance, Done) {
	mustHave(instances)
	if key == "" {
		return instances[pickWeighted(instances)], noDone
	}
	return instances[rendezvous(instances, key)], noDone
}

// rendezvous returns the index of the instance with the highest weighted
// rendezvous score for key.
func rendezvous(instances []Instance, key string) int {
	kh := fnvByte(fnvString(fnvOffset, key), 0)
	best, bestScore, bestHash := 0, math.Inf(-1), uint64(0)
	for i := range instances {
		in := &instances[i]
		h := fnvString(fnvByte(fnvString(kh, in.Service), '/'), in.ID)
		h = mix64(h)
		// u is in (0, 1): 52 random bits plus one half, over 2^52.
		u := (float64(h>>12) + 0.5) / (1 << 52)
		s := -float64(weight(in)) / math.Log(u)
		if s > bestScore || s == bestScore && h > bestHash {
			best, bestScore, bestHash = i, s, h
		}
	}
	return best
}

// FNV-1a, 64 bits, as in hash/fnv but over strings without allocating.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	h *= fnvPrime
	return h
}

// mix64 is MurmurHash3's 64-bit finalizer. FNV-1a leaves the high bits of
// hashes of strings that differ only at the end (IDs such as "web-1" and
// "web-2") poorly mixed, which would skew the weighted shares.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// ZoneAffinity returns a Balancer that keeps calls in zone: if any
// instance has Zone equal to zone, next picks among those only; otherwise
// among all. Within the chosen set, instances whose Status is passing (or
// empty) are preferred to warning ones: if at least one is passing, next
// sees only the passing ones. An empty zone disables the zone preference
// but not the passing one. If next is nil, ZoneAffinity uses RoundRobin.
func ZoneAffinity(zone string, next Balancer) Balancer {
	if next == nil {
		next = RoundRobin()
	}
	return &zoneAffinity{zone: zone, next: next}
}

type zoneAffinity struct {
	zone string
	next Balancer
}

func (z *zoneAffinity) Pick(instances []Instance, key string) (Instance, Done) {
	mustHave(instances)
	if z.zone != "" {
		instances = filter(instances, func(in *Instance) bool { return in.Zone == z.zone })
	}
	instances = filter(instances, passing)
	return z.next.Pick(instances, key)
}

func passing(in *Instance) bool { return in.Status == "" || in.Status == StatusPassing }

// filter returns the instances for which keep reports true, or all of
// instances if there are none such. It allocates only if it drops some
// but not all.
func filter(instances []Instance, keep func(*Instance) bool) []Instance {
	n := 0
	for i := range instances {
		if keep(&instances[i]) {
			n++
		}
	}
	if n == 0 || n == len(instances) {
		return instances
	}
	out := make([]Instance, 0, n)
	for i := range instances {
		if keep(&instances[i]) {
			out = append(out, instances[i])
		}
	}
	return out
}

// Healthy returns, in a new slice, the instances whose Status is not
// critical. An empty Status counts as passing.
func Healthy(instances []Instance) []Instance {
	out := make([]Instance, 0, len(instances))
	for i := range instances {
		if instances[i].Status != StatusCritical {
			out = append(out, instances[i])
		}
	}
	return out
}
