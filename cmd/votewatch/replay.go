package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/projections"
)

// Run rebuilds the projection and swaps it in, or verifies it.
func (c *ReplayCmd) Run(ctx context.Context, env *Env) error {
	a := app.New(env.Log)
	defer a.Close()
	dsn, err := c.open(ctx, a, true)
	if err != nil {
		return err
	}
	kcfg := a.Kafka
	rb, err := app.NewRebuilder(env.Log, a.Pool, dsn, kcfg, a.KafkaLog)
	if err != nil {
		return err
	}
	opt := projections.ReplayOptions{KeepRetired: c.KeepRetired, KeepRebuilt: c.KeepRebuilt, AllowTruncatedLog: c.AllowTruncatedLog,
		Progress: newProgress(env, "replaying events", "events")}
	if c.Verify {
		opt.Mode = projections.ReplayVerify
	}
	rep, err := rb.Run(ctx, opt)
	if err != nil {
		return err
	}
	if rep.Swapped {
		// The projection readers see changed: an operator action.
		if err := app.RecordAction(kcfg, domain.ActionReplaySwap, fmt.Sprintf("rebuilt %s from the log (%d events, %d votes counted) and swapped it in",
			rep.Schema, rep.EventsRead[domain.TopicVotes]+rep.EventsRead[domain.TopicVoters]+rep.EventsRead[domain.TopicCandidates], rep.Ballots)); err != nil {
			env.Log.Error("the replay swapped but its audit event was not recorded", "err", err)
		}
	}
	printReport(env.Stdout, rep)
	if c.Verify && len(rep.Differences) > 0 {
		fmt.Fprint(env.Stdout, projections.FormatDiffs(rep.Differences))
		return errors.New("the rebuilt projection differs from the live one")
	}
	return nil
}

// newProgress shows a progress bar on a terminal and a log line every five
// seconds otherwise.
func newProgress(env *Env, doing, unit string) func(done, total int64) {
	if f, ok := env.Stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
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
		env.Log.Info(doing, "done", done, "total", total, unit+"_per_s", int(rate), "eta", eta.Round(time.Second))
	}
}

func printReport(w io.Writer, rep projections.ReplayReport) {
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

// Run audits the projection's internal consistency, and that every vote
// the intake accepted reached the log or is still pending.
func (c *VerifyCmd) Run(ctx context.Context, env *Env) error {
	a := app.New(env.Log)
	defer a.Close()
	if _, err := c.open(ctx, a, false); err != nil {
		return err
	}
	results, err := projections.NewResults(a.Pool)
	if err != nil {
		return err
	}
	checks, err := results.Audit(ctx)
	if err != nil {
		return err
	}
	kcfg, err := c.kafkaConfig(c.KafkaBrokers, 0)
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
		fmt.Fprintf(env.Stdout, "%s  %s\n", mark, ch.Name)
		if !ch.OK && ch.Detail != "" {
			fmt.Fprintf(env.Stdout, "      %s\n", ch.Detail)
		}
	}
	ch, skipped := a.IntakeCheck(ctx, kcfg)
	switch {
	case skipped:
		fmt.Fprintf(env.Stdout, "skip  %s\n      %s\n", ch.Name, ch.Detail)
	case ch.OK:
		fmt.Fprintf(env.Stdout, "ok    %s\n", ch.Name)
	default:
		failed++
		fmt.Fprintf(env.Stdout, "FAIL  %s\n      %s\n", ch.Name, ch.Detail)
	}
	if !skipped {
		checks = append(checks, ch)
	}
	switch {
	case failed == 0:
		return nil
	case failed == 1 && !skipped && !ch.OK:
		return fmt.Errorf("1 of %d checks failed: accepted votes never reached the log, so a replay cannot restore them", len(checks))
	default:
		return fmt.Errorf("%d of %d checks failed; `votewatch replay` rebuilds the projection from the log", failed, len(checks))
	}
}

// Run prints the projection's state.
func (c *StatusCmd) Run(ctx context.Context, env *Env) error {
	a := app.New(env.Log)
	defer a.Close()
	if _, err := c.open(ctx, a, false); err != nil {
		return err
	}
	results, err := projections.NewResults(a.Pool)
	if err != nil {
		return err
	}
	var ends projections.HighWatermarksFunc
	kcfg, err := c.kafkaConfig(c.KafkaBrokers, 0)
	if err != nil {
		return err
	}
	if err := a.OpenLog(kcfg); err == nil {
		ends = a.KafkaLog.HighWatermarks
	} else {
		env.Log.Warn("kafka unreachable: lag unknown", "err", err)
	}
	st, err := results.Status(ctx, ends)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(handlers.StatusJSON(st))
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
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
	fmt.Fprintln(env.Stdout)
	tw = tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "topic\tpartition\tapplied\tend\tlag\t")
	for _, p := range st.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", p.Topic, p.Partition, p.Applied, p.End, p.Lag)
	}
	return tw.Flush()
}

// Run re-publishes dead letters whose payload now decodes.
func (c *DLQReplayCmd) Run(ctx context.Context, env *Env) error {
	kcfg, err := c.kafkaConfig(c.KafkaBrokers, 0)
	if err != nil {
		return err
	}
	return app.ReplayDeadLetters(ctx, kcfg, c.Topic, c.DryRun, env.Stdout)
}

// Run recounts the election from the log and compares it with the
// projection.
func (c *AuditCmd) Run(ctx context.Context, env *Env) error {
	a := app.New(env.Log)
	defer a.Close()
	if _, err := c.open(ctx, a, true); err != nil {
		return err
	}
	log := a.ReplayLog()
	if err := projections.CheckLogComplete(ctx, log); err != nil {
		if !c.AllowTruncatedLog {
			return fmt.Errorf("audit: %w (--allow-truncated-log recounts what is left)", err)
		}
		env.Log.Warn("recounting a truncated log: the recount misses the lost events", "err", err)
	}
	rep, err := projections.Recount(ctx, a.Pool, log, newProgress(env, "recounting events", "events"))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "recounted\t%d contests, %d candidates, %d voters, %d votes events, in %s\n",
		rep.EventsRead[domain.TopicContests], rep.EventsRead[domain.TopicCandidates], rep.EventsRead[domain.TopicVoters],
		rep.EventsRead[domain.TopicVotes], rep.Duration.Round(time.Millisecond))
	for _, t := range rep.Tables {
		mark := "ok  "
		if t.OnlyLive+t.OnlyRebuilt > 0 {
			mark = "DIFF"
		}
		fmt.Fprintf(tw, "%s\t%s\n", mark, t.Table)
	}
	_ = tw.Flush()
	if diffs := rep.Differences(); len(diffs) > 0 {
		fmt.Fprint(env.Stdout, projections.FormatRecount(diffs))
		return fmt.Errorf("the projection differs from the recount of the log in %d of %d tables", len(diffs), rep.Compared)
	}
	fmt.Fprintf(env.Stdout, "the projection equals the recount of the log in all %d tables\n", rep.Compared)
	return nil
}

// Run asks the read API what became of the vote.
func (c *BallotCmd) Run(ctx context.Context, env *Env) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.API, "/")+"/api/v1/ballots/"+url.PathEscape(c.VoteID), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", c.API, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if body.Error != nil {
			msg = body.Error.Message
		}
		return fmt.Errorf("ballot %s: %s", c.VoteID, msg)
	}
	line := "ballot " + c.VoteID + ": " + body.Status
	if body.Reason != "" {
		line += " (" + body.Reason + ")"
	}
	fmt.Fprintln(env.Stdout, line)
	return nil
}

// open connects a to the database (DATABASE_URL, or the running demo's
// private cluster) and, with withLog, to the Kafka log; it returns the
// database's DSN.
func (f AdminFlags) open(ctx context.Context, a *app.App, withLog bool) (string, error) {
	dsn, err := a.OpenAdminDatabase(ctx, app.AdminDatabase{URL: f.DatabaseURL, DataDir: f.DataDir})
	if err != nil || !withLog {
		return dsn, err
	}
	kcfg, err := f.kafkaConfig(f.KafkaBrokers, 0)
	if err != nil {
		return "", err
	}
	return dsn, a.OpenLog(kcfg)
}
