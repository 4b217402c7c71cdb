package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/process"
	"github.com/votewatch/votewatch/projections/read"
)

// memoryCheckpoint is the first vote count at which the projector's memory
// is read (the last is --memory-votes): 1M, or a fifth of a smaller run.
func memoryCheckpoint(votes int) int64 {
	return int64(min(1_000_000, votes/5))
}

// measureMemory runs the projector as a process of its own (`votewatch
// project`, so the broker and the load generator do not count) on a fresh
// election with every registered voter voting once, and reads its resident
// set after the register, after 1M votes and after all of them. A projector
// that kept per-vote or per-voter state would grow with the count.
func (c *Bench) measureMemory(ctx context.Context, env *Env, pool *pgxpool.Pool, dsn string) ([]benchResult, error) {
	n := c.MemoryVotes
	if memoryCheckpoint(n) < 1 {
		return nil, fmt.Errorf("memory phase: --memory-votes %d: too few to compare two checkpoints", n)
	}
	a := app.New(env.Log)
	defer a.Close()
	if err := postgres.DropSchemas(ctx, pool, postgres.Schema); err != nil {
		return nil, fmt.Errorf("memory phase: reset database: %w", err)
	}
	if err := app.Migrate(ctx, env.Log, pool); err != nil {
		return nil, err
	}
	broker, err := a.StartBroker(kafka.BrokerConfig{})
	if err != nil {
		return nil, err
	}
	if err := a.OpenKafka(ctx, kafka.Config{Brokers: []string{broker.Addr()}, Partitions: c.Partitions}); err != nil {
		return nil, err
	}
	pub, err := a.OpenPublisher()
	if err != nil {
		return nil, err
	}

	cfg := simulator.OneRaceElection()
	cfg.Turnout = 1
	election, err := simulator.Generate(cfg, n, time.Now())
	if err != nil {
		return nil, err
	}
	proc, err := c.startProjectorProcess(dsn, broker.Addr(), "bench-memory")
	if err != nil {
		return nil, err
	}
	defer func() { _ = proc.Stop() }()
	results, err := read.NewResults(pool)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { <-proc.Exited(); done <- fmt.Errorf("memory phase: projector exited: %v", proc.Err()) }()
	wait := func(cond func(read.Summary) bool) error {
		_, err := waitUntil(ctx, done, results.Summary, cond)
		return err
	}

	fmt.Fprintf(env.Stdout, "memory: projector process %d registering %d voters…\n", proc.Pid(), n)
	sim, err := simulator.New(simulator.Config{Election: election, Rate: 1, TopicSize: func(context.Context, string) (int64, error) { return 0, nil }}, pub, env.Log)
	if err != nil {
		return nil, err
	}
	if err := sim.Register(ctx); err != nil {
		return nil, err
	}
	if err := wait(func(s read.Summary) bool { return s.RegisteredVoters >= int64(n) }); err != nil {
		return nil, err
	}
	_, base, err := procMemory(proc.Pid())
	if err != nil {
		return nil, err
	}
	// Registration has its own burst; reset the peak so the checkpoints
	// measure the voting alone.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", proc.Pid()), []byte("5"), 0); err != nil {
		return nil, fmt.Errorf("memory phase: reset peak RSS: %w", err)
	}

	fmt.Fprintf(env.Stdout, "memory: publishing %d votes…\n", n)
	plan := simulator.NewVotePlan(election, simulator.Faults{})
	pubErr := make(chan error, 1)
	go func() {
		batch := make([]*message.Message, 0, 5000)
		for {
			msgs, ok := plan.Next(time.Now())
			if !ok {
				break
			}
			if batch = append(batch, msgs...); len(batch) >= cap(batch) {
				if err := pub.Publish(domain.TopicVotes, batch...); err != nil {
					pubErr <- err
					return
				}
				batch = batch[:0]
			}
		}
		pubErr <- pub.Publish(domain.TopicVotes, batch...)
	}()

	var out []benchResult
	start := time.Now()
	prev, prevAt := int64(0), start
	for _, target := range []int64{memoryCheckpoint(n), int64(n)} {
		if err := wait(func(s read.Summary) bool { return s.VotesCast >= target }); err != nil {
			return nil, err
		}
		rss, peak, err := procMemory(proc.Pid())
		if err != nil {
			return nil, err
		}
		now := time.Now()
		out = append(out, benchResult{Name: fmt.Sprintf("memory_after_%d_votes", target), Count: target,
			Seconds: now.Sub(prevAt).Seconds(), PerSec: float64(target-prev) / now.Sub(prevAt).Seconds(),
			PeakRSSMiB: mib(peak),
			Note:       fmt.Sprintf("projector process: peak RSS while voting %.0f MiB, RSS now %.0f MiB (registration peak %.0f MiB)", mib(peak), mib(rss), mib(base))})
		prev, prevAt = target, now
	}
	if err := <-pubErr; err != nil {
		return nil, fmt.Errorf("memory phase: publish votes: %w", err)
	}
	return out, nil
}

// startProjectorProcess runs `votewatch project` as a child of the
// benchmark.
func (c *Bench) startProjectorProcess(dsn, brokers, group string) (*process.Process, error) {
	if c.Binary == "" {
		return nil, errors.New("bench: no votewatch binary to run projector processes")
	}
	f := c.liveFlags()
	p, err := process.Start(c.Binary, []string{"--log-level", "warn", "project",
		"--database-url", dsn, "--kafka-brokers", brokers, "--partitions", strconv.Itoa(int(c.Partitions)),
		"--group", group, "--writers", strconv.Itoa(f.Writers), "--linger", f.Linger.String()}, os.Stderr, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("start projector: %w", err)
	}
	return p, nil
}

// runProjectorProcesses runs n `votewatch project` processes in one
// consumer group; done reports the first to exit, stop ends them all (each
// finishes the batch in flight).
func (c *Bench) runProjectorProcesses(pool *pgxpool.Pool, dsn string, n int) (*read.Results, <-chan error, func(), error) {
	results, err := read.NewResults(pool)
	if err != nil {
		return nil, nil, nil, err
	}
	var procs []*process.Process
	stop := func() {
		for _, p := range procs {
			_ = p.Stop()
		}
	}
	done := make(chan error, n)
	for range n {
		p, err := c.startProjectorProcess(dsn, c.brokers[0], c.liveFlags().Group)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		procs = append(procs, p)
		go func() { <-p.Exited(); done <- fmt.Errorf("projector process %d: %v", p.Pid(), p.Err()) }()
	}
	return results, done, stop, nil
}

// procMemory reads a process's resident set and its peak, in bytes, from
// /proc (Linux).
func procMemory(pid int) (rss, peak int64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read process memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 2 {
			continue
		}
		kb, convErr := strconv.ParseInt(string(fields[1]), 10, 64)
		switch string(fields[0]) {
		case "VmRSS:":
			rss, err = kb*1024, convErr
		case "VmHWM:":
			peak, err = kb*1024, convErr
		}
		if err != nil {
			return 0, 0, fmt.Errorf("read process memory: %w", err)
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("read process memory: no VmRSS/VmHWM for process %d", pid)
	}
	return rss, peak, nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
