package app_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"github.com/votewatch/votewatch/internal/app"
)

func TestCloseReleasesInReverseOrderOnce(t *testing.T) {
	a := app.New(slog.New(slog.DiscardHandler))
	var closed []int
	for i := range 3 {
		a.OnClose(func() { closed = append(closed, i) })
	}
	a.Close()
	a.Close()
	if want := []int{2, 1, 0}; !slices.Equal(closed, want) {
		t.Errorf("closed %v, want %v", closed, want)
	}
}

// One service failing stops the others, and Run returns only once every
// one of them has returned: what Close releases is no longer in use.
func TestRunReturnsOnlyAfterEveryServiceEnded(t *testing.T) {
	a := app.New(slog.New(slog.DiscardHandler))
	boom := errors.New("boom")
	ended := make(chan struct{})
	release := make(chan struct{})
	a.Go(func(ctx context.Context) error {
		<-ctx.Done()
		<-release // still busy after its context ended
		close(ended)
		return nil
	})
	a.Go(func(context.Context) error { return boom })
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while a service was still running", err)
	default:
	}
	close(release)
	if err := <-done; !errors.Is(err, boom) {
		t.Errorf("Run = %v, want %v", err, boom)
	}
	select {
	case <-ended:
	default:
		t.Error("Run returned before the other service ended")
	}
	if err := a.Run(context.Background()); err == nil {
		t.Error("a second Run did not fail")
	}
}
