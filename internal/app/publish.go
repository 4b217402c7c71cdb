package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
)

// The operator's commands that publish to the log: import and schedule.

// ReadFile reads the file at path with read.
func ReadFile[E any](path string, read func(r io.Reader, name string) ([]E, error)) ([]E, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	return read(f, path)
}

// PublishEvents publishes events to topic in batches, showing progress.
func PublishEvents[E kafka.Event](ctx context.Context, log *slog.Logger, out io.Writer, pub *kafka.Publisher, topic string, events []E) error {
	if len(events) == 0 {
		return nil
	}
	progress := NewProgress(log, out, "publishing "+topic, topic)
	const batchSize = 5000
	batch := make([]*message.Message, 0, batchSize)
	for i, ev := range events {
		m, err := kafka.EventMessage(ev)
		if err != nil {
			return err
		}
		batch = append(batch, m)
		if len(batch) == batchSize || i == len(events)-1 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := pub.Publish(topic, batch...); err != nil {
				return fmt.Errorf("import %s: %w", topic, err)
			}
			batch = batch[:0]
			progress(int64(i+1), int64(len(events)))
		}
	}
	return nil
}

// Schedule publishes schedule to every partition of the votes topic and
// records the action in the operator actions topic.
func Schedule(pub *kafka.Publisher, schedule domain.ElectionScheduled, out io.Writer) error {
	n, err := pub.PublishToEveryPartition(domain.TopicVotes, func(int) ([]byte, error) { return schedule.MarshalJSON() })
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("polls open %s, close %s", schedule.PollsOpen().Format(time.RFC3339), schedule.PollsClose().Format(time.RFC3339))
	if err := kafka.RecordAction(pub, domain.ActionSchedule, detail, "ok"); err != nil {
		return err
	}
	fmt.Fprintf(out, "polls open %s, close %s: on every votes partition (%d); votes after it in the log are checked against it\n",
		schedule.PollsOpen().Format(time.RFC3339), schedule.PollsClose().Format(time.RFC3339), n)
	return nil
}

// Roll is an election's register as read from CSV files.
type Roll struct {
	Candidates []domain.CandidateRegistered
	Voters     []domain.VoterRegistered
}

// ReadRoll reads and validates both files completely (either may be
// empty), so a bad row never leaves half a roll on the log; it lists every
// problem to out, one per line, for people fixing a spreadsheet.
func ReadRoll(candidatesPath, votersPath string, out io.Writer) (Roll, error) {
	var roll Roll
	var err error
	if candidatesPath != "" {
		roll.Candidates, err = ReadFile(candidatesPath, ReadCandidates)
	}
	if votersPath != "" {
		var verr error
		roll.Voters, verr = ReadFile(votersPath, ReadVoters)
		err = errors.Join(err, verr)
	}
	if err != nil {
		fmt.Fprintln(out, err)
		return Roll{}, errors.New("the files have problems (listed above); nothing was published")
	}
	fmt.Fprintf(out, "valid: %d candidates, %d voters\n", len(roll.Candidates), len(roll.Voters))
	return roll, nil
}

// PublishRoll publishes the candidates and the voters (registration comes
// before votes) and, with closeRegistration, the close markers; both are
// recorded in the operator actions topic, as they are whichever command does them.
func PublishRoll(ctx context.Context, log *slog.Logger, pub *kafka.Publisher, roll Roll, closeRegistration bool, out io.Writer) error {
	detail := fmt.Sprintf("%d candidates and %d voters", len(roll.Candidates), len(roll.Voters))
	err := PublishEvents(ctx, log, out, pub, domain.TopicCandidates, roll.Candidates)
	if err == nil {
		err = PublishEvents(ctx, log, out, pub, domain.TopicVoters, roll.Voters)
	}
	if err != nil {
		// Part of the roll may be on the log: that is on record too.
		_ = kafka.RecordAction(pub, domain.ActionImportRoll, detail, "failed: "+err.Error())
		return err
	}
	if err := kafka.RecordAction(pub, domain.ActionImportRoll, detail, "ok"); err != nil {
		return err
	}
	fmt.Fprintf(out, "published %s\n", detail)
	if closeRegistration {
		return CloseRegistration(pub, out)
	}
	return nil
}

// CloseRegistration publishes the registration close markers and records
// the action in the operator actions topic.
func CloseRegistration(pub *kafka.Publisher, out io.Writer) error {
	if err := kafka.CloseRegistration(pub, time.Now()); err != nil {
		_ = kafka.RecordAction(pub, domain.ActionCloseRegistration, "close markers on every registration partition", "failed: "+err.Error())
		return err
	}
	if err := kafka.RecordAction(pub, domain.ActionCloseRegistration, "close markers on every partition of contests, candidates and voters", "ok"); err != nil {
		return err
	}
	fmt.Fprintln(out, "registration closed: a close marker is on every partition of contests, candidates and voters")
	return nil
}

// ClosePolls records the close_polls operator action: the releasers then
// publish every figure exact (domain.PollsClosed). It is how an election
// without a schedule ends; a scheduled one closes at its polls_close.
func ClosePolls(pub *kafka.Publisher, out io.Writer) error {
	if err := kafka.RecordAction(pub, domain.ActionClosePolls, "polls closed: every published figure is exact from now on", "ok"); err != nil {
		return err
	}
	fmt.Fprintln(out, "polls closed: the published figures become exact once the projector has applied the action")
	return nil
}

// StationReporter publishes a station's reports to the stations topic and
// records each close in the operator actions topic (a close changes the election:
// reporting progress moves, and the station's count is final).
func StationReporter(pub *kafka.Publisher) func(context.Context, domain.StationReported) error {
	return func(_ context.Context, r domain.StationReported) error {
		msg, err := kafka.EventMessage(r)
		if err != nil {
			return err
		}
		if err := pub.Publish(domain.TopicStations, msg); err != nil {
			return err
		}
		if !r.Closed() {
			return nil
		}
		return kafka.RecordAction(pub, domain.ActionStationClosed, "station "+r.Station().ID()+" reported closed", "ok")
	}
}
