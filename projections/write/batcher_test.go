package write_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/votewatch/votewatch/projections/write"
)

func TestBatcherReportsFailureToEverySubmitter(t *testing.T) {
	t.Parallel()
	boom := errors.New("commit failed")
	errOdd := errors.New("odd item")
	var calls sync.Mutex
	applied := 0
	b, err := write.NewBatcher(write.BatcherConfig{Name: "test", MaxBatch: 10, Writers: 1},
		func(_ context.Context, items []int) ([]error, error) {
			calls.Lock()
			defer calls.Unlock()
			applied++
			if applied == 1 {
				return nil, boom
			}
			errs := make([]error, len(items))
			for i, it := range items {
				if it%2 == 1 {
					errs[i] = fmt.Errorf("item %d: %w", it, errOdd)
				}
			}
			return errs, nil
		}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	go func() { b.Run(ctx); close(stopped) }()

	if err := b.Submit(ctx, 2); !errors.Is(err, boom) {
		t.Fatalf("first batch: err = %v, want the commit failure (the message must not be acked)", err)
	}
	if err := b.Submit(ctx, 2); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if err := b.Submit(ctx, 3); !errors.Is(err, errOdd) {
		t.Fatalf("item error: %v, want the item's own error", err)
	}
	cancel()
	<-stopped
	if err := b.Submit(context.Background(), 4); !errors.Is(err, write.ErrBatcherClosed) {
		t.Fatalf("after close: %v, want ErrBatcherClosed", err)
	}
}
