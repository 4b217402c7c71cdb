package systemtest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/testutil"
)

// Every vote arrives two or three times (a producer retrying), and then the
// consumer group is reset to the beginning of the log so everything is
// delivered again: the tallies do not move.
func TestRedeliveryStormChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	p := startSystem(t, system{partitions: 8})
	const group = "test-storm"
	project := func() *testutil.Process {
		return testutil.Start(t, "--log-level", "warn", "project", "--min-cell", "1",
			"--database-url", p.dsn, "--kafka-brokers", strings.Join(p.kafka.Brokers, ","), "--group", group)
	}
	e, err := simulator.Generate(simulator.OneRaceElection(), 8_000, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	publishElection(t, p.kafka, e, nil, true, 0)
	plan := simulator.NewVotePlan(e, simulator.Faults{})
	pub, err := kafka.NewPublisher(p.kafka)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const votes = 5_000
	var batch []*message.Message
	for i := range votes {
		msgs, _ := plan.Next(time.Now())
		for range 2 + i%2 { // two or three copies of the same message
			batch = append(batch, msgs[0].Copy())
		}
	}
	if err := pub.Publish(domain.TopicVotes, batch...); err != nil {
		t.Fatal(err)
	}
	proc := project()
	waitForVotes(t, p, votes)
	before := p.everything(t)
	if got := before.Summary.Rejected["duplicate_voter"]; got != 0 {
		t.Fatalf("redelivered copies counted as %d second votes", got)
	}

	// Reset the group to the start of every topic and let it re-read all.
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ends := map[string]map[int32]int64{}
	for _, topic := range []string{domain.TopicCandidates, domain.TopicVoters, domain.TopicVotes} {
		if ends[topic], err = p.klog.HighWatermarks(ctx, topic); err != nil {
			t.Fatal(err)
		}
		zero := map[int32]int64{}
		for part := range ends[topic] {
			zero[part] = 0
		}
		if err := kafka.CommitOffsets(ctx, p.kafka, group+"."+topic, topic, zero); err != nil {
			t.Fatal(err)
		}
	}
	proc = project()
	testutil.Eventually(t, 60*time.Second, "the whole log delivered again", func() (bool, string) {
		for topic, end := range ends {
			at, err := kafka.CommittedOffsets(ctx, p.kafka, group+"."+topic, topic)
			if err != nil {
				return false, err.Error()
			}
			for part, e := range end {
				if at[part] < e {
					return false, fmt.Sprintf("%s/%d at %d of %d", topic, part, at[part], e)
				}
			}
		}
		return true, ""
	})
	after := p.everything(t)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("the redelivery storm changed the projection:\nbefore %+v\nafter  %+v", before, after)
	}
	if err := proc.Stop(); err != nil {
		t.Errorf("projector after SIGTERM: %v", err)
	}
}
