package systemtest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/audit"
)

// groupAtLogEnd waits until the in-process projector's consumer groups have
// committed the end of every event topic: the state in which a projection
// that trusted the group would resume with nothing to read.
func groupAtLogEnd(t *testing.T, p *pipeline) {
	t.Helper()
	for _, topic := range []string{"candidates", "voters", "votes"} {
		testutil.Eventually(t, 30*time.Second, "group test-projector."+topic+" committed at the log's end", func() (bool, string) {
			ends, err := p.klog.HighWatermarks(context.Background(), topic)
			if err != nil {
				return false, err.Error()
			}
			committed, err := kafka.CommittedOffsets(context.Background(), p.kafka, "test-projector."+topic, topic)
			if err != nil {
				return false, err.Error()
			}
			for part, end := range ends {
				if committed[part] != end {
					return false, fmt.Sprintf("partition %d committed %d of %d", part, committed[part], end)
				}
			}
			return true, ""
		})
	}
}

// caughtUp waits until p's projection has applied every message now in
// the log.
func caughtUp(t *testing.T, p *pipeline) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, "the projection caught up with the log", func() (bool, string) {
		for _, topic := range []string{"candidates", "voters", "votes"} {
			ends, err := p.klog.HighWatermarks(context.Background(), topic)
			if err != nil {
				return false, err.Error()
			}
			all, err := audit.AllAppliedOffsets(context.Background(), p.pool)
			if err != nil {
				return false, err.Error()
			}
			applied := all[topic]
			for part, end := range ends {
				if applied[part] != end {
					return false, fmt.Sprintf("%s/%d applied to %d of %d", topic, part, applied[part], end)
				}
			}
		}
		return true, ""
	})
}

// copyDatabase copies the database of dsn (no one may be connected to it)
// as a snapshot, dropped when the test ends, and returns the copy's URL.
func copyDatabase(t *testing.T, dsn, suffix string) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	source := cfg.Database
	name := source + "_" + suffix
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The closed pools' sessions may take a moment to end on the server.
	testutil.Eventually(t, 10*time.Second, "a snapshot of "+source, func() (bool, string) {
		_, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, source))
		return err == nil, fmt.Sprint(err)
	})
	t.Cleanup(func() {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// A projection database recreated empty, against a broker whose consumer
// groups have committed the end of the log, must still count the whole log:
// the projection's offsets (none) decide where it resumes, not the group's.
func TestEmptyProjectionResumesFromTheLogNotTheGroup(t *testing.T) {
	broker := testutil.Kafka(t, 8)
	e := buildElection()
	t.Run("first projection", func(t *testing.T) {
		p := startSystem(t, system{partitions: 8, projector: true, kafka: &broker})
		p.produceElection(t, e)
		p.waitFor(t, e, 0)
		groupAtLogEnd(t, p)
	})

	p := startSystem(t, system{partitions: 8, projector: true, kafka: &broker})
	p.waitFor(t, e, 0)
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
	if code, out := p.cli(t, "verify"); code != 0 {
		t.Errorf("verify = %d:\n%s", code, out)
	}
}

// A projection database restored from an older snapshot, while the groups
// have committed far past it, must count everything after the snapshot
// too: it resumes from the offsets stored with its tallies.
func TestRestoredProjectionResumesFromItsOwnOffsets(t *testing.T) {
	testRestoredProjection(t, 0)
}

// The same with three projectors joining one after another: every
// rebalance resumes the partitions it moves from the projection's offsets
// too, whichever member's commit (rewound or not yet) the group holds.
func TestRestoredProjectionResumesUnderRebalances(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	testRestoredProjection(t, 2)
}

// testRestoredProjection restores a snapshot and lets the in-process
// projector and that many projector processes catch up on it.
func testRestoredProjection(t *testing.T, processes int) {
	broker := testutil.Kafka(t, 8)
	e := buildElection()
	firstVote := len(e.records)
	for i, r := range e.records {
		if r.Topic == "votes" {
			firstVote = i
			break
		}
	}
	half := firstVote + (len(e.records)-firstVote)/2
	before, after := e.records[:half], e.records[half:]

	dsn := testutil.DatabaseURL(t)
	t.Run("until the snapshot", func(t *testing.T) {
		p := startSystem(t, system{partitions: 8, projector: true, kafka: &broker, dsn: dsn})
		p.produce(t, before...)
		caughtUp(t, p)
	})
	snapshot := copyDatabase(t, dsn, "snapshot")
	t.Run("after the snapshot", func(t *testing.T) {
		p := startSystem(t, system{partitions: 8, projector: true, kafka: &broker, dsn: dsn})
		p.produce(t, after...)
		p.closeRegistration(t)
		p.waitFor(t, e, 0)
		groupAtLogEnd(t, p)
	})

	// The database is restored to the snapshot, half an election behind
	// the groups' commits.
	for range processes {
		testutil.Start(t, "--log-level", "warn", "project", "--min-cell", "1",
			"--database-url", snapshot, "--kafka-brokers", strings.Join(broker.Brokers, ","),
			"--group", "test-projector", "--session-timeout", "6s")
	}
	p := startSystem(t, system{partitions: 8, projector: true, kafka: &broker, dsn: snapshot})
	p.waitFor(t, e, 0)
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
	if code, out := p.cli(t, "verify"); code != 0 {
		t.Errorf("verify = %d:\n%s", code, out)
	}
}
