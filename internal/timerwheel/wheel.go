// Package timerwheel schedules many coarse deadlines, such as per-connection
// idle and handshake timeouts, on one hashed timing wheel driven by a single
// goroutine, instead of a runtime timer or goroutine per deadline.
//
// A [Wheel] is a ring of slots, each a doubly linked list of [Entry] values
// due in that slot. An Entry is embedded in the struct that owns it and
// carries its own links, so [Wheel.Schedule] and [Wheel.Cancel] are O(1)
// and allocate nothing. Deadlines are rounded up to whole ticks; a deadline
// more than one revolution (Slots × Tick) away stays in its slot and is
// skipped until the revolution in which it is due.
//
// [Wheel.Run] advances the wheel once per tick and calls the fire function
// for every due entry on its own goroutine, outside the wheel's lock, so fire
// may call Schedule and Cancel (for example to re-arm a periodic ping).
package timerwheel

import (
	"cmp"
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for [Config].
const (
	// TickDefault suits idle timeouts of seconds to minutes.
	TickDefault = time.Second
	// SlotsDefault gives a revolution of about 8.5 minutes at TickDefault.
	SlotsDefault = 512
)

// Config configures a [Wheel]. The zero value is ready to use.
type Config struct {
	// Tick is the wheel's resolution: a deadline fires on the first tick at
	// or after it, so never early and at most about one Tick late.
	// Defaults to TickDefault.
	Tick time.Duration

	// Slots is the number of slots in one revolution. Deadlines further away
	// than Slots × Tick work, but are scanned once per revolution until due.
	// Defaults to SlotsDefault.
	Slots int
}

// Entry is one schedulable deadline. Embed it in the struct it belongs to
// and set Value (typically a pointer back to that struct) before the first
// Schedule; the zero Entry is not scheduled. An Entry belongs to at most one
// Wheel and must not be copied while scheduled.
type Entry[T any] struct {
	// Value is passed to the wheel's fire function. Do not change it while
	// the Entry is scheduled.
	Value T

	// Guarded by the Wheel's mu.
	prev, next *Entry[T]
	at         uint64 // tick at which the entry is due; 0 when not scheduled
}

// Wheel is a hashed timing wheel. Its methods are safe for concurrent use.
type Wheel[T any] struct {
	tick    time.Duration
	fire    func(T)
	epoch   time.Time // tick k ends at epoch + k*tick
	running atomic.Bool

	mu    sync.Mutex
	slots []*Entry[T] // list heads; slot of an entry is at % len(slots)
	cur   uint64      // last tick processed
	n     int         // scheduled entries

	due []T // values collected by advance; used only by the advancing goroutine
}

// New returns a Wheel that calls fire with the Value of each entry when it
// becomes due. A nil cfg means all defaults. Time starts at New: ticks fall
// on whole multiples of Tick after it.
func New[T any](cfg *Config, fire func(T)) (*Wheel[T], error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Tick < 0 || c.Slots < 0 {
		return nil, errors.New("timerwheel: negative Tick or Slots")
	}
	if fire == nil {
		return nil, errors.New("timerwheel: fire function is required")
	}
	return &Wheel[T]{
		tick:  cmp.Or(c.Tick, TickDefault),
		fire:  fire,
		epoch: time.Now(),
		slots: make([]*Entry[T], cmp.Or(c.Slots, SlotsDefault)),
	}, nil
}

// Schedule arranges for e to fire once, d from now rounded up to the tick,
// replacing any earlier schedule of e. A d of zero or less fires on the
// next tick. Schedule does not wait for a fire of e already in progress.
func (w *Wheel[T]) Schedule(e *Entry[T], d time.Duration) {
	now := time.Now()
	w.mu.Lock()
	at := max(w.tickAfter(now, d), w.cur+1)
	if e.at != 0 {
		w.unlink(e)
	} else {
		w.n++
	}
	e.at = at
	head := &w.slots[at%uint64(len(w.slots))]
	e.next = *head
	if e.next != nil {
		e.next.prev = e
	}
	*head = e
	w.mu.Unlock()
}

// Cancel stops e from firing and reports whether it did so: false means e
// was not scheduled, because it was never scheduled, was cancelled, or has
// already been handed to fire (which may still be running or about to run).
func (w *Wheel[T]) Cancel(e *Entry[T]) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.at == 0 {
		return false
	}
	w.unlink(e)
	w.n--
	return true
}

// Len returns the number of scheduled entries.
func (w *Wheel[T]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Run advances the wheel every tick until ctx ends, calling fire for due
// entries on the calling goroutine, then returns nil. Entries still
// scheduled stay scheduled. Only one Run may be active at a time; if Run
// falls behind, the next tick catches up on every missed tick.
func (w *Wheel[T]) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("timerwheel: Run is already running")
	}
	defer w.running.Store(false)
	t := time.NewTimer(w.untilNextTick(time.Now()))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.advance(time.Now())
			t.Reset(w.untilNextTick(time.Now()))
		}
	}
}

// advance processes every tick up to now and fires what became due.
func (w *Wheel[T]) advance(now time.Time) {
	target := w.tickAt(now)
	w.mu.Lock()
	if target <= w.cur {
		w.mu.Unlock()
		return
	}
	if target-w.cur >= uint64(len(w.slots)) {
		// A whole revolution or more: visit each slot once.
		for i := range w.slots {
			w.collect(i, target)
		}
	} else {
		for t := w.cur + 1; t <= target; t++ {
			w.collect(int(t%uint64(len(w.slots))), t)
		}
	}
	w.cur = target
	w.mu.Unlock()

	for _, v := range w.due {
		w.fire(v)
	}
	clear(w.due)
	if cap(w.due) > 1024 {
		w.due = nil // drop the backing array of a burst
	} else {
		w.due = w.due[:0]
	}
}

// collect moves the entries of slot that are due by tick into w.due.
// w.mu must be held.
func (w *Wheel[T]) collect(slot int, tick uint64) {
	for e := w.slots[slot]; e != nil; {
		next := e.next
		if e.at <= tick {
			w.unlink(e)
			w.n--
			w.due = append(w.due, e.Value)
		}
		e = next
	}
}

// unlink removes scheduled e from its slot and marks it unscheduled.
// w.mu must be held.
func (w *Wheel[T]) unlink(e *Entry[T]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		w.slots[e.at%uint64(len(w.slots))] = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next, e.at = nil, nil, 0
}

// tickAt returns the number of whole ticks between the epoch and now.
func (w *Wheel[T]) tickAt(now time.Time) uint64 {
	return uint64(max(now.Sub(w.epoch), 0) / w.tick)
}

// tickAfter returns the first tick that ends at or after now+d.
func (w *Wheel[T]) tickAfter(now time.Time, d time.Duration) uint64 {
	elapsed := max(now.Sub(w.epoch), 0)
	d = min(max(d, 0), math.MaxInt64-elapsed) // saturate instead of overflowing
	q, r := (elapsed+d)/w.tick, (elapsed+d)%w.tick
	if r != 0 {
		q++
	}
	return uint64(q)
}

// untilNextTick returns how long after now the next tick ends.
func (w *Wheel[T]) untilNextTick(now time.Time) time.Duration {
	next := time.Duration(w.tickAt(now)+1) * w.tick
	return next - max(now.Sub(w.epoch), 0)
}
