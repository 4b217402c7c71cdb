package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
)

// ImportCmd loads an election's candidates and voter roll from CSV files
// into the event log, where the projector registers them.
type ImportCmd struct {
	Candidates string `help:"Candidates CSV: header candidate_id,name,party[,biography,platform,photo_url]." type:"existingfile"`
	Voters     string `help:"Voter roll CSV: header voter_id,name,gender,birth_date,region,city,registered_at." type:"existingfile"`
	DryRun     bool   `help:"Validate the files and report; publish nothing."`
	Close      bool   `name:"close-registration" help:"Then close registration (publish the close markers): later registrations are refused, and votes for anyone not registered are rejected."`
	KafkaFlags
}

// Run validates both files completely before publishing anything, so a bad
// row never leaves half a roll on the log, then publishes the candidates
// and the voters (registration comes before votes).
func (c *ImportCmd) Run(ctx context.Context, env *Env) error {
	if c.Candidates == "" && c.Voters == "" {
		return errors.New("nothing to import: give --candidates, --voters or both")
	}
	var candidates []domain.CandidateRegistered
	var voters []domain.VoterRegistered
	var err error
	if c.Candidates != "" {
		candidates, err = readFile(c.Candidates, handlers.ReadCandidates)
	}
	if c.Voters != "" {
		var verr error
		voters, verr = readFile(c.Voters, handlers.ReadVoters)
		err = errors.Join(err, verr)
	}
	if err != nil {
		// One problem per line, for people fixing a spreadsheet.
		fmt.Fprintln(env.Stdout, err)
		return errors.New("the files have problems (listed above); nothing was published")
	}
	fmt.Fprintf(env.Stdout, "valid: %d candidates, %d voters\n", len(candidates), len(voters))
	if c.DryRun {
		return nil
	}
	a := app.New(env.Log)
	defer a.Close()
	pub, err := c.openPublisher(ctx, a)
	if err != nil {
		return err
	}
	if err := publishEvents(ctx, env, pub, domain.TopicCandidates, candidates); err != nil {
		return err
	}
	if err := publishEvents(ctx, env, pub, domain.TopicVoters, voters); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "published %d candidates and %d voters\n", len(candidates), len(voters))
	if c.Close {
		if err := kafka.CloseRegistration(pub, time.Now()); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, "registration closed")
	}
	return nil
}

// Run publishes the registration close markers.
func (c *CloseCmd) Run(ctx context.Context, env *Env) error {
	a := app.New(env.Log)
	defer a.Close()
	pub, err := c.openPublisher(ctx, a)
	if err != nil {
		return err
	}
	if err := kafka.CloseRegistration(pub, time.Now()); err != nil {
		_ = kafka.RecordAction(pub, domain.ActionCloseRegistration, "close markers on every registration partition", "failed: "+err.Error())
		return err
	}
	if err := kafka.RecordAction(pub, domain.ActionCloseRegistration, "close markers on every partition of contests, candidates and voters", "ok"); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "registration closed: a close marker is on every partition of contests, candidates and voters")
	return nil
}

func readFile[E any](path string, read func(r io.Reader, name string) ([]E, error)) ([]E, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer f.Close()
	return read(f, path)
}

// publishEvents publishes events to topic in batches, showing progress.
func publishEvents[E kafka.Event](ctx context.Context, env *Env, pub *kafka.Publisher, topic string, events []E) error {
	if len(events) == 0 {
		return nil
	}
	progress := newProgress(env, "publishing "+topic, topic)
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

// Run publishes the schedule to every partition of the votes topic.
func (c *ScheduleCmd) Run(ctx context.Context, env *Env) error {
	schedule, err := domain.NewElectionScheduled(c.PollsOpen, c.PollsClose)
	if err != nil {
		return err
	}
	a := app.New(env.Log)
	defer a.Close()
	pub, err := c.openPublisher(ctx, a)
	if err != nil {
		return err
	}
	n, err := pub.PublishToEveryPartition(domain.TopicVotes, func(int) ([]byte, error) { return schedule.MarshalJSON() })
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("polls open %s, close %s", schedule.PollsOpen().Format(time.RFC3339), schedule.PollsClose().Format(time.RFC3339))
	if err := kafka.RecordAction(pub, domain.ActionSchedule, detail, "ok"); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "polls open %s, close %s: on every votes partition (%d); votes after it in the log are checked against it\n",
		schedule.PollsOpen().Format(time.RFC3339), schedule.PollsClose().Format(time.RFC3339), n)
	return nil
}

// openPublisher connects a publisher to KAFKA_BROKERS (creating the
// contract's topics that are missing), closed with a.
func (f KafkaFlags) openPublisher(ctx context.Context, a *app.App) (*kafka.Publisher, error) {
	if len(f.KafkaBrokers) == 0 {
		return nil, errors.New("KAFKA_BROKERS is not set")
	}
	if err := f.openKafka(ctx, a, f.KafkaBrokers); err != nil {
		return nil, err
	}
	return a.OpenPublisher()
}
