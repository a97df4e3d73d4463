package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHasherConcurrencyLimit fills every slot with a Hash held by the test
// hook, then checks that one more operation waits for a slot and gives up
// when its ctx ends, without running. synctest.Wait tells when every
// goroutine is blocked, so the test needs no sleeps.
func TestHasherConcurrencyLimit(t *testing.T) {
	t.Parallel()
	const password = "hunter2"
	// ops are the operations that must wait for a slot; each returns the
	// error it got, DummyVerify none.
	ops := []struct {
		name string
		run  func(ctx context.Context, h *Hasher, encoded string) error
	}{
		{"Hash", func(ctx context.Context, h *Hasher, _ string) error {
			_, err := h.Hash(ctx, password)
			return err
		}},
		{"Verify", func(ctx context.Context, h *Hasher, encoded string) error {
			_, _, err := h.Verify(ctx, encoded, password)
			return err
		}},
		{"Verify bcrypt", func(ctx context.Context, h *Hasher, _ string) error {
			_, _, err := h.Verify(ctx, "$2y$05$/OK.fbVrR/bpIqNJ5ianF.Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq", "\xa3")
			return err
		}},
		{"DummyVerify", func(ctx context.Context, h *Hasher, _ string) error {
			h.DummyVerify(ctx, password)
			return nil
		}},
	}
	for _, concurrency := range []int{1, 2} {
		for _, op := range ops {
			t.Run(fmt.Sprintf("%s/concurrency=%d", op.name, concurrency), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					testConcurrencyLimit(t, concurrency, op.run)
				})
			})
		}
	}
}

func testConcurrencyLimit(t *testing.T, concurrency int, op func(context.Context, *Hasher, string) error) {
	h, err := NewHasher(&HasherConfig{Params: Argon2Params{Memory: 64, Time: 1}, Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := h.Hash(t.Context(), "hunter2")
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		running int // operations inside a slot
		release = make(chan struct{})
	)
	h.testHookSlot = func() {
		mu.Lock()
		running++
		mu.Unlock()
		<-release
	}
	slotsTaken := func() int {
		mu.Lock()
		defer mu.Unlock()
		return running
	}

	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			if _, err := h.Hash(t.Context(), "holder"); err != nil {
				t.Errorf("holding Hash: %v", err)
			}
		})
	}
	synctest.Wait()
	if n := slotsTaken(); n != concurrency {
		t.Fatalf("%d operations hold a slot, want %d", n, concurrency)
	}

	// Cancelled while waiting.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- op(ctx, h, encoded) }()
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("operation returned %v while every slot was taken, want it to wait", err)
	default:
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("operation cancelled while waiting returned %v, want context.Canceled", err)
	}

	// Deadline while waiting: the bubble's clock shows it waited exactly
	// until the deadline.
	start := time.Now()
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := op(ctx, h, encoded); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("operation past its deadline returned %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited != time.Second {
		t.Errorf("operation waited %v, want 1s", waited)
	}
	if n := slotsTaken(); n != concurrency {
		t.Errorf("%d operations ran, want only the %d holders", n, concurrency)
	}

	// Once the holders finish, the operation runs.
	close(release)
	wg.Wait()
	if err := op(t.Context(), h, encoded); err != nil {
		t.Errorf("operation with free slots: %v", err)
	}
	if n := slotsTaken(); n != concurrency+1 {
		t.Errorf("%d operations ran, want %d", n, concurrency+1)
	}
	if len(h.slots) != 0 {
		t.Errorf("%d slots still taken after every operation returned", len(h.slots))
	}
}

// TestDummyParses checks that DummyVerify's string is one Verify accepts,
// with h's parameters, at the edges of the bounds: otherwise DummyVerify
// would return at once and time would tell unknown users apart.
func TestDummyParses(t *testing.T) {
	t.Parallel()
	for _, p := range []Argon2Params{
		{},
		{Memory: 8, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16},
		{Memory: MaxArgon2Memory, Time: MaxArgon2Time, Threads: MaxArgon2Threads, SaltLen: MaxArgon2SaltLen, KeyLen: MaxArgon2KeyLen},
	} {
		h, err := NewHasher(&HasherConfig{Params: p})
		if err != nil {
			t.Fatal(err)
		}
		phc, err := ParsePHC(h.dummy)
		if err != nil || phc.Params != h.params {
			t.Errorf("ParsePHC(dummy for %+v) = %+v, %v; want params %+v", p, phc, err, h.params)
		}
	}
}
