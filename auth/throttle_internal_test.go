package auth

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var throttleStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func TestClientIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string // "" when addr is not an IP
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:8080", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:8080", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:DB8:1:2::", "2001:db8:1:2::"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
		{"[fe80::1%eth0]:22", "fe80::"},
		{"::1", "::"},
		{"::", "::"},
		{"0.0.0.0", "0.0.0.0"},
		{"", ""},
		{"localhost", ""},
		{"localhost:80", ""},
		{"192.0.2.1:", ""},
		{"192.0.2.1:99999", ""},
		{"192.0.2.256", ""},
		{"2001:db8::/64", ""},
		{" 192.0.2.1", ""},
		{"[192.0.2.1]:80", ""},
	}
	for _, tt := range tests {
		ip, ok := clientIP(tt.addr)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("clientIP(%q) = %q, %v; want %q", tt.addr, got, ok, tt.want)
		}
	}
}

// checkInvariants checks th's bookkeeping: the map and the list hold the
// same keys, within maxKeys, each with sorted times within its limit.
func checkInvariants(t *testing.T, th *Throttle) {
	t.Helper()
	th.mu.Lock()
	defer th.mu.Unlock()
	if len(th.keys) != th.order.Len() || len(th.keys) > th.maxKeys {
		t.Fatalf("%d keys in the map, %d in the list, max %d", len(th.keys), th.order.Len(), th.maxKeys)
	}
	for e := th.order.Front(); e != nil; e = e.Next() {
		k := e.Value.(*throttleKey)
		if th.keys[k.id] != e {
			t.Fatalf("key %+v in the list is not in the map", k.id)
		}
		lim := th.limit(k.id)
		if len(k.fails)+len(k.pending) > lim.failures || !slices.IsSorted(k.fails) || !slices.IsSorted(k.pending) {
			t.Fatalf("key %+v: failures %v, pending %v, limit %d", k.id, k.fails, k.pending, lim.failures)
		}
		if len(k.id.s) > maxThrottleKeyLen {
			t.Fatalf("key %+v keeps %d bytes", k.id, len(k.id.s))
		}
	}
}

// TestThrottleSpray sprays failed logins for 200,000 new users from as
// many addresses: the Throttle never tracks more than MaxKeys, and keeps
// the newest.
func TestThrottleSpray(t *testing.T) {
	t.Parallel()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	th, err := NewThrottle(&ThrottleConfig{MaxKeys: n / 2})
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for i := range n {
		now := throttleStart.Add(time.Duration(i) * time.Millisecond) // all within one window
		user := fmt.Sprintf("user%d", i)
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		if _, ok := th.Check(user, addr, now); !ok {
			t.Fatalf("Check(%q, %q) refused a first attempt", user, addr)
		}
		th.Failed(user, addr, now)
		most = max(most, len(th.keys))
	}
	checkInvariants(t, th)
	if most > n/2 {
		t.Errorf("tracked up to %d keys, MaxKeys %d", most, n/2)
	}
	last := fmt.Sprintf("user%d", n-1)
	if _, ok := th.keys[throttleKeyID{kind: throttleUser, s: last}]; !ok {
		t.Errorf("the last user sprayed, %q, is forgotten", last)
	}
	if _, ok := th.keys[throttleKeyID{kind: throttleUser, s: "user0"}]; ok {
		t.Errorf("the first user sprayed is remembered")
	}
}

// TestThrottleLongKeys checks that long names are kept as hashes, so that
// a spray of them costs bounded memory.
func TestThrottleLongKeys(t *testing.T) {
	t.Parallel()
	th, err := NewThrottle(nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 1<<20)
	th.Failed(long+"user", long+"addr", throttleStart)
	checkInvariants(t, th)
	if len(th.keys) != 2 {
		t.Errorf("tracking %d keys, want 2", len(th.keys))
	}
}

// TestThrottleForgetsExpired checks that keys are forgotten once their
// failures have left the window and their attempts timed out, as calls
// come in, oldest first.
func TestThrottleForgetsExpired(t *testing.T) {
	t.Parallel()
	th, err := NewThrottle(&ThrottleConfig{UserWindow: 10 * time.Minute, AddrWindow: 20 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	th.Failed("alice", "192.0.2.1", throttleStart)
	th.Check("bob", "", throttleStart.Add(time.Minute)) // never reported
	th.Failed("carol", "", throttleStart.Add(5*time.Minute))
	tests := []struct {
		at   time.Duration
		want int // keys left, the caller's own excluded
	}{
		{0, 4},
		{2 * time.Minute, 4},    // bob's attempt has timed out, but alice, touched earlier, has not
		{10 * time.Minute, 3},   // alice forgotten; the address, touched next, is still in
		{15 * time.Minute, 3},   // so bob and carol stay behind it
		{20*time.Minute - 1, 3}, // until the address's failure
		{20 * time.Minute, 0},   // leaves its window
		{1000 * time.Hour, 0},
		{-1000 * time.Hour, 0}, // the clock going back is no harm
		{20*time.Minute + 1, 0},
	}
	for _, tt := range tests {
		th.Succeeded("", "", throttleStart.Add(tt.at)) // touches nothing, but forgets
		if got := len(th.keys); got != tt.want {
			t.Errorf("at %v: %d keys, want %d", tt.at, got, tt.want)
		}
		checkInvariants(t, th)
	}
	// Beyond 73 years, times count as 73 years: a lock there lasts, and
	// one there does not keep a lock here for ever.
	far := throttleStart.AddDate(10_000, 0, 0)
	for range ThrottleUserFailuresDefault {
		th.Failed("alice", "", far)
		th.Failed("bob", "", throttleStart.AddDate(-10_000, 0, 0))
	}
	if _, ok := th.Check("alice", "", far.AddDate(1, 0, 0)); ok {
		t.Errorf("Check 10,001 years on = true, want false")
	}
	if _, ok := th.Check("bob", "", throttleStart); !ok {
		t.Errorf("Check now after a failure 10,000 years ago = false, want true")
	}
	checkInvariants(t, th)
}

// TestThrottleStress runs random logins on many goroutines over few keys,
// with a small MaxKeys, then checks the bookkeeping; with -race it also
// checks the locking.
func TestThrottleStress(t *testing.T) {
	t.Parallel()
	th, err := NewThrottle(&ThrottleConfig{UserFailures: 3, AddrFailures: 10, MaxKeys: 16, AttemptTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 2000 {
				now := throttleStart.Add(time.Duration(i)*10*time.Millisecond + time.Duration(r.IntN(1000))*time.Microsecond)
				user := fmt.Sprintf("user%d", r.IntN(20))
				addr := fmt.Sprintf("2001:db8:%x::%x", r.IntN(12), r.IntN(100))
				switch r.IntN(4) {
				case 0:
					th.Failed(user, addr, now)
				case 1:
					th.Succeeded(user, addr, now)
				default:
					if _, ok := th.Check(user, addr, now); ok && r.IntN(3) > 0 {
						th.Failed(user, addr, now)
					}
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, th)
}

// FuzzThrottleKeys feeds the Throttle arbitrary names and addresses: it
// must not panic, an address must count the same with and without a
// port, and a user's failure must lock that user.
func FuzzThrottleKeys(f *testing.F) {
	for _, s := range []struct{ user, addr string }{
		{"alice", "192.0.2.1"}, {"bob", "[2001:db8::1]:443"}, {"", "::ffff:10.0.0.1"},
		{"carol", "fe80::1%eth0"}, {strings.Repeat("é", 40), "not an ip"}, {"d", ""},
	} {
		f.Add(s.user, s.addr)
	}
	f.Fuzz(func(t *testing.T, user, addr string) {
		th, err := NewThrottle(&ThrottleConfig{UserFailures: 1, AddrFailures: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := th.Check(user, addr, throttleStart); !ok {
			t.Fatalf("Check(%q, %q) refused a first attempt", user, addr)
		}
		th.Failed(user, addr, throttleStart)
		checkInvariants(t, th)
		if _, ok := th.Check(user, "", throttleStart); ok == (user != "") {
			t.Fatalf("after a failure, Check(%q, \"\") = %v", user, ok)
		}
		ip, isIP := clientIP(addr)
		if !isIP {
			return
		}
		if again, ok := clientIP(ip.String()); !ok || again != ip {
			t.Fatalf("clientIP(%q) = %v, but clientIP(%q) = %v, %v", addr, ip, ip.String(), again, ok)
		}
		withPort := netip.AddrPortFrom(ip, 1).String()
		if _, ok := th.Check("", withPort, throttleStart); ok {
			t.Fatalf("after a failure from %q, Check from %q = true", addr, withPort)
		}
	})
}
