package projections_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
)

// TestWatermarkMovesWithEveryBatch: the read side rebuilds its answers only
// when the watermark moves, so every committed batch must move it. The
// pipelined consumer applies a partition out of order across keys: a
// voter's second vote (offset 5) can be applied after a later offset (10)
// has moved the partition's next offset to 11, so it moves no offset; and
// its transaction can begin before, and commit after, another batch's, so
// its updated_at is not the newest either. That batch must still move the
// watermark, or its vote stays invisible until some later batch comes.
func TestWatermarkMovesWithEveryBatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	at := func(partition int32, offset int64) projections.Position {
		return projections.Position{Topic: domain.TopicVotes, Partition: partition, Offset: offset, Time: castAt}
	}
	first := f.vote(t, 1, "v1", "c1")
	first.Position = at(0, 10)
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{first}); err != nil {
		t.Fatal(err)
	}

	// A registration holds the lock every vote batch shares, so the late
	// batch begins its transaction and waits.
	hold, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hold.Rollback(ctx) }()
	if _, err := hold.Exec(ctx, "SELECT pg_advisory_xact_lock(7001, hashtext(current_schema()))"); err != nil {
		t.Fatal(err)
	}
	late := f.vote(t, 2, "v2", "c2")
	late.Position = at(0, 5)
	done := make(chan error, 1)
	go func() {
		_, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{late})
		done <- err
	}()
	testutil.Eventually(t, 10*time.Second, "the late batch waiting for the registration lock", func() (bool, string) {
		var waiting int
		err := f.pool.QueryRow(ctx, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting)
		return err == nil && waiting > 0, fmt.Sprint(waiting, err)
	})
	// Another batch begins after it and commits before it.
	if err := f.store.RecordDeadLetter(ctx, at(1, 0), "malformed", []byte("{")); err != nil {
		t.Fatal(err)
	}
	before, err := f.results.Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.votesFor(t, "c2"); got != 1 {
		t.Fatalf("c2 has %d votes, want 1", got)
	}
	after, err := f.results.Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Equal(before) {
		t.Errorf("the late batch committed a ballot but left the watermark at %+v: the read side never shows it", after)
	}
}
