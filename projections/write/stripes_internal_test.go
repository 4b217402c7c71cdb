package write

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A transaction takes the lowest free stripe, so one writer at a time keeps
// every count in stripe 0, and no two leases held at once share a stripe;
// past maxStripes a lease waits for one to come free.
func TestStripeLeasesAreDistinctAndLowestFirst(t *testing.T) {
	t.Parallel()
	p := newStripePool(0)
	ctx := context.Background()
	lease := func() int16 {
		t.Helper()
		s, err := p.lease(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for range 3 {
		s := lease()
		if s != 0 {
			t.Fatalf("an idle pool leased stripe %d, want 0", s)
		}
		p.release(s)
	}
	held := map[int16]bool{}
	for range maxStripes {
		s := lease()
		if held[s] {
			t.Fatalf("stripe %d leased twice at once", s)
		}
		held[s] = true
	}
	p.release(5)
	if s := lease(); s != 5 {
		t.Fatalf("leased %d, want the one free stripe, 5", s)
	}
	full, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := p.lease(full); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a lease from a full pool returned %v, want it to wait until its context ends", err)
	}
	got := make(chan int16)
	go func() {
		s, _ := p.lease(ctx)
		got <- s
	}()
	p.release(17)
	select {
	case s := <-got:
		if s != 17 {
			t.Fatalf("the waiting lease got %d, want 17", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting lease was not handed the stripe released")
	}
}

// Two projector processes each have a pool. Counting from a base of their
// own, their first writers take different stripes, so the processes do not
// wait on each other's rows either (unless their bases happen to meet).
func TestPoolsWithDifferentBasesLeaseDifferentStripes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := newStripePool(0), newStripePool(7)
	sa, err := a.lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := b.lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sa != 0 || sb != 7 {
		t.Fatalf("first leases %d and %d, want each pool's base: 0 and 7", sa, sb)
	}
	// Past the top, a pool wraps around to the stripes below its base.
	top := newStripePool(maxStripes - 1)
	for _, want := range []int16{maxStripes - 1, 0, 1} {
		if s, err := top.lease(ctx); err != nil || s != want {
			t.Fatalf("leased %d (%v), want %d", s, err, want)
		}
	}
}
