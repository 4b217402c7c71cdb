package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
)

// measureReplayCommand runs `votewatch replay` as a user runs it, as a
// child process of this binary against the benchmark's database and
// broker, and times it from the process's start to its exit: connecting,
// reading the whole log (registrations included), deciding, loading, the
// swap and the operator event that records it. Issue 22's whole-replay
// target is this figure over the COPY limit. The count is every event in
// the log when it starts (nothing is published meanwhile).
func (c *Bench) measureReplayCommand(ctx context.Context, env *Env, dsn string, klog *kafka.Log) (benchResult, error) {
	if c.Binary == "" {
		return benchResult{}, errors.New("bench: no votewatch binary to run the replay command")
	}
	var events int64
	for _, t := range domain.EventTopics {
		low, err := klog.LowWatermarks(ctx, t)
		if err != nil {
			return benchResult{}, err
		}
		high, err := klog.HighWatermarks(ctx, t)
		if err != nil {
			return benchResult{}, err
		}
		for p, h := range high {
			events += h - low[p]
		}
	}
	fmt.Fprintf(env.Stdout, "replay command: votewatch replay of %d events…\n", events)
	var out bytes.Buffer
	level := "warn"
	if env.Log.Enabled(ctx, slog.LevelDebug) {
		// Its steps' timings, with the bench's own debug lines.
		level = "debug"
	}
	cmd := exec.CommandContext(ctx, c.Binary, "--log-level", level, "replay", "--database-url", dsn, "--kafka-brokers", c.brokers[0])
	cmd.Stdout, cmd.Stderr = &out, &out
	if level == "debug" {
		cmd.Stderr = os.Stderr
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return benchResult{}, fmt.Errorf("replay command: %w\n%s", err, out.String())
	}
	el := time.Since(start)
	return benchResult{Name: "replay_command", Count: events, Seconds: el.Seconds(), PerSec: float64(events) / el.Seconds(),
		Note: "`votewatch replay` as a child process, process start to exit (registrations, votes, swap)"}, nil
}
