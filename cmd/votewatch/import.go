package main

import (
	"context"
	"errors"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
)

// ImportCmd loads an election's candidates and voter roll from CSV files
// into the event log, where the projector registers them.
type ImportCmd struct {
	Candidates string `help:"Candidates CSV: header candidate_id,name[,party,biography,platform,photo_url]; an empty party is a candidate of no party (an independent, a measure's choice)." type:"existingfile"`
	Voters     string `help:"Voter roll CSV: header voter_id,name,gender,birth_date,region,city,registered_at." type:"existingfile"`
	FromSeedDB string `help:"Instead of CSV: a realtime_voting database (PostgreSQL URL) whose candidates table, and voters table if any, to register; only what the log does not hold yet is published, so running it again publishes nothing. Without KAFKA_BROKERS: the demo's broker, 127.0.0.1:9092." name:"from-seed-db" env:"VOTEWATCH_SEED_DB"`
	DryRun     bool   `help:"Validate the files and report; publish nothing."`
	Close      bool   `name:"close-registration" help:"Then close registration (publish the close markers): later registrations are refused, and votes for anyone not registered are rejected."`
	KafkaFlags
}

// Run validates both files completely before publishing anything, so a bad
// row never leaves half a roll on the log, then publishes the candidates
// and the voters (registration comes before votes).
func (c *ImportCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	if c.FromSeedDB != "" {
		return c.fromSeedDB(ctx, env, a)
	}
	if c.Candidates == "" && c.Voters == "" {
		return errors.New("nothing to import: give --candidates, --voters or both, or --from-seed-db")
	}
	roll, err := app.ReadRoll(c.Candidates, c.Voters, env.Stdout)
	if err != nil || c.DryRun {
		return err
	}
	return c.publish(ctx, a, func(pub *kafka.Publisher) error {
		return app.PublishRoll(ctx, env.Log, pub, roll, c.Close, env.Stdout)
	})
}

// Run publishes the registration close markers.
func (c *CloseCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	return c.publish(ctx, a, func(pub *kafka.Publisher) error { return app.CloseRegistration(pub, env.Stdout) })
}

// Run records the close_polls operator action.
func (c *ClosePollsCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	return c.publish(ctx, a, func(pub *kafka.Publisher) error { return app.ClosePolls(pub, env.Stdout) })
}

// Run publishes the schedule to every partition of the votes topic.
func (c *ScheduleCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	schedule, err := domain.NewElectionScheduled(c.PollsOpen, c.PollsClose)
	if err != nil {
		return err
	}
	return c.publish(ctx, a, func(pub *kafka.Publisher) error { return app.Schedule(pub, schedule, env.Stdout) })
}

// publish runs fn with a's publisher connected to KAFKA_BROKERS (the
// contract's missing topics created).
func (f KafkaFlags) publish(ctx context.Context, a *app.App, fn func(*kafka.Publisher) error) error {
	if err := f.openKafka(ctx, a, f.KafkaBrokers); err != nil {
		return err
	}
	pub, err := a.OpenPublisher()
	if err != nil {
		return err
	}
	return fn(pub)
}

// demoBroker is where `votewatch demo` serves Kafka by default.
const demoBroker = "127.0.0.1:9092"

// fromSeedDB registers a realtime_voting database's candidates and voters
// (contract rtv1): every row is validated first, then only what the log
// does not hold yet is published, and the action is recorded.
func (c *ImportCmd) fromSeedDB(ctx context.Context, env *Env, a *app.App) error {
	if c.Candidates != "" || c.Voters != "" {
		return errors.New("--from-seed-db reads the candidates and voters from that database: give no CSV files with it")
	}
	roll, err := app.ReadSeedRoll(ctx, c.FromSeedDB, time.Now(), env.Stdout)
	if err != nil || c.DryRun {
		return err
	}
	if len(c.KafkaBrokers) == 0 {
		// As the maintenance commands do: attach to a running demo, which
		// is where someone trying realtime_voting's scripts starts.
		c.KafkaBrokers = []string{demoBroker}
	}
	return c.publish(ctx, a, func(pub *kafka.Publisher) error {
		if err := app.PublishSeedRoll(ctx, env.Log, pub, a.Kafka, a.KafkaLog, roll, env.Stdout); err != nil {
			return err
		}
		if c.Close {
			return app.CloseRegistration(pub, env.Stdout)
		}
		return nil
	})
}
