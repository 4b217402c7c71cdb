package systemtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/rebuild"
)

func (p *pipeline) rebuilder(t *testing.T) *rebuild.Rebuilder {
	t.Helper()
	rb, err := app.NewRebuilder(testLogger(), p.pool, p.dsn, p.kafka, p.klog)
	if err != nil {
		t.Fatal(err)
	}
	rb.OpenWith(p.opener)
	return rb
}

// everything is what the API serves, for comparing before and after.
type everything struct {
	Summary    summaryResp
	Candidates any
	Regions    any
}

func (p *pipeline) everything(t *testing.T) everything {
	t.Helper()
	var e everything
	p.get(t, "/api/v1/summary", &e.Summary)
	e.Summary.UpdatedAt = nil
	p.get(t, "/api/v1/candidates", &e.Candidates)
	p.get(t, "/api/v1/regions", &e.Regions)
	return e
}

func (p *pipeline) waitFor(t *testing.T, e *election, extra int64) {
	t.Helper()
	var wantRejected, wantDead int64
	for _, n := range e.rejected {
		wantRejected += n
	}
	for _, n := range e.deadLettered {
		wantDead += int64(n)
	}
	testutil.Eventually(t, 60*time.Second, "the election projected", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		var rejected int64
		for _, n := range s.Rejected {
			rejected += n
		}
		return s.VotesCast == e.counted+extra && rejected == wantRejected && s.DeadLettered == wantDead, fmt.Sprintf("%+v", s)
	})
}

// cli runs a votewatch command in-process against the test's database and
// broker, returning its exit code and output.
func (p *pipeline) cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	args = append(args, "--database-url", p.dsn, "--kafka-brokers", strings.Join(p.kafka.Brokers, ","))
	// The maintenance commands open the votes with the system's tally key
	// and its require-sealed setting, as an operator gives them.
	var env []string
	if p.tallyKey != "" {
		env = []string{"VOTEWATCH_TALLY_KEY=" + p.tallyKey, fmt.Sprintf("VOTEWATCH_REQUIRE_SEALED=%t", p.opener.RequiresSealed())}
	}
	return testutil.RunEnv(t, env, append([]string{"--log-level", "warn"}, args...)...)
}

func TestReplayWhileVotingCountsEveryVoteOnce(t *testing.T) {
	p := startPipeline(t, 8)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)

	// The last 40 registered voters vote while the replay runs, in three
	// parts, each on the replay's own signal: before its snapshot of the
	// log's end, after it (during the rebuild), and once the rebuild has
	// read all it snapshotted (during the catch-up and the swap).
	var late []*kgo.Record
	for i, voter := range e.voterIDs[200:] {
		late = append(late, record("votes", voter, vote(10_000+i, voter, "c-ada")))
	}
	third := len(late) / 3
	for _, r := range late[:third] {
		p.produce(t, r)
	}
	snapshotted, readAll, runDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	closeSnapshotted, closeReadAll := sync.OnceFunc(func() { close(snapshotted) }), sync.OnceFunc(func() { close(readAll) })
	// Progress is first called once the log's end is taken, and reaches
	// the total when the rebuild has read up to it.
	progress := func(done, total int64) {
		closeSnapshotted()
		if done >= total {
			closeReadAll()
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, part := range []struct {
			after   <-chan struct{}
			what    string
			records []*kgo.Record
		}{{snapshotted, "snapshot", late[third : 2*third]}, {readAll, "rebuild read up to it", late[2*third:]}} {
			// A replay that ends (or fails) first leaves the rest to
			// land after it; each vote still counts once.
			select {
			case <-part.after:
				t.Logf("%d votes after the replay's %s", len(part.records), part.what)
			case <-runDone:
				t.Logf("%d votes after the replay ended", len(part.records))
			}
			for _, r := range part.records {
				p.produce(t, r)
			}
		}
	})
	rep, err := func() (rebuild.ReplayReport, error) {
		defer close(runDone)
		return p.rebuilder(t).Run(context.Background(), rebuild.ReplayOptions{Mode: rebuild.ReplaySwap, Progress: progress})
	}()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Swapped {
		t.Fatal("replay did not swap")
	}
	e.perCandidate["c-ada"] += int64(len(late))
	p.waitFor(t, e, int64(len(late)))

	var cands struct {
		Candidates []struct {
			CandidateID string `json:"candidate_id"`
			Votes       int64  `json:"votes"`
		} `json:"candidates"`
	}
	p.get(t, "/api/v1/candidates", &cands)
	for _, c := range cands.Candidates {
		if c.Votes != e.perCandidate[c.CandidateID] {
			t.Errorf("after replay, %s has %d votes, want %d", c.CandidateID, c.Votes, e.perCandidate[c.CandidateID])
		}
	}
	if code, out := p.cli(t, "verify"); code != 0 {
		t.Errorf("verify after replay: exit %d\n%s", code, out)
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 || !strings.Contains(out, "identical") {
		t.Errorf("replay --verify after replay: exit %d\n%s", code, out)
	}
}

func TestReplayDetectsAndRepairsACorruptTally(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	before := p.everything(t)

	if code, out := p.cli(t, "verify"); code != 0 {
		t.Fatalf("verify on a healthy projection: exit %d\n%s", code, out)
	}
	if code, out := p.cli(t, "replay", "--verify"); code != 0 || !strings.Contains(out, "identical") {
		t.Fatalf("replay --verify with nothing changed: exit %d\n%s", code, out)
	}

	// Someone edits a tally by hand, in a region whose turnout stays
	// below one: the published figures carry the corruption until the
	// releaser moves them after the repair, and the contract-checking
	// client must be able to read them meanwhile (every North voter
	// voted, so a North edit made its turnout exceed 1 and failed the read
	// before the repair could be seen).
	if _, err := p.pool.Exec(context.Background(), "UPDATE region_tallies SET votes = votes + 5 WHERE region = 'East' AND candidate_id = 'c-bob'"); err != nil {
		t.Fatal(err)
	}
	code, out := p.cli(t, "verify")
	if code == 0 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "East") {
		t.Errorf("verify missed the corrupt tally: exit %d\n%s", code, out)
	}
	code, out = p.cli(t, "replay", "--verify")
	if code == 0 || !strings.Contains(out, "region_tallies") {
		t.Errorf("replay --verify missed the corrupt tally: exit %d\n%s", code, out)
	}

	if code, out := p.cli(t, "replay"); code != 0 || !strings.Contains(out, "swapped") {
		t.Fatalf("replay: exit %d\n%s", code, out)
	}
	if code, out := p.cli(t, "verify"); code != 0 {
		t.Errorf("verify after the repairing replay: exit %d\n%s", code, out)
	}
	// The swap carries the published (released) figures over, corruption
	// included; the releaser then moves each cell to the repaired count
	// at its next step (k = 1 here: at once).
	testutil.Eventually(t, 20*time.Second, "the repaired projection's published figures to equal the original's", func() (bool, string) {
		after := p.everything(t)
		return reflect.DeepEqual(before, after), fmt.Sprintf("\nbefore %+v\nafter  %+v", before, after)
	})
	code, out = p.cli(t, "status", "--json")
	if code != 0 || !strings.Contains(out, `"built_by": "replay"`) || !strings.Contains(out, `"lag"`) {
		t.Errorf("status --json: exit %d\n%s", code, out)
	}
}

func TestInterruptedReplayLeavesLiveUntouched(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	before := p.everything(t)

	ctx, cancel := context.WithCancel(context.Background())
	_, err := p.rebuilder(t).Run(ctx, rebuild.ReplayOptions{Progress: func(done, total int64) {
		if done > total/2 {
			cancel() // killed half-way
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted replay: err = %v, want context.Canceled", err)
	}
	if after := p.everything(t); !reflect.DeepEqual(before, after) {
		t.Fatalf("an interrupted replay changed the live projection:\nbefore %+v\nafter  %+v", before, after)
	}
	// A replay killed outright leaves its schema behind; the next one
	// clears it.
	if _, err := p.pool.Exec(context.Background(), "CREATE SCHEMA votewatch_replay_stale; CREATE TABLE votewatch_replay_stale.x (i int)"); err != nil {
		t.Fatal(err)
	}
	rep, err := p.rebuilder(t).Run(context.Background(), rebuild.ReplayOptions{})
	if err != nil || !rep.Swapped {
		t.Fatalf("second replay: %v (swapped %v)", err, rep.Swapped)
	}
	var stale int
	if err := p.pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'votewatch\\_%'").Scan(&stale); err != nil || stale != 0 {
		t.Errorf("%d replay or retired schemas left behind (%v)", stale, err)
	}
	if after := p.everything(t); !reflect.DeepEqual(before, after) {
		t.Errorf("after the second replay:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestDLQReplayRepublishesWhatDecodesNow(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)

	// A vote dead-lettered by an older, stricter decoder: valid today.
	voter := e.voterIDs[230]
	p.produce(t, record("votes.dlq", voter, vote(99_999, voter, "c-cy")))

	code, out := p.cli(t, "dlq", "replay", "--dry-run")
	if code != 0 || !strings.Contains(out, "would re-publish") || !strings.Contains(out, "still invalid") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.VotesCast != e.counted {
		t.Fatalf("a dry run changed the count: %d, want %d", s.VotesCast, e.counted)
	}

	code, out = p.cli(t, "dlq", "replay")
	if code != 0 || !strings.Contains(out, "1 dead letters decode now") {
		t.Fatalf("dlq replay: exit %d\n%s", code, out)
	}
	// The re-publication changed what is published: an operator action.
	p.waitForAction(t, domain.ActionDLQReplay, 1)
	testutil.Eventually(t, 30*time.Second, "the re-published vote counted", func() (bool, string) {
		s = summaryResp{}
		p.get(t, "/api/v1/summary", &s)
		return s.VotesCast == e.counted+1, fmt.Sprintf("%+v", s)
	})
	// Running it again re-publishes nothing: its progress is committed.
	code, out = p.cli(t, "dlq", "replay")
	if code != 0 || !strings.Contains(out, "0 dead letters decode now") {
		t.Errorf("second dlq replay: exit %d\n%s", code, out)
	}
	p.waitQuiet(t, "test-projector")
	p.get(t, "/api/v1/summary", &s)
	if s.VotesCast != e.counted+1 {
		t.Errorf("votes cast %d after a second dlq replay, want %d", s.VotesCast, e.counted+1)
	}
}
