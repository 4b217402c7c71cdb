package projections_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
	"golang.org/x/mod/sumdb/tlog"
)

var testSecret = transparency.Secret(bytes.Repeat([]byte{7}, 32))

// treesOf projects log with deliveries drawn from rng, growing the trees
// while the votes arrive, and returns the projection and its trees grown
// to the end.
func treesOf(t *testing.T, log *testLog, rng *rand.Rand) (*pgxpool.Pool, *projections.Trees) {
	t.Helper()
	ctx := context.Background()
	pool := testutil.Pool(t)
	store, err := projections.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	trees, err := projections.NewTrees(pool, testSecret, projections.VotesReader(memLog{log}))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := trees.GrowAll(ctx); err != nil {
				t.Error(err)
				return
			}
		}
	})
	deliver(t, rng, store, log)
	close(stop)
	wg.Wait()
	if _, err := trees.GrowAll(ctx); err != nil {
		t.Fatal(err)
	}
	return pool, trees
}

func specOf(t *testing.T, pool *pgxpool.Pool, log *testLog) projections.SpecTrees {
	t.Helper()
	ends, err := projections.AllAppliedOffsets(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := projections.BuildSpecTrees(context.Background(), memLog{log}, testSecret, nil, ends)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// The projection's trees are the specification's, whatever order the
// messages were delivered in and however often the trees grew on the way:
// so a replay, which applies in another order, reproduces the roots.
func TestTreesAreTheSpecificationsWhateverTheDeliveryOrder(t *testing.T) {
	t.Parallel()
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			log := randomLog(rand.New(rand.NewPCG(seed, 0x7ee)))
			poolA, treesA := treesOf(t, log, rand.New(rand.NewPCG(seed, 1)))
			_, treesB := treesOf(t, log, rand.New(rand.NewPCG(seed, 2)))
			a, err := treesA.Heads(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			b, err := treesB.Heads(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			spec := specOf(t, poolA, log)
			for p, tree := range spec.Trees {
				want, err := tree.Head()
				if err != nil {
					t.Fatal(err)
				}
				if a[p] != want || b[p] != want {
					t.Errorf("partition %d: projections' heads %+v and %+v, the specification's %+v (log:\n%s)", p, a[p], b[p], want, log)
				}
			}
			for p, h := range a {
				if h.Size > 0 && spec.Trees[p] == nil {
					t.Errorf("partition %d: a tree of %d leaves the specification does not have", p, h.Size)
				}
			}
		})
	}
}

// checkpointed projects the first seed's election that has a vote in a
// tree, and returns it with a signed checkpoint of its trees.
func checkpointed(t *testing.T, key transparency.Key) (*testLog, *pgxpool.Pool, *projections.Trees, []byte) {
	t.Helper()
	for seed := uint64(0); seed < 40; seed++ {
		log := randomLog(rand.New(rand.NewPCG(seed, 0xc4e)))
		pool, trees := treesOf(t, log, rand.New(rand.NewPCG(seed, 1)))
		c, err := trees.Snapshot(context.Background(), "votewatch/test")
		if err != nil {
			t.Fatal(err)
		}
		if c.Counted+c.Rejected == 0 {
			continue
		}
		signed, err := key.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := trees.RecordCheckpoint(context.Background(), c.Time, signed, key.Verifier); err != nil {
			t.Fatal(err)
		}
		return log, pool, trees, signed
	}
	t.Fatal("no seed below 40 decides a vote")
	return nil, nil, nil, nil
}

func testKey(t *testing.T, name string) transparency.Key {
	t.Helper()
	key, err := transparency.LoadOrCreateKey(t.TempDir()+"/key", name)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func TestASignedCheckpointVerifiesAndAForgedOneDoesNot(t *testing.T) {
	t.Parallel()
	key := testKey(t, "votewatch-test")
	_, _, _, signed := checkpointed(t, key)
	c, err := transparency.Open(signed, key.Verifier)
	if err != nil {
		t.Fatalf("the checkpoint as signed: %v", err)
	}
	if c.Origin != "votewatch/test" || len(c.Trees) == 0 {
		t.Errorf("opened %+v", c)
	}

	forged := bytes.Replace(signed, []byte("counted "), []byte("counted 1"), 1)
	if _, err := transparency.Open(forged, key.Verifier); !errors.Is(err, transparency.ErrBadSignature) {
		t.Errorf("an edited count: %v, want ErrBadSignature", err)
	}
	other := testKey(t, "votewatch-test")
	reSigned, err := other.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transparency.Open(reSigned, key.Verifier); !errors.Is(err, transparency.ErrBadSignature) {
		t.Errorf("signed by another key of the same name: %v, want ErrBadSignature", err)
	}
}

// An observer saved a checkpoint; the log is then rewritten (one vote's
// bytes changed) and projected again. The new trees are not consistent
// with the saved checkpoint, while the honest ones are.
func TestACheckpointDetectsARewrittenLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, trees, signed := checkpointed(t, key)
	saved, err := transparency.Open(signed, key.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := trees.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := transparency.CheckConsistent(saved, heads, func(p int32) tlog.HashReader { return trees.HashReader(ctx, p) }); err != nil {
		t.Fatalf("the honest trees: %v", err)
	}
	spec := specOf(t, pool, log)
	sizes := map[int32]int64{}
	for p, h := range saved.Trees {
		sizes[p] = h.Size
	}
	counts, err := spec.CountsAt(sizes)
	if err != nil {
		t.Fatal(err)
	}
	if counts.Digest() != saved.Tallies {
		t.Errorf("the specification's tallies at the checkpoint differ from the signed digest")
	}

	rewritten := rewriteFirstTreeVote(t, log, saved)
	_, trees2 := treesOf(t, rewritten, rand.New(rand.NewPCG(3, 3)))
	heads2, err := trees2.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = transparency.CheckConsistent(saved, heads2, func(p int32) tlog.HashReader { return trees2.HashReader(ctx, p) })
	if !errors.Is(err, transparency.ErrInconsistent) {
		t.Fatalf("the rewritten log's trees: %v, want ErrInconsistent", err)
	}
}

// rewriteFirstTreeVote returns a copy of log whose first vote inside a
// checkpointed tree names another vote_id: the kind of rewrite that keeps
// every count the same.
func rewriteFirstTreeVote(t *testing.T, log *testLog, c transparency.Checkpoint) *testLog {
	t.Helper()
	out := &testLog{topics: map[string][][]projections.LogRecord{}, events: log.events}
	for topic, parts := range log.topics {
		out.topics[topic] = make([][]projections.LogRecord, len(parts))
		for p, recs := range parts {
			out.topics[topic][p] = append([]projections.LogRecord(nil), recs...)
		}
	}
	for p, h := range c.Trees {
		for i, rec := range out.topics[domain.TopicVotes][p] {
			if int64(i) >= h.Size {
				break
			}
			if _, err := domain.DecodeVoteCast(rec.Value); err != nil {
				continue
			}
			v := bytes.Clone(rec.Value)
			at := bytes.Index(v, []byte(`"vote_id":"`)) + len(`"vote_id":"`)
			if v[at] == 'a' {
				v[at] = 'b'
			} else {
				v[at] = 'a'
			}
			out.topics[domain.TopicVotes][p][i].Value = v
			return out
		}
	}
	t.Fatal("no vote inside the checkpoint's trees")
	return nil
}

// Replay rebuilds the trees with the same roots; a swap that would change
// a root is refused unless the operator accepts the difference.
func TestReplayReproducesTheRootsAndRefusesToRewriteThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, trees, _ := checkpointed(t, key)

	rep, err := replay(t, pool, log, projections.ReplayOptions{Mode: projections.ReplayVerify, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TreesCompared == 0 || len(rep.TreeDiffs) > 0 {
		t.Fatalf("replay compared %d trees, differences %q; want some, none", rep.TreesCompared, rep.TreeDiffs)
	}

	// Every stored hash of some partition of the live trees, rewritten.
	heads, err := trees.Heads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim int32 = -1
	for p, h := range heads {
		if h.Size > 0 {
			victim = p
			break
		}
	}
	if _, err := pool.Exec(ctx, "UPDATE tree_hashes SET hash = sha256(hash) WHERE partition = $1", victim); err != nil {
		t.Fatal(err)
	}
	rep, err = replay(t, pool, log, projections.ReplayOptions{Mode: projections.ReplaySwap, Secret: testSecret})
	if !errors.Is(err, projections.ErrRootsDiffer) || rep.Swapped {
		t.Fatalf("swap over a rewritten tree: swapped %v, %v; want ErrRootsDiffer", rep.Swapped, err)
	}
	if len(rep.TreeDiffs) != 1 || !strings.Contains(rep.TreeDiffs[0], fmt.Sprintf("partition %d:", victim)) {
		t.Errorf("differences %q, want partition %d's", rep.TreeDiffs, victim)
	}
	// Without the secret the trees cannot be rebuilt: no swap either.
	if rep, err := replay(t, pool, log, projections.ReplayOptions{Mode: projections.ReplaySwap}); !errors.Is(err, projections.ErrRootsDiffer) || rep.Swapped {
		t.Fatalf("swap without the secret over live trees: swapped %v, %v; want ErrRootsDiffer", rep.Swapped, err)
	}
	rep, err = replay(t, pool, log, projections.ReplayOptions{Mode: projections.ReplaySwap, Secret: testSecret, AcceptDiff: true})
	if err != nil || !rep.Swapped {
		t.Fatalf("swap with --accept-diff: swapped %v, %v", rep.Swapped, err)
	}
	var served int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM checkpoints").Scan(&served); err != nil || served == 0 {
		t.Errorf("after the swap %d checkpoints are served (%v); the published ones must stay", served, err)
	}
	// And the next checkpoint is recorded after them.
	c, err := trees.Snapshot(ctx, "votewatch/test")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := key.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := trees.RecordCheckpoint(ctx, c.Time, signed, key.Verifier); err != nil {
		t.Errorf("the first checkpoint after the swap: %v", err)
	}
}

// `votewatch audit --checkpoint`: an honest checkpoint passes every check;
// a forged one, one from a rewritten history and one whose tallies are not
// the log's each fail, and say why.
func TestAuditChecksASavedCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, trees, signed := checkpointed(t, key)
	audit := func(pool *pgxpool.Pool, log *testLog, note []byte) projections.TreeAudit {
		t.Helper()
		a, err := projections.AuditTrees(ctx, pool, memLog{log}, projections.TreeAuditOptions{Secret: testSecret, Checkpoint: note, VerifierKey: key.Verifier})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	wantProblem := func(a projections.TreeAudit, substr string) {
		t.Helper()
		for _, p := range a.Problems {
			if strings.Contains(p, substr) {
				return
			}
		}
		t.Errorf("problems %q, want one about %q", a.Problems, substr)
	}

	if a := audit(pool, log, signed); len(a.Problems) > 0 || a.RootsCompared == 0 || a.Checkpoint == nil {
		t.Fatalf("the honest checkpoint: %+v", a)
	}
	wantProblem(audit(pool, log, bytes.Replace(signed, []byte("tree "), []byte("tree  "), 1)), "signature")

	saved, err := transparency.Open(signed, key.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	rewritten := rewriteFirstTreeVote(t, log, saved)
	pool2, _ := treesOf(t, rewritten, rand.New(rand.NewPCG(5, 5)))
	wantProblem(audit(pool2, rewritten, signed), "rewritten")

	// A checkpoint signed over counts edited in the database.
	if _, err := pool.Exec(ctx, "UPDATE tree_counts SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM tree_counts)"); err != nil {
		t.Fatal(err)
	}
	c, err := trees.Snapshot(ctx, "votewatch/test")
	if err != nil {
		t.Fatal(err)
	}
	edited, err := key.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(audit(pool, log, edited), "at its tree sizes")
}

// Of two projector processes sharing a projection, one publishes the
// checkpoints; the other takes over when it stops, without republishing
// what it published last.
func TestOneCheckpointerPublishes(t *testing.T) {
	t.Parallel()
	key := testKey(t, "votewatch-test")
	var log *testLog
	var pool *pgxpool.Pool
	for seed := uint64(0); ; seed++ {
		log = randomLog(rand.New(rand.NewPCG(seed, 0x1ead)))
		if len(log.topics[domain.TopicVotes][0]) > 0 {
			break
		}
	}
	pool, _ = treesOf(t, log, rand.New(rand.NewPCG(1, 1)))
	var mu sync.Mutex
	published := map[string]int{}
	start := func(name string) (context.CancelFunc, <-chan struct{}) {
		trees, err := projections.NewTrees(pool, testSecret, projections.VotesReader(memLog{log}))
		if err != nil {
			t.Fatal(err)
		}
		c, err := projections.NewCheckpointer(projections.CheckpointerConfig{
			Trees: trees, Key: key, Origin: "votewatch/test", Every: 10 * time.Millisecond,
			Publish: func(context.Context, []byte) error {
				mu.Lock()
				defer mu.Unlock()
				published[name]++
				return nil
			},
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = c.Run(ctx); close(done) }()
		return cancel, done
	}
	stopA, doneA := start("a")
	stopB, doneB := start("b")
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		return published["a"] + published["b"]
	}
	testutil.Eventually(t, 10*time.Second, "a checkpoint", func() (bool, string) { return total() > 0, "" })
	stopA()
	<-doneA
	stopB()
	<-doneB
	if total() != 1 {
		t.Errorf("published %v; want one checkpoint in all", published)
	}
}

// A producer reused a vote_id for another voter in the same partition.
// The projection decides the vote_id once; the tree grows past both
// copies whichever the consumer applied first (it applies a partition out
// of order across keys), and its counts are the projection's.
func TestAReusedVoteIDNeitherStallsNorMislabelsTheTree(t *testing.T) {
	t.Parallel()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	for _, reversed := range []bool{false, true} {
		t.Run(fmt.Sprintf("applied in reverse=%v", reversed), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := testutil.Pool(t)
			seed := testutil.NewSeeder(t, pool)
			seed.Candidates(t, testutil.Candidate(t, "c-ada", "Ada", "Civic", domain.DefaultContest))
			seed.Voters(t, testutil.Voter(t, "a", "A", "North", "Town", at.AddDate(-30, 0, 0), at.AddDate(0, -1, 0)),
				testutil.Voter(t, "b", "B", "North", "Town", at.AddDate(-30, 0, 0), at.AddDate(0, -1, 0)))
			for _, topic := range domain.RegistrationTopics {
				seed.CloseRegistration(t, topic, at)
			}
			log := &testLog{topics: map[string][][]projections.LogRecord{domain.TopicVotes: {nil}}}
			var votes []projections.Envelope[domain.VoteCast]
			for i, voter := range []string{"a", "b"} {
				v, err := domain.NewVote(testutil.VoteID(1), voter, "c-ada", at)
				if err != nil {
					t.Fatal(err)
				}
				ev := domain.VoteCast{Vote: v}
				b, err := ev.MarshalJSON()
				if err != nil {
					t.Fatal(err)
				}
				log.topics[domain.TopicVotes][0] = append(log.topics[domain.TopicVotes][0], projections.LogRecord{Offset: int64(i), Value: b, Time: at})
				votes = append(votes, projections.Envelope[domain.VoteCast]{Event: ev, Position: projections.Position{Topic: domain.TopicVotes, Offset: int64(i), Time: at}})
			}
			if reversed {
				votes[0], votes[1] = votes[1], votes[0]
			}
			for _, v := range votes {
				seed.ApplyVotes(t, v)
			}
			trees, err := projections.NewTrees(pool, testSecret, projections.VotesReader(memLog{log}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := trees.GrowAll(ctx); err != nil {
				t.Fatal(err)
			}
			heads, err := trees.Heads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if heads[0].Size != 2 {
				t.Fatalf("the tree holds %d of the partition's 2 votes", heads[0].Size)
			}
			c, err := trees.Snapshot(ctx, "votewatch/test")
			if err != nil {
				t.Fatal(err)
			}
			var ballots int64
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM ballots").Scan(&ballots); err != nil {
				t.Fatal(err)
			}
			if c.Counted != ballots || ballots != 1 {
				t.Errorf("the tree counts %d votes, the projection %d; want 1", c.Counted, ballots)
			}
		})
	}
}

// A vote held for a registration stops its partition's tree; the tree
// does not read the partition again until the vote is decided, then grows.
func TestAStalledTreeIsNotReadAgainUntilItsVoteIsDecided(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	pool := testutil.Pool(t)
	seed := testutil.NewSeeder(t, pool)
	seed.Candidates(t, testutil.Candidate(t, "c-ada", "Ada", "Civic", domain.DefaultContest))
	seed.Voters(t, testutil.Voter(t, "a", "A", "North", "Town", at.AddDate(-30, 0, 0), at.AddDate(0, -1, 0)))
	log := &testLog{topics: map[string][][]projections.LogRecord{domain.TopicVotes: {nil}}}
	for i, voter := range []string{"late", "a"} {
		v := seed.Vote(t, i+1, voter, "c-ada", "", at)
		b, err := v.Event.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		log.topics[domain.TopicVotes][0] = append(log.topics[domain.TopicVotes][0], projections.LogRecord{Offset: v.Position.Offset, Value: b, Time: at})
		seed.ApplyVotes(t, v)
	}
	var reads int
	read := projections.VotesReader(memLog{log})
	counting := func(ctx context.Context, from, to map[int32]int64, fn func(int32, int64, []byte) error) error {
		reads++
		return read(ctx, from, to, fn)
	}
	trees, err := projections.NewTrees(pool, testSecret, counting)
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		if _, err := trees.GrowAll(ctx); err != nil {
			t.Fatal(err)
		}
		heads, err := trees.Heads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return heads[0].Size
	}
	if n := size(); n != 0 || reads != 1 {
		t.Fatalf("behind the held vote: %d leaves after %d reads, want 0 after 1", n, reads)
	}
	if n := size(); n != 0 || reads != 1 {
		t.Errorf("still held: %d leaves after %d reads, want 0 and no new read", n, reads)
	}
	seed.Voters(t, testutil.Voter(t, "late", "L", "North", "Town", at.AddDate(-30, 0, 0), at.AddDate(0, -1, 0)))
	if n := size(); n != 2 {
		t.Errorf("once the vote is decided: %d leaves, want 2", n)
	}
}
