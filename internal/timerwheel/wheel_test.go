package timerwheel

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// firing is one call of fire: the entry's value and when, relative to the
// bundle's start.
type firing struct {
	v  int
	at time.Duration
}

type bundle struct {
	w     *Wheel[int]
	start time.Time

	mu     sync.Mutex
	fired  []firing
	onFire func(v int) // optional; called from fire after recording
}

// setup returns a running wheel whose fire records each call. Inside a
// synctest bubble time is virtual, so recorded times are exact.
func setup(t *testing.T, cfg *Config) *bundle {
	t.Helper()
	b := &bundle{start: time.Now()}
	w, err := New(cfg, func(v int) {
		b.mu.Lock()
		b.fired = append(b.fired, firing{v, time.Since(b.start)})
		f := b.onFire
		b.mu.Unlock()
		if f != nil {
			f(v)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	b.w = w
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return b
}

func (b *bundle) firings() []firing {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.fired)
}

// check verifies the wheel's lists: links agree, every entry sits in the
// slot its deadline hashes to and is due after the current tick, and the
// count matches.
func (w *Wheel[T]) check(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for i, head := range w.slots {
		var prev *Entry[T]
		for e := head; e != nil; e = e.next {
			if e.prev != prev {
				t.Fatalf("slot %d: broken prev link", i)
			}
			if e.at == 0 || int(e.at%uint64(len(w.slots))) != i || e.at <= w.cur {
				t.Fatalf("slot %d: entry due at tick %d (current %d)", i, e.at, w.cur)
			}
			prev = e
			n++
		}
	}
	if n != w.n {
		t.Fatalf("lists hold %d entries, n = %d", n, w.n)
	}
}

func TestNew(t *testing.T) {
	fire := func(int) {}
	tests := []struct {
		name      string
		cfg       *Config
		fire      func(int)
		wantErr   bool
		wantTick  time.Duration
		wantSlots int
	}{
		{"nil config", nil, fire, false, TickDefault, SlotsDefault},
		{"zero config", &Config{}, fire, false, TickDefault, SlotsDefault},
		{"custom", &Config{Tick: time.Millisecond, Slots: 7}, fire, false, time.Millisecond, 7},
		{"negative tick", &Config{Tick: -1}, fire, true, 0, 0},
		{"negative slots", &Config{Slots: -1}, fire, true, 0, 0},
		{"nil fire", nil, nil, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := New(tt.cfg, tt.fire)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, want error %v", tt.cfg, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if w.tick != tt.wantTick || len(w.slots) != tt.wantSlots {
				t.Errorf("New(%+v) = tick %v, %d slots; want %v, %d", tt.cfg, w.tick, len(w.slots), tt.wantTick, tt.wantSlots)
			}
		})
	}
}

func TestScheduleFiresOnTick(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		offset time.Duration // when Schedule is called, after New
		d      time.Duration
		want   time.Duration // when fire runs, after New
	}{
		{"one tick", Config{Tick: time.Second, Slots: 8}, 0, time.Second, time.Second},
		{"sub-tick delay rounds up", Config{Tick: time.Second, Slots: 8}, 0, time.Nanosecond, time.Second},
		{"mid-tick start rounds up", Config{Tick: time.Second, Slots: 8}, 300 * time.Millisecond, time.Second, 2 * time.Second},
		{"exact boundary", Config{Tick: time.Second, Slots: 8}, 300 * time.Millisecond, 700 * time.Millisecond, time.Second},
		{"zero delay fires next tick", Config{Tick: time.Second, Slots: 8}, 0, 0, time.Second},
		{"negative delay fires next tick", Config{Tick: time.Second, Slots: 8}, 2500 * time.Millisecond, -time.Hour, 3 * time.Second},
		{"beyond one revolution", Config{Tick: time.Second, Slots: 8}, 0, 20 * time.Second, 20 * time.Second},
		{"several revolutions, mid-tick", Config{Tick: time.Second, Slots: 8}, 700 * time.Millisecond, 33300 * time.Millisecond, 34 * time.Second},
		{"fine tick", Config{Tick: 100 * time.Millisecond, Slots: 4}, 0, 250 * time.Millisecond, 300 * time.Millisecond},
		{"default config", Config{}, 10 * time.Second, 90 * time.Second, 100 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := setup(t, &tt.cfg)
				e := &Entry[int]{Value: 1}
				time.Sleep(tt.offset)
				b.w.Schedule(e, tt.d)
				if n := b.w.Len(); n != 1 {
					t.Fatalf("Len() = %d after Schedule, want 1", n)
				}
				// Wait well past the deadline, including a revolution.
				time.Sleep(tt.want - tt.offset + time.Duration(len(b.w.slots)+2)*b.w.tick)
				synctest.Wait()
				got := b.firings()
				if want := []firing{{1, tt.want}}; !slices.Equal(got, want) {
					t.Fatalf("Schedule(%v) at %v: fired %v, want %v", tt.d, tt.offset, got, want)
				}
				if early := got[0].at - tt.offset; early < tt.d {
					t.Errorf("fired %v after Schedule, before the %v delay", early, tt.d)
				}
				if n := b.w.Len(); n != 0 {
					t.Errorf("Len() = %d after firing, want 0", n)
				}
			})
		})
	}
}

func TestRescheduleReplaces(t *testing.T) {
	tests := []struct {
		name        string
		first, then time.Duration // the second Schedule is 1s after the first
		want        time.Duration
	}{
		{"earlier", 5 * time.Second, 2 * time.Second, 3 * time.Second},
		{"later", 2 * time.Second, 10 * time.Second, 11 * time.Second},
		{"same slot next revolution", 2 * time.Second, 9 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				b := setup(t, &Config{Tick: time.Second, Slots: 8})
				e := &Entry[int]{Value: 7}
				b.w.Schedule(e, tt.first)
				time.Sleep(time.Second)
				b.w.Schedule(e, tt.then)
				if n := b.w.Len(); n != 1 {
					t.Fatalf("Len() = %d after rescheduling, want 1", n)
				}
				time.Sleep(30 * time.Second)
				synctest.Wait()
				if got, want := b.firings(), []firing{{7, tt.want}}; !slices.Equal(got, want) {
					t.Errorf("fired %v, want %v", got, want)
				}
				b.w.check(t)
			})
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, &Config{Tick: time.Second, Slots: 8})
		var never, a, c Entry[int]
		a.Value, c.Value = 1, 2
		if b.w.Cancel(&never) {
			t.Error("Cancel(never scheduled) = true, want false")
		}
		b.w.Schedule(&a, 3*time.Second)
		b.w.Schedule(&c, 3*time.Second) // same slot as a
		if !b.w.Cancel(&a) {
			t.Error("Cancel(scheduled) = false, want true")
		}
		if b.w.Cancel(&a) {
			t.Error("second Cancel = true, want false")
		}
		b.w.check(t)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, want := b.firings(), []firing{{2, 3 * time.Second}}; !slices.Equal(got, want) {
			t.Errorf("fired %v, want %v", got, want)
		}
		if b.w.Cancel(&c) {
			t.Error("Cancel(already fired) = true, want false")
		}
		if n := b.w.Len(); n != 0 {
			t.Errorf("Len() = %d, want 0", n)
		}
	})
}

// TestFireReschedules re-arms an entry from its own fire, like a periodic
// ping, and cancels it from fire on the last round.
func TestFireReschedules(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, &Config{Tick: time.Second, Slots: 4})
		e := &Entry[int]{Value: 1}
		other := &Entry[int]{Value: 2}
		rounds := 0
		b.onFire = func(v int) {
			if v != 1 {
				return
			}
			rounds++
			if rounds < 6 {
				b.w.Schedule(e, 3*time.Second)
			} else {
				b.w.Cancel(other)
			}
		}
		b.w.Schedule(e, 3*time.Second)
		b.w.Schedule(other, time.Hour)
		time.Sleep(time.Minute)
		synctest.Wait()
		var want []firing
		for i := range 6 {
			want = append(want, firing{1, time.Duration(3*(i+1)) * time.Second})
		}
		if got := b.firings(); !slices.Equal(got, want) {
			t.Errorf("fired %v, want %v", got, want)
		}
		if n := b.w.Len(); n != 0 {
			t.Errorf("Len() = %d, want 0", n)
		}
	})
}

func TestManyEntries(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const tick = 100 * time.Millisecond
		b := setup(t, &Config{Tick: tick, Slots: 64})
		r := rand.New(rand.NewPCG(1, 2))
		entries := make([]Entry[int], 10000)
		want := make(map[int]time.Duration, len(entries))
		for i := range entries {
			d := time.Duration(r.IntN(30000)) * time.Millisecond
			entries[i].Value = i
			b.w.Schedule(&entries[i], d)
			want[i] = max((d+tick-1)/tick*tick, tick)
		}
		b.w.check(t)
		time.Sleep(40 * time.Second)
		synctest.Wait()
		got := b.firings()
		if len(got) != len(entries) {
			t.Fatalf("%d fires, want %d", len(got), len(entries))
		}
		for _, f := range got {
			w, ok := want[f.v]
			if !ok {
				t.Fatalf("entry %d fired twice", f.v)
			}
			if f.at != w {
				t.Fatalf("entry %d fired at %v, want %v", f.v, f.at, w)
			}
			delete(want, f.v)
		}
		if !slices.IsSortedFunc(got, func(a, b firing) int { return int(a.at - b.at) }) {
			t.Error("fires are not in deadline order")
		}
	})
}

// TestAdvanceCatchesUp drives advance directly across many revolutions, as
// happens when Run starts late or is starved.
func TestAdvanceCatchesUp(t *testing.T) {
	t.Parallel()
	var fired []int
	w, err := New(&Config{Tick: time.Second, Slots: 8}, func(v int) { fired = append(fired, v) })
	if err != nil {
		t.Fatal(err)
	}
	// Schedule relative to the epoch so the test does not depend on the clock.
	es := []*Entry[int]{{Value: 5}, {Value: 50}, {Value: 5000}}
	w.mu.Lock()
	for _, e := range es {
		e.at = uint64(e.Value)
		e.next = w.slots[e.at%8]
		if e.next != nil {
			e.next.prev = e
		}
		w.slots[e.at%8] = e
		w.n++
	}
	w.mu.Unlock()

	w.advance(w.epoch.Add(100 * time.Second))
	slices.Sort(fired)
	if want := []int{5, 50}; !slices.Equal(fired, want) {
		t.Errorf("after 100s fired %v, want %v", fired, want)
	}
	w.check(t)
	w.advance(w.epoch.Add(4999*time.Second + 999*time.Millisecond))
	if len(fired) != 2 {
		t.Errorf("fired %v before its tick", fired)
	}
	w.advance(w.epoch.Add(5000 * time.Second))
	if want := []int{5, 50, 5000}; !slices.Equal(fired, want) {
		t.Errorf("after 5000s fired %v, want %v", fired, want)
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len() = %d, want 0", n)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		b := setup(t, nil)
		synctest.Wait()
		if err := b.w.Run(t.Context()); err == nil {
			t.Error("second concurrent Run returned nil, want an error")
		}
	})
}

// TestConcurrent runs Schedule and Cancel from several goroutines while the
// wheel ticks in real time, for the race detector and the list invariants.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	type owner struct {
		id    int
		timer Entry[*owner]
	}
	var fires atomic.Int64
	var w *Wheel[*owner]
	w, err := New(&Config{Tick: time.Millisecond, Slots: 16}, func(o *owner) {
		if fires.Add(1)%3 == 0 {
			w.Schedule(&o.timer, time.Duration(o.id%5)*time.Millisecond) // re-arm from fire
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var run sync.WaitGroup
	run.Go(func() { w.Run(ctx) })

	const workers, perWorker, ops = 4, 64, 5000
	owners := make([]owner, workers*perWorker)
	for i := range owners {
		owners[i].id = i
		owners[i].timer.Value = &owners[i]
	}
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			own := owners[g*perWorker : (g+1)*perWorker]
			// Keep going until the wheel has fired a good number of times
			// during the churn, not just a fixed number of operations.
			for i := 0; i < ops || fires.Load() < 2000; i++ {
				o := &own[r.IntN(len(own))]
				if r.IntN(3) == 0 {
					w.Cancel(&o.timer)
				} else {
					w.Schedule(&o.timer, time.Duration(r.IntN(4000))*time.Microsecond)
				}
			}
		})
	}
	wg.Wait()
	cancel()
	run.Wait()
	w.check(t)
	for i := range owners {
		w.Cancel(&owners[i].timer)
	}
	if n := w.Len(); n != 0 {
		t.Errorf("Len() = %d after cancelling everything, want 0", n)
	}
	t.Logf("%d fires", fires.Load())
}

func TestScheduleDoesNotAllocate(t *testing.T) {
	w, err := New(nil, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	var e Entry[int]
	allocs := testing.AllocsPerRun(100, func() {
		w.Schedule(&e, time.Minute)
		w.Schedule(&e, time.Hour)
		w.Cancel(&e)
	})
	if allocs != 0 {
		t.Errorf("Schedule and Cancel allocate %v times, want 0", allocs)
	}
}
