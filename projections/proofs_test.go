package projections_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/trees"
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

func readerResults(t *testing.T, pool *pgxpool.Pool) *read.Results {
	t.Helper()
	r, err := read.NewResults(asReader(t, pool))
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
	// The served checkpoint covers only half of the tree, so some
	// decided votes are not in it yet.
	if _, err := pool.Exec(ctx, "DELETE FROM log_checkpoints"); err != nil {
		t.Fatal(err)
	}
	half := full
	half.Size = full.Size / 2
	if half.Root, err = tlog.TreeHash(half.Size, trees.HashReader(ctx)); err != nil {
		t.Fatal(err)
	}
	halfSigned, err := key.Sign(half)
	if err != nil {
		t.Fatal(err)
	}
	if err := trees.RecordCheckpoint(ctx, half, halfSigned, key.Verifier); err != nil {
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
			if p.TreeSize != cp.Size || p.Root != cp.Root || p.LeafIndex >= cp.Size {
				t.Errorf("ballot %s: proof of leaf %d in a tree of %d (%v), the checkpoint's is %d (%v)", id, p.LeafIndex, p.TreeSize, p.Root, cp.Size, cp.Root)
			}
			// transparency-dev/merkle, another RFC 6962 implementation,
			// checks the proof against the signed root.
			hashes := make([][]byte, len(p.Hashes))
			for i, h := range p.Hashes {
				hashes[i] = h[:]
			}
			leafHash := rfc6962.DefaultHasher.HashLeaf([]byte(p.Leaf))
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.LeafIndex), uint64(cp.Size), leafHash, hashes, cp.Root[:]); err != nil {
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
			if leaf.Vote != transparency.VoteRef(id) || leaf.Decision != want || !choices[id][leaf.Choice] {
				t.Errorf("ballot %s (%s): leaf %+v", id, want, leaf)
			}
		}
	}
	if proved == 0 || unproved == 0 || decided == 0 {
		t.Fatalf("%d ballots proved, %d not (of %d decided): want some of each (log:\n%s)", proved, unproved, decided, log)
	}
}

// The served checkpoint is the one of the largest tree, with its
// witnesses' cosignature lines after the log's signature.
func TestTheLatestCheckpointIsServedWithItsCosignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	pool := testutil.Pool(t)
	tree, err := trees.NewTree(pool, testSecret, trees.VotesReader(memLog{&testLog{}}))
	if err != nil {
		t.Fatal(err)
	}
	results := readerResults(t, pool)
	if _, err := results.LatestCheckpoint(ctx); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("before any checkpoint: %v, want ErrNotFound", err)
	}
	start := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	for i := range int64(5) {
		c := transparency.Checkpoint{Origin: "votewatch/test", Size: 10 * (i + 1), Time: start.Add(time.Duration(i) * time.Second)}
		if err := tree.RecordCheckpoint(ctx, c, []byte(fmt.Sprintf("note %d\n", i)), key.Verifier); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, "INSERT INTO log_cosignatures (size, witness, line) VALUES (50, 'w2', '— w2 x\n'), (50, 'w1', '— w1 y\n'), (40, 'w1', '— w1 z\n')"); err != nil {
		t.Fatal(err)
	}
	latest, err := results.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Size != 50 || latest.Note != "note 4\n— w1 y\n— w2 x\n" || latest.VerifierKey != key.Verifier {
		t.Errorf("latest %+v", latest)
	}
}
