package bench

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
)

// measureGeneral projects the simulator's general election (a presidential
// race everywhere, Senate races and measures in some states) live, on a
// broker and a schema of its own, so the one-race figures above stay
// comparable with earlier runs. A ballot is several votes, one per contest
// open to its voter; the figure counts votes (messages), as live_votes does.
func (c *Bench) measureGeneral(ctx context.Context, env *Env, dsn string) (benchResult, error) {
	a := app.New(env.Log)
	defer a.Close()
	broker, err := a.StartBroker(kafka.BrokerConfig{})
	if err != nil {
		return benchResult{}, err
	}
	if err := a.OpenKafka(ctx, kafka.Config{Brokers: []string{broker.Addr()}, Partitions: c.Partitions}); err != nil {
		return benchResult{}, err
	}
	kcfg, klog := a.Kafka, a.KafkaLog
	pool, err := postgres.ConnectSchema(ctx, dsn, "bench_general", 16)
	if err != nil {
		return benchResult{}, err
	}
	a.OnClose(pool.Close)
	if err := app.Migrate(ctx, env.Log, pool); err != nil {
		return benchResult{}, err
	}

	cfg := simulator.DefaultElection()
	// About a quarter as many ballots as the one-race phase has votes: a
	// general ballot carries one to three votes.
	ballots := max(c.Votes/4, 1)
	election, err := simulator.Generate(cfg, int(math.Ceil(float64(ballots)/cfg.Turnout))+1, time.Now())
	if err != nil {
		return benchResult{}, err
	}
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return benchResult{}, err
	}
	a.OnClose(func() { _ = pub.Close() })
	sim, err := simulator.New(simulator.Config{Election: election, Rate: 1, TopicSize: func(context.Context, string) (int64, error) { return 0, nil }}, pub, env.Log)
	if err != nil {
		return benchResult{}, err
	}
	if err := sim.Register(ctx); err != nil {
		return benchResult{}, err
	}
	// The plan is drawn before timing starts, so the clock measures the
	// projector, not the simulator.
	plan := simulator.NewVotePlan(election, simulator.Faults{})
	var msgs []*message.Message
	for len(msgs) == 0 || plan.Done() < ballots {
		m, ok := plan.Next(time.Now())
		if !ok {
			break
		}
		msgs = append(msgs, m...)
	}
	total := int64(len(msgs))

	f := c.liveFlags()
	f.Group = "bench-general"
	results, done, stop, err := runProjector(ctx, env, pool, kcfg, klog, f)
	if err != nil {
		return benchResult{}, err
	}
	defer stop()
	type progress struct{ registered, cast int64 }
	read := func(ctx context.Context) (progress, error) {
		s, err := results.Summary(ctx)
		if err != nil {
			return progress{}, err
		}
		contests, err := results.Contests(ctx)
		if err != nil {
			return progress{}, err
		}
		p := progress{registered: s.RegisteredVoters}
		for _, k := range contests {
			p.cast += k.VotesCast
		}
		return p, nil
	}
	wait := func(cond func(progress) bool) (int64, error) {
		p, err := waitUntil(ctx, done, read, cond)
		return p.cast, err
	}
	fmt.Fprintf(env.Stdout, "general election: registering %d voters in %d contests…\n", len(election.Voters), len(election.Contests)+1)
	if _, err := wait(func(p progress) bool { return p.registered >= int64(len(election.Voters)) }); err != nil {
		return benchResult{}, err
	}
	fmt.Fprintf(env.Stdout, "general election: publishing %d ballots (%d votes)…\n", plan.Done(), total)
	pubErr := make(chan error, 1)
	go func() {
		for i := 0; i < len(msgs); i += 5000 {
			if err := pub.Publish(domain.TopicVotes, msgs[i:min(i+5000, len(msgs))]...); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()
	first, err := wait(func(p progress) bool { return p.cast > 0 })
	if err != nil {
		return benchResult{}, err
	}
	start := time.Now()
	if err := <-pubErr; err != nil {
		return benchResult{}, err
	}
	last, err := wait(func(p progress) bool { return p.cast >= total })
	if err != nil {
		return benchResult{}, err
	}
	elapsed := time.Since(start)
	if last != total {
		return benchResult{}, fmt.Errorf("general election: counted %d votes, published %d (no faults: every vote counts once)", last, total)
	}
	n := total - first
	return benchResult{Name: "general_votes", Count: n, Seconds: elapsed.Seconds(), PerSec: float64(n) / elapsed.Seconds(),
		Note: fmt.Sprintf("the general election (%d contests, %d ballots) projected live like live_votes, on a broker and schema of its own; every contest's votes", len(election.Contests)+1, plan.Done())}, nil
}
