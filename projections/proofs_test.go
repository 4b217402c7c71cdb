package projections_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
)

// asReader returns a pool to pool's database that acts as the read API's
// role, votewatch_reader.
func asReader(t *testing.T, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config().Copy()
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE votewatch_reader")
		return err
	}
	reader, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	return reader
}

func readerResults(t *testing.T, pool *pgxpool.Pool) *projections.Results {
	t.Helper()
	r, err := projections.NewResults(asReader(t, pool))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Every decided vote of a projected election, read as votewatch_reader,
// has a status, and those inside the latest checkpoint's trees an
// inclusion proof that verifies against that signed checkpoint; votes
// past the checkpoint's tree size have their status and no proof.
func TestBallotProofsVerifyAgainstTheLatestCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, trees, signed := checkpointed(t, key)
	full, err := transparency.Open(signed, key.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	// checkpointed recorded the full checkpoint; a later one covers only
	// half of each tree, so some decided votes are not in the latest yet.
	half := full
	half.Time = full.Time.Add(time.Second)
	half.Trees = map[int32]transparency.Head{}
	for p, h := range full.Trees {
		n := h.Size / 2
		root, err := tlog.TreeHash(n, trees.HashReader(ctx, p))
		if err != nil {
			t.Fatal(err)
		}
		half.Trees[p] = transparency.Head{Size: n, Root: root, NextOffset: h.NextOffset}
	}
	halfSigned, err := key.Sign(half)
	if err != nil {
		t.Fatal(err)
	}
	if err := trees.RecordCheckpoint(ctx, half.Time, halfSigned, key.Verifier); err != nil {
		t.Fatal(err)
	}
	results := readerResults(t, pool)

	// A random log sends some vote_ids more than once: a leaf commits to
	// one of its vote_id's choices.
	choices := map[string]map[string]bool{}
	for _, evs := range log.events[domain.TopicVotes] {
		for _, ev := range evs {
			if vc, ok := ev.(domain.VoteCast); ok {
				id := vc.Vote.ID()
				if choices[id] == nil {
					choices[id] = map[string]bool{}
				}
				choices[id][testSecret.Commit(id, vc.Vote.ContestID(), vc.Vote.CandidateID())] = true
			}
		}
	}
	var proved, unproved, decided int
	for _, evs := range log.events[domain.TopicVotes] {
		for _, ev := range evs {
			vc, ok := ev.(domain.VoteCast)
			if !ok {
				continue
			}
			id := vc.Vote.ID()
			b, err := results.Ballot(ctx, id)
			if errors.Is(err, projections.ErrNotFound) {
				continue // a vote the projection never applied: an unknown receipt
			}
			if err != nil {
				t.Fatalf("ballot %s: %v", id, err)
			}
			if b.Status == transparency.Counted || b.Status == transparency.Rejected {
				decided++
			}
			if b.Proof == nil {
				if b.Checkpoint != "" {
					t.Errorf("ballot %s: a checkpoint without a proof", id)
				}
				unproved++
				continue
			}
			proved++
			p := b.Proof
			if b.Checkpoint != string(halfSigned) {
				t.Fatalf("ballot %s: the proof is against\n%s\nnot the latest checkpoint", id, b.Checkpoint)
			}
			cp, err := transparency.Open([]byte(b.Checkpoint), key.Verifier)
			if err != nil {
				t.Fatalf("ballot %s's checkpoint: %v", id, err)
			}
			head := cp.Trees[p.Partition]
			if p.TreeSize != head.Size || p.Root != head.Root || p.LeafIndex >= head.Size {
				t.Errorf("ballot %s: proof of leaf %d in a tree of %d (%v), the checkpoint's is %d (%v)", id, p.LeafIndex, p.TreeSize, p.Root, head.Size, head.Root)
			}
			if err := tlog.CheckRecord(p.Hashes, head.Size, head.Root, p.LeafIndex, tlog.RecordHash([]byte(p.Leaf))); err != nil {
				t.Errorf("ballot %s: the proof does not verify: %v", id, err)
			}
			leaf, err := transparency.ParseLeaf(p.Leaf)
			if err != nil {
				t.Fatalf("ballot %s's leaf: %v", id, err)
			}
			want := b.Status
			if b.Reason != "" {
				want += " " + b.Reason
			}
			if leaf.VoteID != id || leaf.Decision != want || !choices[id][leaf.Choice] {
				t.Errorf("ballot %s (%s): leaf %+v", id, want, leaf)
			}
		}
	}
	if proved == 0 || unproved == 0 || decided == 0 {
		t.Fatalf("%d ballots proved, %d not (of %d decided): want some of each (log:\n%s)", proved, unproved, decided, log)
	}
}

func TestCheckpointsAreServedLatestFirstAndSinceATimeBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	pool := testutil.Pool(t)
	trees, err := projections.NewTrees(pool, testSecret, projections.VotesReader(memLog{&testLog{}}))
	if err != nil {
		t.Fatal(err)
	}
	results := readerResults(t, pool)
	if _, err := results.LatestCheckpoint(ctx); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("before any checkpoint: %v, want ErrNotFound", err)
	}
	start := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	n := projections.MaxCheckpoints + 5
	for i := range n {
		if err := trees.RecordCheckpoint(ctx, start.Add(time.Duration(i)*time.Second), []byte{byte('a' + i%26)}, key.Verifier); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := results.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !latest.CreatedAt.Equal(start.Add(time.Duration(n-1)*time.Second)) || latest.VerifierKey != key.Verifier {
		t.Errorf("latest %+v, want the one at %s", latest, start.Add(time.Duration(n-1)*time.Second))
	}
	all, err := results.CheckpointsSince(ctx, start.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != projections.MaxCheckpoints || !all[0].CreatedAt.Equal(start) {
		t.Fatalf("since before the first: %d from %v, want the first %d", len(all), all[0].CreatedAt, projections.MaxCheckpoints)
	}
	for i := 1; i < len(all); i++ {
		if !all[i].CreatedAt.After(all[i-1].CreatedAt) {
			t.Fatalf("checkpoints out of order at %d", i)
		}
	}
	rest, err := results.CheckpointsSince(ctx, all[len(all)-1].CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != n-projections.MaxCheckpoints || rest[len(rest)-1].ID != latest.ID {
		t.Errorf("paging on from the last one's time: %d ending at %d, want %d ending at %d", len(rest), rest[len(rest)-1].ID, n-projections.MaxCheckpoints, latest.ID)
	}
}
