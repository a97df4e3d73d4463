package auth

import (
	"cmp"
	"container/list"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// The ThrottleConfig defaults: OWASP's suggestion of a handful of
// failures per user in a quarter of an hour, and ten times that per
// address, where several people may share one (an office, a NAT).
const (
	ThrottleUserFailuresDefault   = 5
	ThrottleUserWindowDefault     = 15 * time.Minute
	ThrottleAddrFailuresDefault   = 50
	ThrottleAddrWindowDefault     = 15 * time.Minute
	ThrottleMaxKeysDefault        = 100_000
	ThrottleAttemptTimeoutDefault = time.Minute
)

// MaxThrottleFailures is the largest UserFailures and AddrFailures. A key
// keeps at most its limit in timestamps (failures and attempts in flight
// together), so this bounds a key's memory (8 KiB) and the work of
// checking it.
const MaxThrottleFailures = 1000

// maxThrottleSpan bounds time offsets (clamped to it either side of the
// Throttle's start) and configured durations, about 73 years, so that sums
// and differences of them never overflow.
const maxThrottleSpan = 1 << 61

// maxThrottleKeyLen is the longest user name or address a Throttle keeps
// as given; it keeps a longer one's SHA-256 instead, so that a spray of
// long names costs a bounded amount of memory.
const maxThrottleKeyLen = 64

// ThrottleConfig configures a Throttle. Its zero value allows 5 failures
// per user and 50 per address in any 15 minutes, tracking up to 100,000
// users and addresses.
type ThrottleConfig struct {
	// UserFailures is how many failed logins a user may have within
	// UserWindow; while it has that many, Check refuses the user. Defaults
	// to ThrottleUserFailuresDefault; at most MaxThrottleFailures.
	UserFailures int
	// UserWindow is the sliding window UserFailures counts in. Defaults to
	// ThrottleUserWindowDefault.
	UserWindow time.Duration
	// AddrFailures is how many failed logins a client address may have
	// within AddrWindow. Defaults to ThrottleAddrFailuresDefault; at most
	// MaxThrottleFailures.
	AddrFailures int
	// AddrWindow is the sliding window AddrFailures counts in. Defaults to
	// ThrottleAddrWindowDefault.
	AddrWindow time.Duration
	// MaxKeys bounds how many users and addresses, together, the Throttle
	// tracks; beyond it, the one touched least recently is forgotten.
	// Defaults to ThrottleMaxKeysDefault; it must be at least 2, so that
	// one login's user and address both fit.
	MaxKeys int
	// AttemptTimeout is how long an attempt that Check let through counts
	// against its user and address while the caller has reported neither
	// Failed nor Succeeded for it. Defaults to
	// ThrottleAttemptTimeoutDefault.
	AttemptTimeout time.Duration
}

// Throttle limits failed logins per user and per client address, in
// memory, on one node. A login asks Check before it verifies anything and
// reports the outcome with Failed or Succeeded:
//
//	if wait, ok := t.Check(user, addr, now); !ok {
//		// refuse without verifying; wait suits a Retry-After header
//	}
//	if verified { t.Succeeded(user, addr, now) } else { t.Failed(user, addr, now) }
//
// # Sliding windows
//
// Each user and each address has a sliding window log: the times of its
// recent failures. Check refuses while a key has its limit of failures
// within the window, until the oldest of them leaves it, so there are
// never more than the limit in any window (a fixed window allows twice
// that across its boundary, and a token bucket its burst plus a refill).
// Only failures count: Succeeded clears the user's failures, and a
// successful login costs the address nothing. A key keeps at most its
// limit in timestamps, so tracking one is cheap and bounded.
//
// # Attempts in flight
//
// An attempt that Check lets through counts against its user and address
// until the caller reports it, as if it had failed: otherwise a burst of
// concurrent logins would all pass Check before the first one failed, and
// a slow password hash would let through as many guesses as requests
// could be queued. So every Check that returns ok must be followed by one
// Failed or Succeeded; an attempt never reported stops counting after
// AttemptTimeout.
//
// # Unknown users
//
// The answers depend only on the names and the calls made, never on
// whether a user exists: a caller reports Failed for an unknown user as
// for a wrong password, so that the throttle's answers (and their timing)
// are the same for both, and a refused login's error does not say which
// of the user and the address was over its limit. A per-user limit lets
// anyone lock a user out for a window by failing as that user; the
// address limit cannot prevent that, which is why locks end on their own
// rather than waiting for an administrator.
//
// # Keys
//
// User names are compared exactly: a caller whose user lookup ignores
// case must pass the name in the form it looks up, or an attacker gets a
// budget per spelling. An address is the client's IP without a port; one
// with a port, such as net/http's Request.RemoteAddr, is accepted too and
// the port dropped, so that connections do not get a budget each. IPv4
// addresses are tracked one by one, and IPv4-mapped IPv6 addresses as
// IPv4. IPv6 addresses are tracked by their /64: a network hands a host
// (or a home) at least a /64 and lets it pick any address in it, so
// counting single addresses would give one attacker 2^64 budgets and let
// it flush the Throttle's memory alone. A string that is not an IP is
// used as given. An empty user or address is not tracked. Names and
// addresses longer than 64 bytes are kept as their SHA-256.
//
// # Memory
//
// The Throttle tracks at most MaxKeys users and addresses. As calls come
// in, it forgets keys whose failures have all left their window, from the
// least recently touched on (there is no background goroutine), and
// beyond MaxKeys it forgets the keys touched least recently whatever
// their state, so memory stays bounded under a spray of ever new names. Forgetting a locked user unlocks it, so an attacker who makes
// MaxKeys new keys within a window gets a fresh budget for the users it
// pushed out. Each address adds at most AddrFailures+1 keys per window
// (itself and the users it tries), so at the defaults that takes about
// 2,000 addresses (IPv6 /64s) and 100,000 logins every 15 minutes, far
// noisier than the attack it enables; a deployment that fears it can
// raise MaxKeys. A key takes about 250 bytes with a few failures, up to
// about 750 for an address at its default limit of 50.
//
// Times are offsets from the time NewThrottle ran, so with times from
// time.Now the windows follow the monotonic clock, and stepping the wall
// clock neither ends nor extends a lock; times more than 73 years either
// side of it count as 73 years.
//
// The state is per process: an attacker who spreads attempts over n nodes
// gets n budgets, unless logins for a user go to one node or the state is
// shared.
//
// A Throttle is safe for concurrent use.
type Throttle struct {
	user, addr     throttleLimit
	attemptTimeout time.Duration
	maxKeys        int
	base           time.Time // offsets are from here

	mu    sync.Mutex
	keys  map[throttleKeyID]*list.Element // of *throttleKey, in order
	order *list.List                      // least recently touched first
}

// throttleLimit is the limit on one kind of key.
type throttleLimit struct {
	failures int
	window   time.Duration
}

// throttleKeyID identifies a tracked user or address.
type throttleKeyID struct {
	kind throttleKind
	ip   netip.Addr // an IPv4 address or the first address of an IPv6 /64
	s    string     // a user name or other address, or the SHA-256 of a long one
}

type throttleKind uint8

const (
	throttleUser throttleKind = iota
	throttleUserHash
	throttleIP
	throttleAddr
	throttleAddrHash
)

// throttleKey is what a Throttle tracks for one user or address. Times are
// offsets from Throttle.base.
type throttleKey struct {
	id      throttleKeyID
	fails   []time.Duration // ascending; within the window; at most the limit
	pending []time.Duration // attempts Check let through, not yet reported; ascending
	expires time.Duration   // when fails and pending will both have emptied
}

// NewThrottle returns a Throttle for cfg; a nil cfg means all defaults. It
// returns an error for negative values, limits above MaxThrottleFailures,
// durations above 73 years and a MaxKeys of 1. cfg is not modified.
func NewThrottle(cfg *ThrottleConfig) (*Throttle, error) {
	var c ThrottleConfig
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.UserFailures < 0 || c.UserFailures > MaxThrottleFailures:
		return nil, fmt.Errorf("auth: new throttle: user failures %d outside 1..%d", c.UserFailures, MaxThrottleFailures)
	case c.AddrFailures < 0 || c.AddrFailures > MaxThrottleFailures:
		return nil, fmt.Errorf("auth: new throttle: address failures %d outside 1..%d", c.AddrFailures, MaxThrottleFailures)
	case !validSpan(c.UserWindow) || !validSpan(c.AddrWindow) || !validSpan(c.AttemptTimeout):
		return nil, fmt.Errorf("auth: new throttle: user window %v, address window %v or attempt timeout %v outside 0..%v",
			c.UserWindow, c.AddrWindow, c.AttemptTimeout, time.Duration(maxThrottleSpan))
	case c.MaxKeys < 0 || c.MaxKeys == 1:
		return nil, fmt.Errorf("auth: new throttle: max keys %d below 2", c.MaxKeys)
	}
	return &Throttle{
		user:           throttleLimit{cmp.Or(c.UserFailures, ThrottleUserFailuresDefault), cmp.Or(c.UserWindow, ThrottleUserWindowDefault)},
		addr:           throttleLimit{cmp.Or(c.AddrFailures, ThrottleAddrFailuresDefault), cmp.Or(c.AddrWindow, ThrottleAddrWindowDefault)},
		attemptTimeout: cmp.Or(c.AttemptTimeout, ThrottleAttemptTimeoutDefault),
		maxKeys:        cmp.Or(c.MaxKeys, ThrottleMaxKeysDefault),
		base:           time.Now(),
		keys:           make(map[throttleKeyID]*list.Element),
		order:          list.New(),
	}, nil
}

// Check reports whether a login for user from addr may go ahead at now:
// ok is false while the user or the address has its limit of failures in
// its window (attempts in flight included), and retryAfter is then how
// long until both are under their limits, if no more attempts come
// (attempts in flight that fail can make it longer). When ok is true, the
// attempt counts against both until the caller reports it with Failed or
// Succeeded.
func (t *Throttle) Check(user, addr string, now time.Time) (retryAfter time.Duration, ok bool) {
	ids := keyIDs(user, addr)
	at := t.offset(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetExpired(at)
	for _, id := range ids {
		retryAfter = max(retryAfter, t.wait(id, at))
	}
	if retryAfter > 0 {
		return retryAfter, false
	}
	for _, id := range ids {
		k := t.touch(id, at)
		k.pending = insertSorted(k.pending, at)
		t.setExpiry(k)
	}
	t.evict()
	return 0, true
}

// keyIDs returns the keys an attempt by user from addr counts against:
// the user's and the address's, each when there is one.
func keyIDs(user, addr string) []throttleKeyID {
	ids := make([]throttleKeyID, 0, 2)
	if id, ok := userKeyID(user); ok {
		ids = append(ids, id)
	}
	if id, ok := addrKeyID(addr); ok {
		ids = append(ids, id)
	}
	return ids
}

// Failed reports a failed login for user from addr at now: a wrong
// password, a wrong second factor, or an unknown user. It ends one
// attempt in flight for each, if there is one, and counts a failure.
// Report only attempts that Check let through: counting refused ones
// would keep a user under attack locked for ever.
func (t *Throttle) Failed(user, addr string, now time.Time) {
	ids := keyIDs(user, addr)
	at := t.offset(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetExpired(at)
	for _, id := range ids {
		t.fail(id, at)
	}
	t.evict()
}

// Succeeded reports a successful login for user from addr at now. It
// clears the user's failures and attempts in flight, and ends one attempt
// in flight for the address, whose failures still count.
func (t *Throttle) Succeeded(user, addr string, now time.Time) {
	uid, hasUser := userKeyID(user)
	aid, hasAddr := addrKeyID(addr)
	at := t.offset(now)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.forgetExpired(at)
	if e, ok := t.keys[uid]; ok && hasUser {
		t.forget(e)
	}
	e, ok := t.keys[aid]
	if !ok || !hasAddr {
		return
	}
	k := e.Value.(*throttleKey)
	t.prune(k, at)
	if len(k.pending) > 0 {
		k.pending = slices.Delete(k.pending, 0, 1)
	}
	t.setExpiry(k)
	if k.expires <= at {
		t.forget(e)
	}
}

// wait returns how long until the key id is under its limit, or 0 if it
// is now. It forgets the key if nothing of it is left in its window.
func (t *Throttle) wait(id throttleKeyID, at time.Duration) time.Duration {
	e, ok := t.keys[id]
	if !ok {
		return 0
	}
	k := e.Value.(*throttleKey)
	t.prune(k, at)
	lim := t.limit(id)
	n := len(k.fails) + len(k.pending)
	if n == 0 {
		t.forget(e)
		return 0
	}
	if n < lim.failures {
		return 0
	}
	// Each failure leaves the window, and each attempt in flight times
	// out, in turn; the count is under the limit after n-limit+1 of them.
	i, j := 0, 0
	var next time.Duration
	for range n - lim.failures + 1 {
		if j == len(k.pending) || i < len(k.fails) && k.fails[i]+lim.window <= k.pending[j]+t.attemptTimeout {
			next = k.fails[i] + lim.window
			i++
		} else {
			next = k.pending[j] + t.attemptTimeout
			j++
		}
	}
	return next - at
}

// fail ends the oldest attempt in flight for the key id, if any, and
// counts a failure at at.
func (t *Throttle) fail(id throttleKeyID, at time.Duration) {
	k := t.touch(id, at)
	if len(k.pending) > 0 {
		k.pending = slices.Delete(k.pending, 0, 1)
	}
	k.fails = insertSorted(k.fails, at)
	if lim := t.limit(id); len(k.fails) > lim.failures {
		// Only the newest limit failures decide when the key is under
		// the limit again.
		k.fails = slices.Delete(k.fails, 0, len(k.fails)-lim.failures)
	}
	t.setExpiry(k)
}

// touch returns the key id, pruned to at and marked as the most recently
// touched, adding it if it is not tracked.
func (t *Throttle) touch(id throttleKeyID, at time.Duration) *throttleKey {
	if e, ok := t.keys[id]; ok {
		t.order.MoveToBack(e)
		k := e.Value.(*throttleKey)
		t.prune(k, at)
		return k
	}
	id.s = strings.Clone(id.s) // do not keep the caller's string, which may be part of a request
	k := &throttleKey{id: id}
	t.keys[id] = t.order.PushBack(k)
	return k
}

// prune drops the failures that have left the key's window at at, and the
// attempts in flight that have timed out.
func (t *Throttle) prune(k *throttleKey, at time.Duration) {
	win := t.limit(k.id).window
	if i := countBefore(k.fails, func(f time.Duration) bool { return f+win <= at }); i > 0 {
		k.fails = slices.Delete(k.fails, 0, i)
	}
	if i := countBefore(k.pending, func(p time.Duration) bool { return p+t.attemptTimeout <= at }); i > 0 {
		k.pending = slices.Delete(k.pending, 0, i)
	}
}

// countBefore returns how many elements at the start of s satisfy expired.
func countBefore(s []time.Duration, expired func(time.Duration) bool) int {
	i := 0
	for i < len(s) && expired(s[i]) {
		i++
	}
	return i
}

// setExpiry sets when k will have emptied.
func (t *Throttle) setExpiry(k *throttleKey) {
	k.expires = -maxThrottleSpan
	if n := len(k.fails); n > 0 {
		k.expires = k.fails[n-1] + t.limit(k.id).window
	}
	if n := len(k.pending); n > 0 {
		k.expires = max(k.expires, k.pending[n-1]+t.attemptTimeout)
	}
}

// forgetExpired forgets keys that have emptied, from the least recently
// touched on, stopping at the first that has not.
func (t *Throttle) forgetExpired(at time.Duration) {
	for e := t.order.Front(); e != nil && e.Value.(*throttleKey).expires <= at; e = t.order.Front() {
		t.forget(e)
	}
}

// evict forgets the least recently touched keys while there are more than
// maxKeys. The keys an operation touched are the most recent, so they stay.
func (t *Throttle) evict() {
	for len(t.keys) > t.maxKeys {
		t.forget(t.order.Front())
	}
}

func (t *Throttle) forget(e *list.Element) {
	delete(t.keys, e.Value.(*throttleKey).id)
	t.order.Remove(e)
}

// offset returns now as an offset from t.base, clamped to maxThrottleSpan
// either side.
func (t *Throttle) offset(now time.Time) time.Duration {
	return min(max(now.Sub(t.base), -maxThrottleSpan), maxThrottleSpan)
}

func validSpan(d time.Duration) bool { return 0 <= d && d <= maxThrottleSpan }

func (t *Throttle) limit(id throttleKeyID) throttleLimit {
	if id.kind == throttleUser || id.kind == throttleUserHash {
		return t.user
	}
	return t.addr
}

// insertSorted inserts d into the ascending s. Times mostly come in order,
// so the search starts from the end.
func insertSorted(s []time.Duration, d time.Duration) []time.Duration {
	i := len(s)
	for i > 0 && s[i-1] > d {
		i--
	}
	return slices.Insert(s, i, d)
}

// userKeyID returns the key for a user name; ok is false for "".
func userKeyID(user string) (id throttleKeyID, ok bool) {
	switch {
	case user == "":
		return id, false
	case len(user) > maxThrottleKeyLen:
		return throttleKeyID{kind: throttleUserHash, s: hashKey(user)}, true
	}
	return throttleKeyID{kind: throttleUser, s: user}, true
}

// addrKeyID returns the key for a client address; ok is false for "".
func addrKeyID(addr string) (id throttleKeyID, ok bool) {
	if addr == "" {
		return id, false
	}
	if ip, ok := clientIP(addr); ok {
		return throttleKeyID{kind: throttleIP, ip: ip}, true
	}
	if len(addr) > maxThrottleKeyLen {
		return throttleKeyID{kind: throttleAddrHash, s: hashKey(addr)}, true
	}
	return throttleKeyID{kind: throttleAddr, s: addr}, true
}

func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return string(sum[:])
}

// clientIP returns the IP in addr (with or without a port) that a Throttle
// tracks: an IPv4 address as itself, an IPv4-mapped IPv6 address as the
// IPv4 address, and any other IPv6 address as the first address of its
// /64, without a zone. ok is false if addr is not an IP.
func clientIP(addr string) (ip netip.Addr, ok bool) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64) // cannot fail: ip is IPv6 without a zone
		ip = p.Addr()
	}
	return ip, true
}
