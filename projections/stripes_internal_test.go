package projections

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
	p := newStripePool()
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
