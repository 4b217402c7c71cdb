package outbox_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/internal/testutil"
)

// stationRig is an outbox that knows the votes topic's partitions, on a
// fresh database and broker of partitions partitions, and the publisher
// its relay forwards through.
func stationRig(t *testing.T, partitions int32, cfg outbox.Config) (kafka.Config, *kafka.Publisher, *outbox.Outbox, *pgxpool.Pool) {
	t.Helper()
	kcfg := testutil.Kafka(t, partitions)
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	cfg.VotePartitions = func() (int, error) { return pub.Partitions(domain.TopicVotes) }
	pool := testutil.Pool(t)
	box, err := outbox.New(pool, watermill.NopLogger{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kcfg, pub, box, pool
}

// runRelay forwards box's outbox through pub until the test ends.
func runRelay(t *testing.T, box *outbox.Outbox, pub *kafka.Publisher) {
	t.Helper()
	fwd, err := box.NewRelay(pub, outbox.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A station's close binds (issue 24 §2): it reaches the log after every
// vote the intake accepted from the station, as a close marker on every
// votes partition, with the station's close report and the operator
// action; from then on the station's votes are refused at once, and a
// second close writes nothing.
func TestAStationsCloseFollowsItsVotesOnEveryPartition(t *testing.T) {
	t.Parallel()
	const partitions = 3
	tally, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	kcfg, pub, box, _ := stationRig(t, partitions, outbox.Config{DigestKey: []byte(rand.Text() + rand.Text()), TallyKey: tally.Public()})
	ctx := context.Background()
	north, _ := domain.NewRegion("North")
	station, _ := domain.NewStation("north-1", north)
	castAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	var votes []domain.VoteCast
	for i := range 30 {
		v, err := domain.NewVote(fmt.Sprintf("01900000-0000-7000-8000-%012d", i+1), fmt.Sprintf("voter-%05d", i), "c-ada", castAt)
		if err != nil {
			t.Fatal(err)
		}
		votes = append(votes, domain.VoteCast{Vote: v.WithStation(station)})
	}
	if _, err := box.Accept(ctx, "north-1", votes); err != nil {
		t.Fatal(err)
	}

	report, err := domain.NewStationReport(station, true, time.Now())
	if err == nil {
		report, err = report.WithBallots(30)
	}
	if err != nil {
		t.Fatal(err)
	}
	if first, err := box.CloseStation(ctx, "north-1", report); err != nil || !first {
		t.Fatalf("close = %v, %v; want the first close", first, err)
	}
	if first, err := box.CloseStation(ctx, "north-1", report); err != nil || first {
		t.Fatalf("second close = %v, %v; want closed before, nothing written", first, err)
	}
	late, _ := domain.NewVote("01900000-0000-7000-8000-000000000999", "voter-late", "c-ada", castAt)
	if _, err := box.Accept(ctx, "north-1", []domain.VoteCast{{Vote: late.WithStation(station)}}); !errors.Is(err, domain.ErrStationClosed) {
		t.Fatalf("a vote after the close: %v, want ErrStationClosed", err)
	}
	// A retry of votes accepted before the close (their answer lost) is a
	// retry: no error, nothing new; with a new vote among them, refused.
	if n, err := box.Accept(ctx, "north-1", votes); err != nil || n != 0 {
		t.Fatalf("a retry after the close = %d, %v; want 0 new and no error", n, err)
	}
	if _, err := box.Accept(ctx, "north-1", []domain.VoteCast{votes[0], {Vote: late.WithStation(station)}}); !errors.Is(err, domain.ErrStationClosed) {
		t.Fatalf("a retry with a new vote after the close: %v, want ErrStationClosed", err)
	}
	// Another station is not closed by it.
	south, _ := domain.NewRegion("South")
	other, _ := domain.NewStation("south-1", south)
	v, _ := domain.NewVote("01900000-0000-7000-8000-000000000998", "voter-south", "c-ada", castAt)
	if _, err := box.Accept(ctx, "south-1", []domain.VoteCast{{Vote: v.WithStation(other)}}); err != nil {
		t.Fatalf("another station's vote: %v", err)
	}

	runRelay(t, box, pub)

	recs := testutil.ReadTopic(t, kcfg, domain.TopicVotes, 31+partitions, 60*time.Second)
	closedAt := map[int32]int64{}
	for _, r := range recs {
		if c, ok, err := domain.DecodeVotesControl(r.Value); ok {
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := c.(domain.StationClosed); !ok || len(m.StationIDs()) != 1 || m.StationIDs()[0] != "north-1" {
				t.Fatalf("control %s, want north-1's close marker", r.Value)
			}
			closedAt[r.Partition] = r.Offset
		}
	}
	if len(closedAt) != partitions {
		t.Fatalf("close markers on partitions %v, want one on each of %d", closedAt, partitions)
	}
	for _, r := range recs {
		if _, ok, _ := domain.DecodeVotesControl(r.Value); ok {
			continue
		}
		ev, err := domain.DecodeVoteCast(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Vote.Station().ID() == "north-1" && r.Offset > closedAt[r.Partition] {
			t.Errorf("vote %s of north-1 at %d@%d, after the close marker at %d", ev.Vote.ID(), r.Partition, r.Offset, closedAt[r.Partition])
		}
	}
	reports := testutil.ReadTopic(t, kcfg, domain.TopicStations, 1, 30*time.Second)
	if rep, err := domain.DecodeStationReported(reports[0].Value); err != nil || !rep.Closed() {
		t.Errorf("stations topic: %s (%v), want north-1's close report", reports[0].Value, err)
	} else if n, ok := rep.Ballots(); !ok || n != 30 {
		t.Errorf("close report's ballots = %d, %v; want 30", n, ok)
	}
	actions := testutil.ReadTopic(t, kcfg, domain.TopicOperatorActions, 1, 30*time.Second)
	if a, err := domain.DecodeOperatorActed(actions[0].Value); err != nil || a.Action() != domain.ActionStationClosed {
		t.Errorf("audit topic: %s (%v), want station_closed", actions[0].Value, err)
	}
}

// The intake reconciles both ways (issue 24 §3): once it serves stations,
// every station-stamped vote in the log must be one it accepted, with the
// same voter, contest, time and station by its keyed digest. A ghost
// station's vote written past the intake, and an accepted vote_id reused
// for another voter straight on the topic, are named; without the digest
// key only the ghost, whose vote_id the intake never saw, is.
func TestTheIntakeNamesVotesItNeverAccepted(t *testing.T) {
	t.Parallel()
	key := []byte(rand.Text() + rand.Text())
	kcfg, pub, box, pool := stationRig(t, 2, outbox.Config{DigestKey: key})
	ctx := context.Background()
	north, _ := domain.NewRegion("North")
	station, _ := domain.NewStation("north-1", north)
	if err := box.Serve(ctx, []domain.Station{station}); err != nil {
		t.Fatal(err)
	}
	castAt := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	var votes []domain.VoteCast
	for i := range 3 {
		v, _ := domain.NewVote(fmt.Sprintf("01900000-0000-7000-8000-%012d", i+1), fmt.Sprintf("voter-%d", i), "c-ada", castAt)
		votes = append(votes, domain.VoteCast{Vote: v.WithStation(station)})
	}
	if _, err := box.Accept(ctx, "north-1", votes); err != nil {
		t.Fatal(err)
	}
	// The outbox holds the stations' openings beside the votes until the
	// relay runs: Reconcile reads past them.
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = klog.Close() })
	if rec, err := outbox.Reconcile(ctx, pool, votesLog{kcfg, klog}, key); err != nil || rec.Pending != 3 {
		t.Fatalf("with the openings pending: %+v, %v; want 3 votes pending", rec, err)
	}
	runRelay(t, box, pub)

	// A row written past the intake, with no digest: not accepted under
	// the key.
	noDigest, _ := domain.NewVote("01900000-0000-7000-8000-000000000777", "voter-nodigest", "c-ada", castAt)
	if _, err := pool.Exec(ctx, "INSERT INTO intake.votes (vote_id, station, mac) VALUES ($1, 'north-1', NULL)", noDigest.ID()); err != nil {
		t.Fatal(err)
	}
	// A ghost station opened past the intake, so that the rule would count
	// its votes.
	ghostStation, _ := domain.NewStation("ghost-station", north)
	opening, _ := domain.NewStationOpened(castAt, ghostStation)
	if _, err := pub.PublishToEveryPartition(domain.TopicVotes, func(int) ([]byte, error) { return opening.MarshalJSON() }); err != nil {
		t.Fatal(err)
	}
	ghost, _ := domain.NewVote("01900000-0000-7000-8000-000000000666", "voter-ghost", "c-ada", castAt)
	forged, _ := domain.NewVote(votes[0].Vote.ID(), "voter-other", "c-ada", castAt)
	for _, v := range []domain.Vote{ghost.WithStation(ghostStation), forged.WithStation(station), noDigest.WithStation(station)} {
		msg, err := kafka.EventMessage(domain.VoteCast{Vote: v})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(domain.TopicVotes, msg); err != nil {
			t.Fatal(err)
		}
	}
	testutil.ReadTopic(t, kcfg, domain.TopicVotes, 2+3+2+3, 60*time.Second) // the openings, the votes, the ghost's openings, the three written past the intake

	rec, err := outbox.Reconcile(ctx, pool, votesLog{kcfg, klog}, key)
	if err != nil {
		t.Fatal(err)
	}
	named := strings.Join(rec.UnacceptedExamples, " ")
	if rec.Served != 1 || rec.Unaccepted != 3 || !strings.Contains(named, ghost.ID()) || !strings.Contains(named, forged.ID()) || !strings.Contains(named, noDigest.ID()) {
		t.Errorf("with the digest key: served %d, unaccepted %d %v; want 1 station and the ghost's, the forged and the undigested vote named", rec.Served, rec.Unaccepted, rec.UnacceptedExamples)
	}
	if rec.Unserved != 2 || !strings.Contains(rec.UnservedExamples[0], "ghost-station") {
		t.Errorf("unserved %d %v, want the ghost station's opening on both partitions", rec.Unserved, rec.UnservedExamples)
	}
	if rec.Lost != 0 {
		t.Errorf("lost %d %v, want none", rec.Lost, rec.Examples)
	}
	rec, err = outbox.Reconcile(ctx, pool, votesLog{kcfg, klog}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Unaccepted != 1 || !strings.Contains(rec.UnacceptedExamples[0], ghost.ID()) {
		t.Errorf("without the key: unaccepted %d %v, want the ghost's vote alone (the others' vote_ids are the intake's)", rec.Unaccepted, rec.UnacceptedExamples)
	}
}

// A station's first opening fixes its region (rule 7): an intake started
// again with the station under another region refuses to serve it, rather
// than take votes the rule would reject as unknown_station.
func TestServingAStationUnderAnotherRegionIsRefused(t *testing.T) {
	t.Parallel()
	_, _, box, _ := stationRig(t, 2, outbox.Config{})
	ctx := context.Background()
	north, _ := domain.NewRegion("North")
	south, _ := domain.NewRegion("South")
	first, _ := domain.NewStation("north-1", north)
	moved, _ := domain.NewStation("north-1", south)
	if err := box.Serve(ctx, []domain.Station{first}); err != nil {
		t.Fatal(err)
	}
	if err := box.Serve(ctx, []domain.Station{first}); err != nil {
		t.Fatalf("served again in the same region: %v", err)
	}
	err := box.Serve(ctx, []domain.Station{moved})
	if !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), "north-1") || !strings.Contains(err.Error(), "North") {
		t.Fatalf("served under another region: %v, want a refusal naming the station and its region", err)
	}
}
