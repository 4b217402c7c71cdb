package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/rebuild"
)

// The operator's maintenance commands (replay, verify, status), which
// report to a writer.

// Replay rebuilds the projection from the log into a fresh schema and
// swaps it in (or, with opt.Mode ReplayVerify, compares it with the live
// one), and reports to out. dsn is Pool's database.
func (a *App) Replay(ctx context.Context, dsn string, opt rebuild.ReplayOptions, out io.Writer) error {
	kcfg := a.Kafka
	rb, err := NewRebuilder(a.Log, a.Pool, dsn, kcfg, a.KafkaLog)
	if err != nil {
		return err
	}
	rb.OpenWith(a.Sealing.Opener)
	if opt.Progress == nil {
		opt.Progress = NewProgress(a.Log, out, "replaying events", "events")
	}
	rep, err := rb.Run(ctx, opt)
	if errors.Is(err, rebuild.ErrRootsDiffer) {
		fmt.Fprintf(out, "the rebuilt transparency trees differ from the live ones:\n  %s\n", strings.Join(rep.TreeDiffs, "\n  "))
	}
	if err != nil {
		return err
	}
	if rep.Swapped && len(rep.TreeDiffs) > 0 {
		if err := RecordAction(kcfg, domain.ActionAcceptDiff, fmt.Sprintf("swapped in %s although its transparency trees differ from the published ones: %s",
			rep.Schema, strings.Join(rep.TreeDiffs, "; "))); err != nil {
			return fmt.Errorf("the replay swapped over differing trees but its operator event was not recorded (record it by hand): %w", err)
		}
	}
	if rep.Swapped {
		// The projection readers see changed: an operator action.
		if err := RecordAction(kcfg, domain.ActionReplaySwap, fmt.Sprintf("rebuilt %s from the log (%d events, %d votes counted) and swapped it in",
			rep.Schema, rep.EventsRead[domain.TopicVotes]+rep.EventsRead[domain.TopicVoters]+rep.EventsRead[domain.TopicCandidates], rep.Ballots)); err != nil {
			return fmt.Errorf("the replay swapped but its operator event was not recorded (record it by hand): %w", err)
		}
	}
	printReplayReport(out, rep)
	if opt.Mode == rebuild.ReplayVerify && len(rep.Differences) > 0 {
		fmt.Fprint(out, projections.FormatDiffs(rep.Differences))
		return errors.New("the rebuilt projection differs from the live one")
	}
	if opt.Mode == rebuild.ReplayVerify && len(rep.TreeDiffs) > 0 {
		fmt.Fprintf(out, "transparency trees differ:\n  %s\n", strings.Join(rep.TreeDiffs, "\n  "))
		return errors.New("the rebuilt transparency trees differ from the live ones")
	}
	return nil
}

// Verify runs the projection's self-check (read.Results.SelfCheck) and
// checks that every vote the intake accepted reached the log (kcfg) or is
// still pending, reporting each check to out.
func (a *App) Verify(ctx context.Context, kcfg kafka.Config, digestKey []byte, out io.Writer) error {
	results, err := read.NewResults(a.Pool)
	if err != nil {
		return err
	}
	checks, err := results.SelfCheck(ctx)
	if err != nil {
		return err
	}
	failed := 0
	for _, ch := range checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
			failed++
		}
		fmt.Fprintf(out, "%s  %s\n", mark, ch.Name)
		if !ch.OK && ch.Detail != "" {
			fmt.Fprintf(out, "      %s\n", ch.Detail)
		}
	}
	intake, skipped := a.IntakeCheck(ctx, kcfg, digestKey)
	for _, ch := range intake {
		switch {
		case skipped:
			fmt.Fprintf(out, "skip  %s\n      %s\n", ch.Name, ch.Detail)
		case ch.OK:
			fmt.Fprintf(out, "ok    %s\n", ch.Name)
		default:
			failed++
			fmt.Fprintf(out, "FAIL  %s\n      %s\n", ch.Name, ch.Detail)
		}
		if !skipped {
			checks = append(checks, ch)
		}
	}
	switch {
	case failed == 0:
		return nil
	case failed == 1 && !skipped && !intake[0].OK:
		return fmt.Errorf("1 of %d checks failed: accepted votes never reached the log, so a replay cannot restore them", len(checks))
	default:
		return fmt.Errorf("%d of %d checks failed; `votewatch replay` rebuilds the projection from the log", failed, len(checks))
	}
}

// PrintStatus prints the projection's state to out (as JSON, as GET
// /api/v1/status, with asJSON); the log's ends come from kcfg, or are
// unknown if it is unreachable.
func (a *App) PrintStatus(ctx context.Context, kcfg kafka.Config, asJSON bool, out io.Writer) error {
	results, err := read.NewResults(a.Pool)
	if err != nil {
		return err
	}
	var ends projections.HighWatermarksFunc
	if err := a.OpenLog(kcfg); err == nil {
		ends = a.KafkaLog.HighWatermarks
	} else {
		a.Log.Warn("kafka unreachable: lag unknown", "err", err)
	}
	st, err := results.Status(ctx, ends)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(handlers.StatusJSON(st))
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "projection built\t%s by %s\n", st.BuiltAt.Local().Format(time.DateTime), st.BuiltBy)
	fmt.Fprintf(tw, "votes counted\t%d\n", st.VotesCast)
	for _, r := range domain.RejectionReasons() {
		fmt.Fprintf(tw, "rejected: %s\t%d\n", r, st.Rejected[r.String()])
	}
	fmt.Fprintf(tw, "dead-lettered\t%d\n", st.DeadLettered)
	reg := "open"
	if st.Registration.Closed {
		reg = "closed"
	}
	fmt.Fprintf(tw, "registration\t%s (%d partitions closed)\n", reg, st.Registration.ClosedPartitions)
	fmt.Fprintf(tw, "votes held\t%d (waiting for a registration, or for registration to close)\n", st.Registration.HeldVotes)
	fmt.Fprintf(tw, "registrations refused\t%d (after their partition closed)\n", st.Registration.Refused)
	if !st.NewestEvent.IsZero() {
		fmt.Fprintf(tw, "newest event applied\t%s (%s ago)\n", st.NewestEvent.Local().Format(time.DateTime), st.Staleness.Round(time.Millisecond))
	}
	for _, t := range domain.EventTopics {
		lag := "unknown"
		if st.LogReachable {
			lag = fmt.Sprint(st.Lag[t])
		}
		fmt.Fprintf(tw, "%s\t%d applied, lag %s\n", t, st.EventsApplied[t], lag)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tpartition\tapplied\tend\tlag\t")
	for _, p := range st.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", p.Topic, p.Partition, p.Applied, p.End, p.Lag)
	}
	return tw.Flush()
}

// NewProgress shows a progress bar on a terminal and a log line every five
// seconds otherwise.
func NewProgress(log *slog.Logger, out io.Writer, doing, unit string) func(done, total int64) {
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var bar *progressbar.ProgressBar
		return func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(doing),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(unit),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth())
			}
			_ = bar.Set64(done)
		}
	}
	var last time.Time
	start := time.Now()
	return func(done, total int64) {
		if time.Since(last) < 5*time.Second && done < total {
			return
		}
		last = time.Now()
		rate := float64(done) / max(time.Since(start).Seconds(), 0.001)
		var eta time.Duration
		if rate > 0 {
			eta = time.Duration(float64(total-done)/rate) * time.Second
		}
		log.Info(doing, "done", done, "total", total, unit+"_per_s", int(rate), "eta", eta.Round(time.Second))
	}
}

func printReplayReport(w io.Writer, rep rebuild.ReplayReport) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range domain.EventTopics {
		fmt.Fprintf(tw, "events read from %s\t%d\n", t, rep.EventsRead[t])
	}
	fmt.Fprintf(tw, "caught up after the snapshot\t%d\n", rep.CaughtUp)
	fmt.Fprintf(tw, "votes counted\t%d\n", rep.Ballots)
	for _, r := range domain.RejectionReasons() {
		fmt.Fprintf(tw, "rejected: %s\t%d\n", r, rep.Rejected[r.String()])
	}
	fmt.Fprintf(tw, "dead-lettered\t%d\n", rep.DeadLettered)
	fmt.Fprintf(tw, "duration\t%s\n", rep.Duration.Round(time.Millisecond))
	fmt.Fprintf(tw, "rate\t%.0f events/s\n", rep.Rate())
	if rep.BulkVoteTime > 0 {
		fmt.Fprintf(tw, "bulk votes\t%d in %s (%.0f/s)\n", rep.BulkVotes, rep.BulkVoteTime.Round(time.Millisecond), float64(rep.BulkVotes)/rep.BulkVoteTime.Seconds())
	}
	fmt.Fprintf(tw, "live path held for the final step\t%s\n", rep.LockedFor.Round(time.Millisecond))
	switch {
	case rep.Swapped:
		fmt.Fprintf(tw, "result\tswapped in: the rebuilt projection is live\n")
		if rep.Retired != "" {
			fmt.Fprintf(tw, "previous projection kept as\t%s\n", rep.Retired)
		}
	case len(rep.Differences) == 0:
		fmt.Fprintf(tw, "result\tidentical to the live projection (%d tables compared)\n", rep.VerifiedTable)
	default:
		fmt.Fprintf(tw, "result\tDIFFERS from the live projection in %d of %d tables\n", len(rep.Differences), rep.VerifiedTable)
	}
	_ = tw.Flush()
}
