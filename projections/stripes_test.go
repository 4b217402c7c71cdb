package projections_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// Two vote batches for the same candidates, regions and contest commit
// independently (issue 13 §2): while one is held open after adding to
// every tally, the other commits. Before striping, the second waited on
// the first's candidate, region and turnout rows until the first ended.
func TestConcurrentVoteBatchesDoNotWaitOnEachOthersTallyRows(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	f.register(t, "v6", "A")
	f.closeRegistration(t, domain.TopicContests, 0)
	f.closeRegistration(t, domain.TopicCandidates, 2)
	f.closeRegistration(t, domain.TopicVoters, f.registrationEnd())
	ctx := context.Background()
	// The contest and every tally row exist before the race, so neither
	// batch creates a row the other must wait to see.
	if _, err := f.store.ApplyVotes(ctx, []projections.Envelope[domain.VoteCast]{f.vote(t, 6, "v6", "c1"), f.vote(t, 7, "v6", "c2")}); err != nil {
		t.Fatal(err)
	}
	onPartition := func(p int32, votes ...projections.Envelope[domain.VoteCast]) []projections.Envelope[domain.VoteCast] {
		for i := range votes {
			votes[i].Position.Partition = p
		}
		return votes
	}
	first := onPartition(7, f.vote(t, 1, "v1", "c1"), f.vote(t, 2, "v2", "c2"), f.vote(t, 4, "v4", "c1"))
	second := onPartition(8, f.vote(t, 3, "v3", "c1"), f.vote(t, 5, "v5", "c2"))

	// The first batch is held open at its last statement: another
	// transaction holds the row its applied offset goes to (partition 7,
	// in every stripe, whichever the store leases).
	holder, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, `INSERT INTO applied_offsets (topic, partition, next_offset, stripe) SELECT 'votes', 7, 0, s FROM generate_series(0, 31) s`); err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() {
		_, err := f.store.ApplyVotes(ctx, first)
		firstDone <- err
	}()
	waitForLockWait(t, f.pool, 1)

	applyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.store.ApplyVotes(applyCtx, second); err != nil {
		t.Fatalf("the second batch did not commit while the first held its tally rows: %v", err)
	}
	select {
	case err := <-firstDone:
		t.Fatalf("the first batch ended (%v) before it was let go: the race did not happen", err)
	default:
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	s := f.snapshot(t)
	if s.Summary.VotesCast != 6 || f.votesFor(t, "c1") != 4 || f.votesFor(t, "c2") != 2 {
		t.Errorf("after both batches: %d votes cast, c1 %d, c2 %d; want 6, 4, 2", s.Summary.VotesCast, f.votesFor(t, "c1"), f.votesFor(t, "c2"))
	}
	for _, r := range s.Regions {
		if want := map[string]int64{"A": 4, "B": 2}[r.Region]; r.VotesCast != want {
			t.Errorf("region %s: %d votes cast, want %d", r.Region, r.VotesCast, want)
		}
	}
	var stripes int
	if err := f.pool.QueryRow(ctx, "SELECT count(DISTINCT stripe) FROM candidate_tallies").Scan(&stripes); err != nil {
		t.Fatal(err)
	}
	if stripes != 2 {
		t.Errorf("candidate tallies span %d stripes, want 2 (one per concurrent batch)", stripes)
	}
}

// waitForLockWait returns once n transactions of pool's database wait for
// a lock.
func waitForLockWait(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, "a transaction waiting for the held row", func() (bool, string) {
		var waiting int
		if err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting >= n, fmt.Sprintf("%d transactions wait for a lock, want %d", waiting, n)
	})
}

// Every committed batch moves the watermark the read side polls (00018),
// also the first batch to write a partition's row in a fresh stripe while
// moving neither the partition's highest offset (its messages lie below
// it: applied out of order, or redelivered) nor the newest start time (a
// batch that began later committed first). Found in review of 00019: such
// a batch inserted its stripe's row with batches 0, the watermark stayed,
// and the API kept serving the state before it.
func TestABatchInAFreshStripeMovesTheWatermark(t *testing.T) {
	t.Parallel()
	f := setupOpen(t)
	f.register(t, "v6", "A")
	f.closeRegistration(t, domain.TopicContests, 0)
	f.closeRegistration(t, domain.TopicCandidates, 2)
	f.closeRegistration(t, domain.TopicVoters, f.registrationEnd())
	ctx := context.Background()
	at := func(p int32, offset int64, v projections.Envelope[domain.VoteCast]) []projections.Envelope[domain.VoteCast] {
		v.Position.Partition, v.Position.Offset = p, offset
		return []projections.Envelope[domain.VoteCast]{v}
	}
	if _, err := f.store.ApplyVotes(ctx, at(0, 100, f.vote(t, 6, "v6", "c1"))); err != nil {
		t.Fatal(err)
	}
	// Two batches wait, each on a ballot another transaction is inserting:
	// the first holds the stripe partition 0 was written in, so the second,
	// on partition 0 below its offset 100, writes a fresh one.
	hold := func(voter string) func() {
		tx, err := f.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ballots (voter_id, vote_id, region, cast_at) VALUES ($1, gen_random_uuid(), 'A', now())`, voter); err != nil {
			t.Fatal(err)
		}
		return func() { _ = tx.Rollback(ctx) }
	}
	release1, release2 := hold("v1"), hold("v2")
	defer release1()
	defer release2()
	done := make(chan error, 2)
	go func() {
		_, err := f.store.ApplyVotes(ctx, at(7, 0, f.vote(t, 1, "v1", "c1")))
		done <- err
	}()
	waitForLockWait(t, f.pool, 1)
	late := make(chan error, 1)
	go func() {
		_, err := f.store.ApplyVotes(ctx, at(0, 50, f.vote(t, 2, "v2", "c2")))
		late <- err
	}()
	waitForLockWait(t, f.pool, 2)
	// A batch that begins after the late one and commits before it.
	if _, err := f.store.ApplyVotes(ctx, at(3, 0, f.vote(t, 3, "v3", "c1"))); err != nil {
		t.Fatal(err)
	}
	before, err := f.results.Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release2()
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	after, err := f.results.Watermark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Equal(before) {
		t.Errorf("a committed batch left the watermark at %+v", before)
	}
	var stripes int
	if err := f.pool.QueryRow(ctx, `SELECT count(DISTINCT stripe) FROM applied_offsets WHERE topic = 'votes' AND partition = 0`).Scan(&stripes); err != nil {
		t.Fatal(err)
	}
	if stripes != 2 {
		t.Errorf("partition 0 has rows in %d stripes, want 2 (the late batch's fresh one): the case was not set up", stripes)
	}
	release1()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The property of TestEveryInterleavingDecidesAsTheLogSays with several
// writers at once, each delivering its own partitions (as the projector's
// writers do): the tallies, summed over their stripes, are still what
// domain.Count says, verify's internal checks hold, and a replay (which
// writes one stripe) rebuilds the same sums.
func TestConcurrentWritersDecideAsTheLogSays(t *testing.T) {
	t.Parallel()
	runs := 24
	if testing.Short() {
		runs = 8
	}
	var striped atomic.Int32
	t.Cleanup(func() {
		if !t.Failed() && striped.Load() == 0 {
			t.Errorf("no seed wrote more than one stripe: the writers never overlapped")
		}
	})
	for seed := range uint64(runs) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			log := randomLog(rand.New(rand.NewPCG(seed, 0x5eed)))
			want := domain.Count(log.spec())
			pool := testutil.Pool(t)
			store, err := write.NewStore(pool)
			if err != nil {
				t.Fatal(err)
			}
			deliverConcurrently(t, seed, store, log, 3)
			if diff := compareOutcome(want, readOutcome(t, pool)); diff != "" {
				t.Fatalf("live projection differs from domain.Count (log:\n%s)\n%s", log, diff)
			}
			checkSelf(t, pool)
			if rep := replayVerify(t, pool, log); len(rep.Differences) > 0 {
				t.Fatalf("replay differs from live (log:\n%s)\n%s", log, projections.FormatDiffs(rep.Differences))
			}
			var stripes int
			if err := pool.QueryRow(context.Background(), "SELECT count(DISTINCT stripe) FROM applied_offsets").Scan(&stripes); err != nil {
				t.Fatal(err)
			}
			if stripes > 1 {
				striped.Add(1)
			}
		})
	}
}

// deliverConcurrently feeds l to store from writers goroutines. Every
// topic partition belongs to one writer, which delivers it in order, in
// random steps of a few messages, with now and then a restart that
// redelivers some; the writers run at once.
func deliverConcurrently(t *testing.T, seed uint64, store *write.Store, l *testLog, writers int) {
	t.Helper()
	type part struct {
		topic     string
		partition int
	}
	store.SetVotePartitions(len(l.topics[domain.TopicVotes]))
	owned := make([][]part, writers)
	i := 0
	// The station reports first: a vote is read after the reports logged
	// before it (README, "What the rule takes on trust"), which writers
	// racing on their own partitions would not keep.
	for _, recs := range l.topics[domain.TopicStations] {
		if len(recs) > 0 {
			if err := apply(context.Background(), store, domain.TopicStations, len(l.topics[domain.TopicStations]), recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, topic := range domain.EventTopics {
		if topic == domain.TopicStations {
			continue
		}
		for p := range l.topics[topic] {
			owned[i%writers] = append(owned[i%writers], part{topic, p})
			i++
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w, parts := range owned {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			next := make([]int, len(parts))
			restarts := 0
			for {
				var open []int
				for k, pt := range parts {
					if next[k] < len(l.topics[pt.topic][pt.partition]) {
						open = append(open, k)
					}
				}
				if len(open) == 0 {
					return
				}
				if restarts < 2 && rng.IntN(12) == 0 {
					restarts++
					for k := range next {
						next[k] = max(0, next[k]-rng.IntN(4))
					}
					continue
				}
				k := open[rng.IntN(len(open))]
				pt := parts[k]
				recs := l.topics[pt.topic][pt.partition]
				n := min(1+rng.IntN(4), len(recs)-next[k])
				batch := recs[next[k] : next[k]+n]
				next[k] += n
				if err := apply(ctx, store, pt.topic, len(l.topics[pt.topic]), batch); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(err)
	}
}
