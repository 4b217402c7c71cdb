package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/projections"
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
func (c *BenchCmd) measureMemory(ctx context.Context, env *Env, pool *pgxpool.Pool, dsn string) ([]benchResult, error) {
	n := c.MemoryVotes
	if memoryCheckpoint(n) < 1 {
		return nil, fmt.Errorf("memory phase: --memory-votes %d: too few to compare two checkpoints", n)
	}
	var cleanup closers
	defer cleanup.run()
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+postgres.Schema+" CASCADE"); err != nil {
		return nil, fmt.Errorf("memory phase: reset database: %w", err)
	}
	if err := migrate(ctx, env.Log, pool); err != nil {
		return nil, err
	}
	broker, err := kafka.StartBroker(kafka.BrokerConfig{}, env.Log)
	if err != nil {
		return nil, err
	}
	cleanup.add(broker.Close)
	kcfg, _, err := openKafka(ctx, env.Log, KafkaFlags{Partitions: c.Partitions}, []string{broker.Addr()}, &cleanup)
	if err != nil {
		return nil, err
	}
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return nil, err
	}
	cleanup.add(func() { _ = pub.Close() })

	cfg := simulator.OneRaceElection()
	cfg.Turnout = 1
	election, err := simulator.Generate(cfg, n, time.Now())
	if err != nil {
		return nil, err
	}
	proc, err := c.startProjectorProcess(ctx, dsn, broker.Addr(), "bench-memory")
	if err != nil {
		return nil, err
	}
	defer proc.stop()
	results, err := projections.NewResults(pool)
	if err != nil {
		return nil, err
	}
	wait := func(cond func(projections.Summary) bool) error {
		for {
			s, err := results.Summary(ctx)
			if err != nil || cond(s) {
				return err
			}
			select {
			case <-proc.exited:
				return fmt.Errorf("memory phase: projector exited: %v", proc.err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	fmt.Fprintf(env.Stdout, "memory: projector process %d registering %d voters…\n", proc.cmd.Process.Pid, n)
	sim, err := simulator.New(simulator.Config{Election: election, Rate: 1, TopicSize: func(context.Context, string) (int64, error) { return 0, nil }}, pub, env.Log)
	if err != nil {
		return nil, err
	}
	if err := sim.Register(ctx); err != nil {
		return nil, err
	}
	if err := wait(func(s projections.Summary) bool { return s.RegisteredVoters >= int64(n) }); err != nil {
		return nil, err
	}
	_, base, err := procMemory(proc.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	// Registration has its own burst; reset the peak so the checkpoints
	// measure the voting alone.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", proc.cmd.Process.Pid), []byte("5"), 0); err != nil {
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
		if err := wait(func(s projections.Summary) bool { return s.VotesCast >= target }); err != nil {
			return nil, err
		}
		rss, peak, err := procMemory(proc.cmd.Process.Pid)
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

// projectorProcess is a `votewatch project` child of the benchmark.
type projectorProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended; err says how
	err    error
}

func (c *BenchCmd) startProjectorProcess(ctx context.Context, dsn, brokers, group string) (*projectorProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("memory phase: find own binary: %w", err)
	}
	f := c.liveFlags()
	cmd := exec.CommandContext(ctx, exe, "--log-level", "warn", "project",
		"--database-url", dsn, "--kafka-brokers", brokers, "--partitions", strconv.Itoa(int(c.Partitions)),
		"--group", group, "--writers", strconv.Itoa(f.Writers), "--linger", f.Linger.String())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("memory phase: start projector: %w", err)
	}
	p := &projectorProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	return p, nil
}

// runProjectorProcesses runs n `votewatch project` processes in one
// consumer group; done reports the first to exit, stop ends them all.
func (c *BenchCmd) runProjectorProcesses(ctx context.Context, pool *pgxpool.Pool, dsn string, n int) (*projections.Results, <-chan error, func(), error) {
	results, err := projections.NewResults(pool)
	if err != nil {
		return nil, nil, nil, err
	}
	var procs []*projectorProcess
	stop := func() {
		for _, p := range procs {
			p.stop()
		}
	}
	done := make(chan error, n)
	for range n {
		p, err := c.startProjectorProcess(ctx, dsn, c.brokers[0], c.liveFlags().Group)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		procs = append(procs, p)
		go func() { <-p.exited; done <- fmt.Errorf("projector process %d: %v", p.cmd.Process.Pid, p.err) }()
	}
	return results, done, stop, nil
}

// stop ends the projector with SIGTERM (it finishes the batch in flight)
// and waits for it.
func (p *projectorProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
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
