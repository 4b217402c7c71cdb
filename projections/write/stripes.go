package write

import (
	"context"
	"errors"
	"sync"

	"github.com/votewatch/votewatch/projections/internal/db"
)

// maxStripes bounds the transactions of one Store that write tallies at
// once without waiting for each other (00019). It is above any writer
// count the projector runs; one more waits for a stripe to come free, as
// it would have waited for the rows. A stripe's rows exist only once it was
// used, and the first free stripe from the pool's base is always taken, so
// reads sum as many stripes as transactions ever ran at once (over every
// process), not maxStripes.
const maxStripes = 32

// stripePool leases tally stripes: no two transactions holding a lease
// share a stripe, so they never wait on each other's tally rows. Another
// process has its own pool, counting from a base of its own, so its
// writers take other stripes unless the bases meet; sharing one is
// correct, only slower.
type stripePool struct {
	free chan struct{}
	base int
	mu   sync.Mutex
	busy [maxStripes]bool
}

func newStripePool(base int) *stripePool {
	p := &stripePool{free: make(chan struct{}, maxStripes), base: base % maxStripes}
	for range maxStripes {
		p.free <- struct{}{}
	}
	return p
}

// lease returns the first free stripe from the pool's base (wrapping
// around), waiting for one if all are taken. A Store without a pool (a
// replay's, whose folds write a fresh schema alone) writes stripe 0.
func (p *stripePool) lease(ctx context.Context) (int16, error) {
	if p == nil {
		return 0, nil
	}
	select {
	case <-p.free:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range maxStripes {
		if i := (p.base + k) % maxStripes; !p.busy[i] {
			p.busy[i] = true
			return int16(i), nil
		}
	}
	// free counts the stripes not busy, so this is never reached.
	p.free <- struct{}{}
	return 0, errors.New("no free stripe")
}

func (p *stripePool) release(stripe int16) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.busy[stripe] = false
	p.mu.Unlock()
	p.free <- struct{}{}
}

// striped is a transaction's queries with the stripe its tally writes go
// to.
type striped struct {
	*db.Queries
	stripe int16
}
