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

	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/audit"
	"github.com/votewatch/votewatch/projections/rebuild"
	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/projections/write"
	"github.com/votewatch/votewatch/transparency"
)

var testSecret = transparency.Secret(bytes.Repeat([]byte{7}, 32))

// treesOf projects log with deliveries drawn from rng, growing the tree
// while the votes arrive, and returns the projection and its tree grown
// to the end.
func treesOf(t *testing.T, log *testLog, rng *rand.Rand) (*pgxpool.Pool, *trees.Tree) {
	t.Helper()
	ctx := context.Background()
	pool := testutil.Pool(t)
	store, err := write.NewStore(pool)
	if err != nil {
		t.Fatal(err)
	}
	trees, err := trees.NewTree(pool, testSecret, trees.VotesReader(memLog{log}))
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

// withEpochs is log with tree's epochs in its checkpoints topic, as the
// checkpointer publishes them.
func withEpochs(t *testing.T, log *testLog, tree *trees.Tree) *testLog {
	t.Helper()
	epochs, err := tree.Epochs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := &testLog{topics: map[string][][]projections.LogRecord{}, events: log.events}
	for topic, parts := range log.topics {
		out.topics[topic] = parts
	}
	var recs []projections.LogRecord
	for i, e := range epochs {
		recs = append(recs, projections.LogRecord{Offset: int64(i), Value: []byte(e.Text())})
	}
	out.topics[domain.TopicCheckpoints] = [][]projections.LogRecord{recs}
	return out
}

func specOf(t *testing.T, pool *pgxpool.Pool, log *testLog) audit.SpecTree {
	t.Helper()
	ends, err := audit.AllAppliedOffsets(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := audit.BuildSpecTree(context.Background(), memLog{log}, testSecret, nil, ends)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// One projection grows its tree while the votes arrive and records its
// epochs; another projection of the same log, delivered in another order,
// follows the recorded epochs and reaches the same tree, and so does the
// rule's specification: the log alone rebuilds the tree.
func TestTheLogAloneRebuildsTheTreeWhateverTheDeliveryOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for seed := range uint64(6) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			log := randomLog(rand.New(rand.NewPCG(seed, 0x7ee)))
			poolA, treeA := treesOf(t, log, rand.New(rand.NewPCG(seed, 1)))
			recorded := withEpochs(t, log, treeA)
			a, err := treeA.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// B applies everything first, in another order, then grows
			// by A's epochs.
			poolB := testutil.Pool(t)
			store, err := write.NewStore(poolB)
			if err != nil {
				t.Fatal(err)
			}
			deliver(t, rand.New(rand.NewPCG(seed, 2)), store, log)
			treeB, err := trees.NewTree(poolB, testSecret, trees.VotesReader(memLog{log}))
			if err != nil {
				t.Fatal(err)
			}
			epochs, err := trees.RecordedEpochs(ctx, memLog{recorded})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range epochs {
				if err := treeB.GrowEpoch(ctx, e); err != nil {
					t.Fatalf("epoch %d to %d: %v (log:\n%s)", e.From, e.Size, err, log)
				}
			}
			b, err := treeB.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			spec := specOf(t, poolA, recorded)
			want, err := spec.Tree.Head()
			if err != nil {
				t.Fatal(err)
			}
			if a != want || b != want || spec.Diff != "" {
				t.Errorf("heads: live %+v, rebuilt %+v, the specification's %+v (%s)", a, b, want, spec.Diff)
			}
		})
	}
}

// checkpointed projects the first seed's election whose tree holds a
// leaf, and returns it (with its epochs recorded) with a signed
// checkpoint of its tree.
func checkpointed(t *testing.T, key transparency.Key) (*testLog, *pgxpool.Pool, *trees.Tree, []byte) {
	t.Helper()
	for seed := uint64(0); seed < 40; seed++ {
		log := randomLog(rand.New(rand.NewPCG(seed, 0xc4e)))
		pool, tree := treesOf(t, log, rand.New(rand.NewPCG(seed, 1)))
		c, err := tree.Snapshot(context.Background(), "votewatch/test")
		if err != nil {
			t.Fatal(err)
		}
		// Votes in both halves of the tree: the proofs test serves a
		// checkpoint of the first half (station reports, logged before
		// the polls, can fill it).
		var early, late int
		if err := pool.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE leaf < $1), count(*) FILTER (WHERE leaf >= $1) FROM log_leaves WHERE vote_ref IS NOT NULL",
			int64(c.Size/2)).Scan(&early, &late); err != nil {
			t.Fatal(err)
		}
		if early == 0 || late == 0 {
			continue
		}
		signed, err := key.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.RecordCheckpoint(context.Background(), c, signed, key.Verifier); err != nil {
			t.Fatal(err)
		}
		return withEpochs(t, log, tree), pool, tree, signed
	}
	t.Fatal("no seed below 40 puts a vote in the tree")
	return nil, nil, nil, nil
}

func testKey(t *testing.T, name string) transparency.Key {
	t.Helper()
	key, err := transparency.CreateKey(t.TempDir()+"/key", name)
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
	if c.Origin != "votewatch/test" || c.Size == 0 || c.Tallies == "" {
		t.Errorf("opened %+v", c)
	}
	if len(signed) >= transparency.MaxCheckpointSize {
		t.Errorf("the signed checkpoint is %d bytes", len(signed))
	}

	forged := bytes.Replace(signed, []byte("votewatch-tallies "), []byte("votewatch-tallies A"), 1)
	if _, err := transparency.Open(forged, key.Verifier); !errors.Is(err, transparency.ErrBadSignature) {
		t.Errorf("an edited digest: %v, want ErrBadSignature", err)
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
// bytes changed). Growing the recorded epochs over the rewritten log does
// not reach the recorded roots, and a tree grown from it is not
// consistent with the saved checkpoint; the honest tree is.
func TestACheckpointDetectsARewrittenLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, tree, signed := checkpointed(t, key)
	saved, err := transparency.Open(signed, key.Verifier)
	if err != nil {
		t.Fatal(err)
	}
	head, err := tree.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := transparency.CheckConsistent(saved.Head(), head, tree.HashReader(ctx)); err != nil {
		t.Fatalf("the honest tree: %v", err)
	}
	spec := specOf(t, pool, log)
	counts, err := spec.CountsAt(saved.Size)
	if err != nil {
		t.Fatal(err)
	}
	if counts.KeyedDigest(testSecret) != saved.Tallies {
		t.Errorf("the specification's tallies at the checkpoint differ from the signed digest")
	}

	rewritten := rewriteFirstTreeVote(t, log, tree)
	pool2, tree2 := treesOf(t, rewritten, rand.New(rand.NewPCG(3, 3)))
	head2, err := tree2.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = transparency.CheckConsistent(saved.Head(), head2, tree2.HashReader(ctx))
	if !errors.Is(err, transparency.ErrInconsistent) {
		t.Fatalf("the rewritten log's tree: %v, want ErrInconsistent", err)
	}
	if spec := specOf(t, pool2, rewritten); spec.Diff == "" {
		t.Error("the rewritten log grows the recorded epochs to the recorded roots")
	}
}

// rewriteFirstTreeVote returns a copy of log whose first vote inside the
// tree names another vote_id: the kind of rewrite that keeps every count
// the same.
func rewriteFirstTreeVote(t *testing.T, log *testLog, tree *trees.Tree) *testLog {
	t.Helper()
	epochs, err := tree.Epochs(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for _, e := range epochs {
		for p, end := range e.Ends {
			ends[p] = end
		}
	}
	out := &testLog{topics: map[string][][]projections.LogRecord{}, events: log.events}
	for topic, parts := range log.topics {
		out.topics[topic] = make([][]projections.LogRecord, len(parts))
		for p, recs := range parts {
			out.topics[topic][p] = append([]projections.LogRecord(nil), recs...)
		}
	}
	for p, recs := range out.topics[domain.TopicVotes] {
		for i, rec := range recs {
			if int64(i) >= ends[int32(p)] {
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
	t.Fatal("no vote inside the tree")
	return nil
}

// Replay rebuilds the tree, by the epochs the log records, with the same
// root; a swap that would change the root is refused unless the operator
// accepts the difference.
func TestReplayReproducesTheTreeAndRefusesToRewriteIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, _, _ := checkpointed(t, key)

	rep, err := replay(t, pool, log, rebuild.ReplayOptions{Mode: rebuild.ReplayVerify, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if rep.TreesCompared == 0 || len(rep.TreeDiffs) > 0 {
		t.Fatalf("replay compared %d trees, differences %q; want one, none", rep.TreesCompared, rep.TreeDiffs)
	}

	// Every stored hash of the live tree, rewritten.
	if _, err := pool.Exec(ctx, "UPDATE log_hashes SET hash = sha256(hash)"); err != nil {
		t.Fatal(err)
	}
	rep, err = replay(t, pool, log, rebuild.ReplayOptions{Mode: rebuild.ReplaySwap, Secret: testSecret})
	if !errors.Is(err, rebuild.ErrRootsDiffer) || rep.Swapped {
		t.Fatalf("swap over a rewritten tree: swapped %v, %v; want ErrRootsDiffer", rep.Swapped, err)
	}
	if len(rep.TreeDiffs) != 1 || !strings.Contains(rep.TreeDiffs[0], "live root") {
		t.Errorf("differences %q, want the root's", rep.TreeDiffs)
	}
	// Without the secret the tree cannot be rebuilt: no swap either.
	if rep, err := replay(t, pool, log, rebuild.ReplayOptions{Mode: rebuild.ReplaySwap}); !errors.Is(err, rebuild.ErrRootsDiffer) || rep.Swapped {
		t.Fatalf("swap without the secret over a live tree: swapped %v, %v; want ErrRootsDiffer", rep.Swapped, err)
	}
	rep, err = replay(t, pool, log, rebuild.ReplayOptions{Mode: rebuild.ReplaySwap, Secret: testSecret, AcceptDiff: true})
	if err != nil || !rep.Swapped {
		t.Fatalf("swap with --accept-diff: swapped %v, %v", rep.Swapped, err)
	}
	var served int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM log_checkpoints").Scan(&served); err != nil || served == 0 {
		t.Errorf("after the swap %d checkpoints are served (%v); the published ones must stay", served, err)
	}
}

// A log whose recorded epochs were edited (one partition's end moved)
// does not rebuild: the replay reports the epoch.
func TestReplayReportsAnEpochTheLogDoesNotGrow(t *testing.T) {
	t.Parallel()
	key := testKey(t, "votewatch-test")
	log, pool, _, _ := checkpointed(t, key)
	recs := log.topics[domain.TopicCheckpoints][0]
	e, err := transparency.ParseEpoch(string(recs[0].Value))
	if err != nil {
		t.Fatal(err)
	}
	for p := range e.Ends {
		e.Ends[p]--
		break
	}
	edited := append([]projections.LogRecord{{Offset: 0, Value: []byte(e.Text())}}, recs[1:]...)
	log.topics[domain.TopicCheckpoints] = [][]projections.LogRecord{edited}
	rep, err := replay(t, pool, log, rebuild.ReplayOptions{Mode: rebuild.ReplayVerify, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.TreeDiffs) == 0 || !strings.Contains(rep.TreeDiffs[0], "differs from the recorded") {
		t.Errorf("differences %q, want the edited epoch's", rep.TreeDiffs)
	}
}

// `votewatch audit --checkpoint`: an honest checkpoint passes every check;
// a forged one, one from a rewritten history and one whose tallies are not
// the log's each fail, and say why.
func TestAuditChecksASavedCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, tree, signed := checkpointed(t, key)
	auditOf := func(pool *pgxpool.Pool, log *testLog, note []byte) audit.TreeAudit {
		t.Helper()
		a, err := audit.AuditTrees(ctx, pool, memLog{log}, audit.TreeAuditOptions{Secret: testSecret, Checkpoint: note, VerifierKey: key.Verifier})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	wantProblem := func(a audit.TreeAudit, substr string) {
		t.Helper()
		for _, p := range a.Problems {
			if strings.Contains(p, substr) {
				return
			}
		}
		t.Errorf("problems %q, want one about %q", a.Problems, substr)
	}

	if a := auditOf(pool, log, signed); len(a.Problems) > 0 || a.RootsCompared == 0 || a.Checkpoint == nil {
		t.Fatalf("the honest checkpoint: %+v", a)
	}
	wantProblem(auditOf(pool, log, bytes.Replace(signed, []byte("votewatch-time "), []byte("votewatch-time  "), 1)), "signature")

	rewritten := rewriteFirstTreeVote(t, log, tree)
	pool2, tree2 := treesOf(t, rewritten, rand.New(rand.NewPCG(5, 5)))
	wantProblem(auditOf(pool2, withEpochs(t, rewritten, tree2), signed), "rewritten")

	// A checkpoint signed over counts edited in the database.
	if _, err := pool.Exec(ctx, "UPDATE log_counts SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM log_counts)"); err != nil {
		t.Fatal(err)
	}
	c, err := tree.Snapshot(ctx, "votewatch/test")
	if err != nil {
		t.Fatal(err)
	}
	edited, err := key.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(auditOf(pool, log, edited), "tallies digest")
}

// Of two projector processes sharing a projection, one publishes the
// checkpoints; the other takes over when it stops, without signing again
// what it signed last.
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
		tree, err := trees.NewTree(pool, testSecret, trees.VotesReader(memLog{log}))
		if err != nil {
			t.Fatal(err)
		}
		c, err := trees.NewCheckpointer(trees.CheckpointerConfig{
			Tree: tree, Key: key, Origin: "votewatch/test", Every: 10 * time.Millisecond,
			Publish: func(_ context.Context, rec []byte) error {
				if transparency.IsEpoch(rec) {
					return nil
				}
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
			tree, err := trees.NewTree(pool, testSecret, trees.VotesReader(memLog{log}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tree.GrowAll(ctx); err != nil {
				t.Fatal(err)
			}
			head, err := tree.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if head.N != 2 {
				t.Fatalf("the tree holds %d of the partition's 2 votes", head.N)
			}
			var counted, ballots int64
			if err := pool.QueryRow(ctx, "SELECT coalesce(sum(n), 0) FROM log_counts WHERE kind = 'counted'").Scan(&counted); err != nil {
				t.Fatal(err)
			}
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM ballots").Scan(&ballots); err != nil {
				t.Fatal(err)
			}
			if counted != ballots || ballots != 1 {
				t.Errorf("the tree counts %d votes, the projection %d; want 1", counted, ballots)
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
	read := trees.VotesReader(memLog{log})
	counting := func(ctx context.Context, from, to map[int32]int64, fn func(int32, int64, []byte) error) error {
		reads++
		return read(ctx, from, to, fn)
	}
	tree, err := trees.NewTree(pool, testSecret, counting)
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		if _, err := tree.GrowAll(ctx); err != nil {
			t.Fatal(err)
		}
		head, err := tree.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return head.N
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

// `audit` fails on a projection that has not applied the whole log: the
// recount at its offsets would pass while votes wait uncounted.
func TestCheckCaughtUpRefusesALaggingProjection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := randomLog(rand.New(rand.NewPCG(3, 0xca7)))
	pool, _ := treesOf(t, log, rand.New(rand.NewPCG(3, 1)))
	if err := audit.CheckCaughtUp(ctx, pool, memLog{log}); err != nil {
		t.Fatalf("a projection of the whole log: %v", err)
	}
	longer := &testLog{topics: map[string][][]projections.LogRecord{}, events: log.events}
	for topic, parts := range log.topics {
		longer.topics[topic] = append([][]projections.LogRecord(nil), parts...)
	}
	votes := longer.topics[domain.TopicVotes]
	votes[0] = append(append([]projections.LogRecord(nil), votes[0]...), projections.LogRecord{Offset: int64(len(votes[0])), Value: []byte("{}")})
	if err := audit.CheckCaughtUp(ctx, pool, memLog{longer}); !errors.Is(err, audit.ErrLagging) || !strings.Contains(err.Error(), "votes/0") {
		t.Errorf("a message past the projection: %v, want ErrLagging naming votes/0", err)
	}
}

// The checkpointer signs with no key but the latest checkpoint's: another
// key (a file made anew when another projector took over) is refused
// until the operator records a rotation to it.
func TestTheCheckpointerRefusesAnotherKeyUntilARotationIsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, _, _ := checkpointed(t, key)
	// The latest checkpoint covers all but the last leaf, so the tree
	// has grown since and there is something to sign.
	if _, err := pool.Exec(ctx, "DELETE FROM log_checkpoints"); err != nil {
		t.Fatal(err)
	}
	tree, err := trees.NewTree(pool, testSecret, trees.VotesReader(memLog{log}))
	if err != nil {
		t.Fatal(err)
	}
	head, err := tree.Head(ctx)
	if err != nil || head.N < 2 {
		t.Fatalf("head %+v, %v", head, err)
	}
	old := transparency.Checkpoint{Origin: "votewatch/test", Size: head.N - 1, Time: time.Now()}
	if old.Root, err = tlog.TreeHash(old.Size, tree.HashReader(ctx)); err != nil {
		t.Fatal(err)
	}
	signed, err := key.Sign(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.RecordCheckpoint(ctx, old, signed, key.Verifier); err != nil {
		t.Fatal(err)
	}
	other := testKey(t, "votewatch-test")
	checkpointer := func(k transparency.Key) *trees.Checkpointer {
		c, err := trees.NewCheckpointer(trees.CheckpointerConfig{Tree: tree, Key: k, Origin: "votewatch/test",
			Publish: func(context.Context, []byte) error { return nil }}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := checkpointer(other).Checkpoint(ctx); !errors.Is(err, trees.ErrKeyChanged) {
		t.Fatalf("another key: %v, want ErrKeyChanged", err)
	}
	if err := trees.RecordKeyRotation(ctx, pool, other.Verifier, "the old key's host was lost"); err != nil {
		t.Fatal(err)
	}
	signedNew, err := checkpointer(other).Checkpoint(ctx)
	if err != nil || signedNew == nil {
		t.Fatalf("after the rotation: %q, %v", signedNew, err)
	}
	if _, err := transparency.Open(signedNew, other.Verifier); err != nil {
		t.Errorf("the new checkpoint: %v", err)
	}
}
