package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/rebuild"
	"github.com/votewatch/votewatch/projections/write"
)

// Config is what to measure (the bench command's flags).
type Config struct {
	Votes       int
	Quick       bool
	DatabaseURL string
	JSONOut     string
	Partitions  int32
	Live        bool
	Writers     int
	Linger      time.Duration
	MemoryVotes int
	Processes   int
	CPUProfile  string
	// Sealing measures live and replay with clear and with sealed votes
	// (measureSealing).
	Sealing bool
	// Binary is the votewatch executable the memory phase and --processes
	// run as children (`votewatch project`).
	Binary string
}

// Env is where the bench logs and reports.
type Env struct {
	Log    *slog.Logger
	Stdout io.Writer
}

// Bench is one run of the benchmark.
type Bench struct {
	Config
	brokers []string
}

// Run measures cfg; see (*Bench).Run.
func Run(ctx context.Context, env *Env, cfg Config) error {
	return (&Bench{Config: cfg}).Run(ctx, env)
}

// benchResult is one measured figure.
type benchResult struct {
	Name    string  `json:"name"`
	Count   int64   `json:"count"`
	Seconds float64 `json:"seconds"`
	PerSec  float64 `json:"per_second"`
	Note    string  `json:"note,omitempty"`
	// PeakRSSMiB is set by the memory phase.
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
}

// Run publishes an election to an embedded broker and measures, in one run
// on the same data: the live projector, the naive one-transaction-per-message
// baseline, freshness and read API load while votes flow, the rate at which
// this PostgreSQL COPYs the ballot rows (the ceiling for the projection's
// writes) and a full replay.
func (c *Bench) Run(ctx context.Context, env *Env) error {
	log := env.Log
	if c.Quick {
		c.Votes = 50_000
	}
	a := app.New(log)
	defer a.Close()

	dsn := c.DatabaseURL
	if dsn == "" {
		dir, err := os.MkdirTemp("", "votewatch-bench-")
		if err != nil {
			return err
		}
		_ = os.Chmod(dir, 0o755)
		a.OnClose(func() { _ = os.RemoveAll(dir) })
		cluster, err := postgres.StartCluster(ctx, postgres.ClusterConfig{Dir: dir, Logger: log})
		if err != nil {
			return err
		}
		a.OnClose(func() { _ = cluster.Stop(context.Background()) })
		dsn = cluster.DSN()
	}
	pool, err := postgres.Connect(ctx, dsn, 8)
	if err != nil {
		return err
	}
	a.OnClose(pool.Close)
	if err := postgres.DropSchemas(ctx, pool, postgres.Schema, "bench"); err != nil {
		return fmt.Errorf("reset benchmark database: %w", err)
	}
	if err := app.Migrate(ctx, log, pool); err != nil {
		return err
	}
	broker, err := kafka.StartBroker(kafka.BrokerConfig{}, log)
	if err != nil {
		return err
	}
	a.OnClose(broker.Close)
	c.brokers = []string{broker.Addr()}
	if err := a.OpenKafka(ctx, kafka.Config{Brokers: c.brokers, Partitions: c.Partitions}); err != nil {
		return err
	}
	kcfg, klog := a.Kafka, a.KafkaLog

	cfg := simulator.OneRaceElection()
	// Extra voters vote during the freshness and read phases.
	extra := 10_000*int(c.phase().Seconds()) + 50_000*int(c.burst().Seconds()+1) + 2_000*int(2*c.phase().Seconds())
	voters := int(math.Ceil(float64(c.Votes+extra)/cfg.Turnout)) + 1
	election, err := simulator.Generate(cfg, voters, time.Now())
	if err != nil {
		return err
	}
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return err
	}
	a.OnClose(func() { _ = pub.Close() })
	sim, err := simulator.New(simulator.Config{Election: election, Rate: 1, TopicSize: func(context.Context, string) (int64, error) { return 0, nil }}, pub, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "publishing %d voters and %d votes…\n", voters, c.Votes)
	if err := sim.Register(ctx); err != nil {
		return err
	}
	region := map[string]string{}
	for _, v := range election.Voters {
		region[v.Voter.ID()] = v.Voter.Region().String()
	}
	plan := simulator.NewVotePlan(election, simulator.Faults{})
	// The votes' payloads, turned into the COPY limit's rows only after the
	// live phase: decoding them while it runs would take CPU from the path
	// measured.
	payloads := make([][]byte, 0, c.Votes)
	publishVotes := func() error {
		batch := make([]*message.Message, 0, 5000)
		for len(payloads) < c.Votes {
			msgs, ok := plan.Next(time.Now())
			if !ok {
				break
			}
			payloads = append(payloads, msgs[0].Payload)
			batch = append(batch, msgs...)
			if len(batch) >= 5000 {
				if err := pub.Publish(domain.TopicVotes, batch...); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		return pub.Publish(domain.TopicVotes, batch...)
	}

	var results []benchResult
	var extraCounted int64
	if c.Live {
		r, err := c.measureLive(ctx, env, pool, dsn, kcfg, klog, int64(voters), publishVotes)
		if err != nil {
			return err
		}
		results = append(results, r)
		// The ceiling right after the live phase, on the same votes: the
		// machine is shared, and live / ceiling is a target (issue 22),
		// so the two are measured as close together as they can be.
		ceiling, err := c.measureApplyCeiling(ctx, env, dsn, pool, kcfg, klog)
		if err != nil {
			return err
		}
		results = append(results, ceiling)
		naive, err := c.measureNaive(ctx, env, dsn, pool, kcfg, klog)
		if err != nil {
			return err
		}
		results = append(results, naive)
		// The consumers side by side, on the votes now in the log, and the
		// pipelined one again with the transparency log on: its cost.
		for _, run := range []struct {
			consumer string
			tree     bool
		}{{app.ConsumerPipelined, false}, {app.ConsumerWatermillKafka, false}, {app.ConsumerPipelined, true}} {
			r, err := c.measureConsumer(ctx, env, dsn, pool, kcfg, klog, run.consumer, run.tree)
			if err != nil {
				return err
			}
			results = append(results, r...)
		}
		general, err := c.measureGeneral(ctx, env, dsn)
		if err != nil {
			return err
		}
		results = append(results, general)
		more, err := c.measureReads(ctx, env, pool, klog, plan, pub)
		if err != nil {
			return err
		}
		results = append(results, more...)
		for _, m := range more {
			if m.Name == "freshness_votes" || m.Name == "freshness50k_votes" || m.Name == "read_votes" {
				extraCounted += m.Count
			}
		}
		// The replay below rebuilds into a fresh schema either way.
	} else if err := publishVotes(); err != nil {
		return err
	}
	if c.Sealing {
		sealing, err := c.measureSealing(ctx, env, dsn)
		if err != nil {
			return err
		}
		results = append(results, sealing...)
	}
	// 1. The ceiling: COPY the same ballot rows into a table with the same
	// key as ballots.
	rows := make([]write.CeilingBallot, 0, len(payloads))
	for _, payload := range payloads {
		ev, err := domain.DecodeVoteCast(payload)
		if err != nil {
			return err
		}
		v := ev.Vote
		id, _ := uuid.Parse(v.ID())
		rows = append(rows, write.CeilingBallot{VoterID: v.VoterID(), VoteID: id, Region: region[v.VoterID()], CastAt: v.CastAt()})
	}
	// One COPY lasts about a second, the replays many: a single sample
	// says more about that second's load from elsewhere than about the
	// database. So it is measured three times, before, between and after
	// the replays, and the median is the yardstick.
	var copies []time.Duration
	var copied int64
	measureCopy := func() error {
		if err := postgres.DropSchemas(ctx, pool, "bench"); err != nil {
			return err
		}
		start := time.Now()
		n, err := write.CopyBallotsCeiling(ctx, pool, postgres.Schema, "bench", rows)
		if err != nil {
			return err
		}
		copies, copied = append(copies, time.Since(start)), n
		return nil
	}
	if err := measureCopy(); err != nil {
		return err
	}

	// 2. A full replay of the election from the log.
	rb, err := app.NewRebuilder(log, pool, dsn, kcfg, klog)
	if err != nil {
		return err
	}
	runtime.GC()
	// Without the live phase, the profile is the replay's.
	stopProfile := func() {}
	if c.CPUProfile != "" && !c.Live {
		if stopProfile, err = startCPUProfile(c.CPUProfile); err != nil {
			return err
		}
	}
	rep, err := rb.Run(ctx, rebuild.ReplayOptions{Mode: rebuild.ReplaySwap})
	stopProfile()
	if err != nil {
		return err
	}
	results = append(results,
		benchResult{Name: "replay_votes", Count: rep.BulkVotes, Seconds: rep.BulkVoteTime.Seconds(), PerSec: float64(rep.BulkVotes) / rep.BulkVoteTime.Seconds(),
			Note: "votes read from Kafka, decoded, decided and COPYed, every tally written"},
		benchResult{Name: "replay_total", Count: rep.EventsRead[domain.TopicCandidates] + rep.EventsRead[domain.TopicVoters] + rep.EventsRead[domain.TopicVotes],
			Seconds: rep.Duration.Seconds(), PerSec: rep.Rate(), Note: "every event (voters too), schema creation to swap"},
	)
	if want := int64(len(rows)) + extraCounted; rep.Ballots != want {
		return fmt.Errorf("replay counted %d votes, want %d", rep.Ballots, want)
	}
	if err := measureCopy(); err != nil {
		return err
	}
	// 3. The whole `votewatch replay` command, as a user runs it.
	if c.Binary != "" {
		cmdResult, err := c.measureReplayCommand(ctx, env, dsn, klog)
		if err != nil {
			return err
		}
		results = append(results, cmdResult)
		totals, err := read.NewResults(pool)
		if err != nil {
			return err
		}
		sum, err := totals.Summary(ctx)
		if err != nil {
			return err
		}
		if want := int64(len(rows)) + extraCounted; sum.VotesCast != want {
			return fmt.Errorf("the replay command counted %d votes, want %d", sum.VotesCast, want)
		}
	}
	if err := measureCopy(); err != nil {
		return err
	}
	var samples []string
	for _, d := range copies {
		samples = append(samples, fmt.Sprintf("%.0f", float64(copied)/d.Seconds()))
	}
	slices.Sort(copies)
	copyTime := copies[len(copies)/2]
	results = append(results, benchResult{Name: "copy_limit", Count: copied, Seconds: copyTime.Seconds(), PerSec: float64(copied) / copyTime.Seconds(),
		Note: fmt.Sprintf("COPY of the ballot rows into a table with ballots' indexes: the median of %s rows/s (before, between and after the replays)", strings.Join(samples, ", "))})

	if c.MemoryVotes > 0 && !c.Quick {
		mem, err := c.measureMemory(ctx, env, pool, dsn)
		if err != nil {
			return err
		}
		results = append(results, mem...)
	}

	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nmeasure\tcount\tseconds\tper second\tnote")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%s\n", r.Name, r.Count, r.Seconds, r.PerSec, r.Note)
	}
	byName := map[string]benchResult{}
	for _, r := range results {
		byName[r.Name] = r
	}
	ratio := byName["replay_votes"].PerSec / byName["copy_limit"].PerSec
	if live, ok := byName["live_votes"]; ok {
		fmt.Fprintf(tw, "live votes / COPY limit\t\t\t%.2f\t\n", live.PerSec/byName["copy_limit"].PerSec)
		fmt.Fprintf(tw, "live votes / naive baseline\t\t\t%.1f\t\n", live.PerSec/byName["naive_votes"].PerSec)
		fmt.Fprintf(tw, "consumer pipelined / watermill-kafka\t\t\t%.2f\t\n", byName["consumer_pipelined"].PerSec/byName["consumer_watermill_kafka"].PerSec)
		fmt.Fprintf(tw, "general election votes / one-race live votes\t\t\t%.2f\t\n", byName["general_votes"].PerSec/live.PerSec)
		fmt.Fprintf(tw, "live votes / apply ceiling\t\t\t%.2f\t\n", live.PerSec/byName["apply_ceiling"].PerSec)
		fmt.Fprintf(tw, "consumer pipelined / apply ceiling\t\t\t%.2f\t\n", byName["consumer_pipelined"].PerSec/byName["apply_ceiling"].PerSec)
		fmt.Fprintf(tw, "consumer pipelined with / without the transparency log\t\t\t%.2f\t\n", byName["consumer_pipelined_tree"].PerSec/byName["consumer_pipelined"].PerSec)
	}
	fmt.Fprintf(tw, "replay votes / COPY limit\t\t\t%.2f\t\n", ratio)
	targets := c.targets(byName)
	for _, t := range targets {
		met := "not met"
		if t.Met {
			met = "met"
		}
		fmt.Fprintf(tw, "TARGET %s\t\t\t%.2f\t≥ %.1f: %s\n", t.Name, t.Ratio, t.Target, met)
	}
	if c.Sealing {
		fmt.Fprintf(tw, "live sealed / clear\t\t\t%.2f\t\n", byName["sealing_live_sealed"].PerSec/byName["sealing_live_clear"].PerSec)
		fmt.Fprintf(tw, "replay sealed / clear\t\t\t%.2f\t\n", byName["sealing_replay_sealed"].PerSec/byName["sealing_replay_clear"].PerSec)
	}
	if c.MemoryVotes > 0 && !c.Quick {
		last := results[len(results)-1]
		first := results[len(results)-2]
		fmt.Fprintf(tw, "projector peak RSS after %d / after %d votes\t\t\t%.2f\t\n", last.Count, first.Count, last.PeakRSSMiB/first.PeakRSSMiB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if c.JSONOut != "" {
		out, _ := json.MarshalIndent(map[string]any{"votes": c.Votes, "cpus": runtime.NumCPU(), "results": results, "replay_over_copy": ratio, "targets": targets}, "", "  ")
		if err := os.WriteFile(c.JSONOut, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// measureLive runs the live projector: it projects the register first
// (registration closes before polls open), then the votes are published as
// fast as the broker takes them and timed from the first counted vote to
// the last.
func (c *Bench) measureLive(ctx context.Context, env *Env, pool *pgxpool.Pool, dsn string, kcfg kafka.Config, klog *kafka.Log, voters int64, publishVotes func() error) (benchResult, error) {
	var results *read.Results
	var done <-chan error
	var stop func()
	var err error
	where := "in this process"
	if c.Processes > 0 {
		results, done, stop, err = c.runProjectorProcesses(pool, dsn, c.Processes)
		where = fmt.Sprintf("in %d projector processes", c.Processes)
	} else {
		results, done, stop, err = runProjector(ctx, env, pool, kcfg, klog, c.liveFlags())
	}
	if err != nil {
		return benchResult{}, err
	}
	defer stop()
	wait := func(cond func(read.Summary) bool) (read.Summary, error) {
		return waitUntil(ctx, done, results.Summary, cond)
	}
	fmt.Fprintf(env.Stdout, "live projector: registering %d voters…\n", voters)
	if _, err := wait(func(s read.Summary) bool { return s.RegisteredVoters >= voters }); err != nil {
		return benchResult{}, err
	}
	fmt.Fprintf(env.Stdout, "live projector: polls open, publishing %d votes…\n", c.Votes)
	if c.CPUProfile != "" {
		stopProfile, err := startCPUProfile(c.CPUProfile)
		if err != nil {
			return benchResult{}, err
		}
		defer stopProfile()
	}
	pubErr := make(chan error, 1)
	go func() { pubErr <- publishVotes() }()
	first, err := wait(func(s read.Summary) bool { return s.VotesCast > 0 })
	if err != nil {
		return benchResult{}, err
	}
	start := time.Now()
	if err := <-pubErr; err != nil {
		return benchResult{}, err
	}
	// When the publisher finished: if it is close to the end, the
	// publisher, not the projector, set the pace.
	published := time.Since(start)
	if _, err := wait(func(s read.Summary) bool { return s.VotesCast >= int64(c.Votes) }); err != nil {
		return benchResult{}, err
	}
	elapsed := time.Since(start)
	n := int64(c.Votes) - first.VotesCast
	return benchResult{Name: "live_votes", Count: n, Seconds: elapsed.Seconds(), PerSec: float64(n) / elapsed.Seconds(),
		Note: fmt.Sprintf("Kafka → Watermill (%d partitions, pipelined consumer) → group commit %s, durable, ack after commit; the publisher was done %.2f s after the first vote was counted",
			c.Partitions, where, published.Seconds())}, nil
}

// waitUntil reads every 10 ms until cond holds, and fails if the
// projector reports on done (it stopped) or ctx ends first. Every phase of
// the bench waits for its projector this way.
func waitUntil[T any](ctx context.Context, done <-chan error, read func(context.Context) (T, error), cond func(T) bool) (T, error) {
	for {
		v, err := read(ctx)
		if err != nil || cond(v) {
			return v, err
		}
		select {
		case err := <-done:
			return v, fmt.Errorf("projector stopped: %v", err)
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// startCPUProfile profiles this process (broker, publisher, projector)
// until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// liveFlags configure the benchmark's live projector.
func (c *Bench) liveFlags() app.ProjectorConfig {
	return app.ProjectorConfig{Group: "bench-live", BatchSize: 1000, Writers: c.Writers, Linger: c.Linger, SessionTimeout: 10 * time.Second, Consumer: app.ConsumerPipelined, MinCell: 1}
}

// runProjector runs a projector over pool in the background; stop ends it
// and waits. done reports if it stops by itself.
func runProjector(ctx context.Context, env *Env, pool *pgxpool.Pool, kcfg kafka.Config, klog *kafka.Log, f app.ProjectorConfig) (*read.Results, <-chan error, func(), error) {
	proj, err := app.NewProjectorService(env.Log, pool, kcfg, f, klog, metrics.New())
	if err != nil {
		return nil, nil, nil, err
	}
	results, err := read.NewResults(pool)
	if err != nil {
		proj.Close()
		return nil, nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() { err := proj.Run(runCtx); done <- err; close(finished) }()
	return results, done, func() { cancel(); <-finished }, nil
}

// target is one of issue 22's speed targets: a ratio of two figures of
// this run.
type target struct {
	Name   string  `json:"name"`
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target"`
	Met    bool    `json:"met"`
}

// targets computes issue 22's ratios from this run's figures: live over
// the apply ceiling, live over COPY, and the whole replay command over
// COPY (events per second, registrations included). A ratio whose
// figures this run did not measure is left out.
func (c *Bench) targets(byName map[string]benchResult) []target {
	var out []target
	add := func(name, num, den string, want float64) {
		n, okN := byName[num]
		d, okD := byName[den]
		if !okN || !okD || d.PerSec == 0 {
			return
		}
		r := n.PerSec / d.PerSec
		out = append(out, target{Name: name, Ratio: r, Target: want, Met: r >= want})
	}
	add("live votes / apply ceiling", "live_votes", "apply_ceiling", 0.8)
	add("live votes / COPY limit", "live_votes", "copy_limit", 0.3)
	add("whole replay command (events/s) / COPY limit", "replay_command", "copy_limit", 0.5)
	return out
}
