package write

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrBatcherClosed is returned by Submit once the batcher has stopped.
var ErrBatcherClosed = errors.New("batcher closed")

// ApplyFunc applies a batch in one transaction. It returns one error per
// item (nil when the item is done) or a single error for the whole batch,
// in which case nothing was committed.
type ApplyFunc[T any] func(ctx context.Context, items []T) ([]error, error)

// BatcherConfig tunes a Batcher.
type BatcherConfig struct {
	// Name identifies the batcher in logs.
	Name string
	// MaxBatch caps how many items one transaction applies (default 1000).
	MaxBatch int
	// Writers is how many batches may be in flight at once (default 2):
	// while one commits, the next is gathered and sent.
	Writers int
	// ApplyTimeout bounds one batch, including its retries (default 30s).
	ApplyTimeout time.Duration
	// Linger is how long a writer waits, after the first item of a batch,
	// for more to arrive (0: none). With one message in flight per
	// partition, messages come in bursts as a commit acknowledges many at
	// once; a millisecond or two of patience turns those bursts into one
	// batch instead of many tiny ones.
	Linger time.Duration
	// Observe, if set, is told of every batch applied: its size, how long
	// it took (retries included) and whether it failed.
	Observe func(batcher string, size int, took time.Duration, err error)
}

func (c *BatcherConfig) setDefaults() {
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.Writers == 0 {
		c.Writers = 2
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = 30 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c BatcherConfig) Validate() error {
	if c.MaxBatch < 1 || c.Writers < 1 || c.ApplyTimeout <= 0 || c.Linger < 0 {
		return fmt.Errorf("batcher %q: MaxBatch, Writers and ApplyTimeout must be positive, Linger not negative", c.Name)
	}
	return nil
}

type request[T any] struct {
	item T
	done chan error
}

// Batcher is a group commit: concurrent Submit calls are gathered into one
// transaction, and each caller returns only after the transaction holding
// its item has committed. A batch is whatever arrived while the previous
// one was being written, plus what arrives within Linger, so batches grow
// with load.
type Batcher[T any] struct {
	cfg    BatcherConfig
	apply  ApplyFunc[T]
	log    *slog.Logger
	reqs   chan request[T]
	closed chan struct{}
	once   sync.Once
}

// NewBatcher returns a Batcher applying batches with apply. Call Run.
func NewBatcher[T any](cfg BatcherConfig, apply ApplyFunc[T], log *slog.Logger) (*Batcher[T], error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if apply == nil || log == nil {
		return nil, fmt.Errorf("batcher %q: nil apply func or logger", cfg.Name)
	}
	return &Batcher[T]{
		cfg: cfg, apply: apply, log: log.With("batcher", cfg.Name),
		reqs: make(chan request[T]), closed: make(chan struct{}),
	}, nil
}

// Submit hands item to the next batch and waits until that batch has
// committed, returning the item's own error. Safe for concurrent use. If ctx
// ends first the item may or may not be applied; applying is idempotent, so
// the caller simply does not acknowledge it.
func (b *Batcher[T]) Submit(ctx context.Context, item T) error {
	r := request[T]{item: item, done: make(chan error, 1)}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return ErrBatcherClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run writes batches until ctx ends; a batch already taken is finished, not
// abandoned, so a shutdown commits what is in flight. Submit fails with
// ErrBatcherClosed afterwards.
func (b *Batcher[T]) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range b.cfg.Writers {
		wg.Go(func() { b.write(ctx) })
	}
	wg.Wait()
	b.once.Do(func() { close(b.closed) })
}

func (b *Batcher[T]) write(ctx context.Context) {
	batch := make([]request[T], 0, b.cfg.MaxBatch)
	items := make([]T, 0, b.cfg.MaxBatch)
	for {
		batch, items = batch[:0], items[:0]
		select {
		case r := <-b.reqs:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
		var linger <-chan time.Time
		var timer *time.Timer
		if b.cfg.Linger > 0 {
			timer = time.NewTimer(b.cfg.Linger)
			linger = timer.C
		}
	gather:
		for len(batch) < b.cfg.MaxBatch {
			if linger == nil {
				select {
				case r := <-b.reqs:
					batch = append(batch, r)
				default:
					break gather
				}
				continue
			}
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			case <-linger:
				break gather
			}
		}
		if timer != nil {
			timer.Stop()
		}
		for _, r := range batch {
			items = append(items, r.item)
		}
		// The batch is finished even if ctx ends meanwhile: its callers
		// are waiting, and a commit in flight should land.
		applyCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.ApplyTimeout)
		started := time.Now()
		errs, err := b.apply(applyCtx, items)
		cancel()
		if b.cfg.Observe != nil {
			b.cfg.Observe(b.cfg.Name, len(items), time.Since(started), err)
		}
		if err != nil {
			b.log.Warn("batch failed; its messages will be redelivered", "size", len(batch), "err", err)
		}
		for i, r := range batch {
			switch {
			case err != nil:
				r.done <- err
			case i < len(errs):
				r.done <- errs[i]
			default:
				r.done <- nil
			}
		}
	}
}
