package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/outbox"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
)

// openAdmin connects the maintenance commands: DATABASE_URL, or the running
// demo's private cluster.
func openAdmin(ctx context.Context, log *slog.Logger, f AdminFlags, cleanup *closers) (*pgxpool.Pool, string, error) {
	dsn := f.DatabaseURL
	if dsn == "" {
		dir := f.DataDir
		if dir == "" {
			var err error
			if dir, err = postgres.DefaultDir(); err != nil {
				return nil, "", err
			}
		}
		var err error
		if dsn, err = postgres.AttachCluster(dir + "/postgres"); err != nil {
			return nil, "", fmt.Errorf("DATABASE_URL is not set and %w", err)
		}
	}
	pool, err := postgres.Connect(ctx, dsn, 8)
	if err != nil {
		return nil, "", err
	}
	cleanup.add(pool.Close)
	return pool, dsn, nil
}

// openResults connects the read side for a maintenance command.
func openResults(ctx context.Context, env *Env, f AdminFlags, cleanup *closers) (*projections.Results, error) {
	pool, _, err := openAdmin(ctx, env.Log, f, cleanup)
	if err != nil {
		return nil, err
	}
	return projections.NewResults(pool)
}

// replayLog reads the log for a replay through the Kafka infrastructure.
type replayLog struct {
	cfg kafka.Config
	log *kafka.Log
}

func (l replayLog) HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	return l.log.HighWatermarks(ctx, topic)
}

func (l replayLog) LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	return l.log.LowWatermarks(ctx, topic)
}

func (l replayLog) ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]projections.LogRecord) error) error {
	buf := make([]projections.LogRecord, 0, 8192)
	return kafka.ReadRange(ctx, l.cfg, topic, from, to, func(recs []kafka.Record) error {
		buf = buf[:0]
		for _, r := range recs {
			buf = append(buf, projections.LogRecord(r))
		}
		return fn(buf)
	})
}

// newRebuilder wires a Rebuilder to the database and the log.
func newRebuilder(log *slog.Logger, pool *pgxpool.Pool, dsn string, kcfg kafka.Config, klog *kafka.Log) (*projections.Rebuilder, error) {
	open := func(ctx context.Context, schema string) (*pgxpool.Pool, error) {
		p, err := postgres.ConnectSchema(ctx, dsn, schema, 4)
		if err != nil {
			return nil, err
		}
		if err := migrate(ctx, log, p); err != nil {
			p.Close()
			return nil, err
		}
		return p, nil
	}
	return projections.NewRebuilder(pool, postgres.Schema, open, replayLog{kcfg, klog}, log)
}

// Run rebuilds the projection and swaps it in, or verifies it.
func (c *ReplayCmd) Run(ctx context.Context, env *Env) error {
	var cleanup closers
	defer cleanup.run()
	pool, dsn, err := openAdmin(ctx, env.Log, c.AdminFlags, &cleanup)
	if err != nil {
		return err
	}
	kcfg, klog, err := openLog(c.AdminFlags, &cleanup)
	if err != nil {
		return err
	}
	rb, err := newRebuilder(env.Log, pool, dsn, kcfg, klog)
	if err != nil {
		return err
	}
	secret, err := electionSecret(env.Log, c.ElectionSecret, c.AdminFlags)
	if err != nil {
		return err
	}
	opt := projections.ReplayOptions{KeepRetired: c.KeepRetired, KeepRebuilt: c.KeepRebuilt, AllowTruncatedLog: c.AllowTruncatedLog,
		Progress: newProgress(env, "replaying events", "events"), Secret: secret, AcceptDiff: c.AcceptDiff}
	if c.Verify {
		opt.Mode = projections.ReplayVerify
	}
	rep, err := rb.Run(ctx, opt)
	if errors.Is(err, projections.ErrRootsDiffer) {
		fmt.Fprintf(env.Stdout, "the rebuilt transparency trees differ from the live ones:\n  %s\n", strings.Join(rep.TreeDiffs, "\n  "))
	}
	if err != nil {
		return err
	}
	if rep.Swapped && len(rep.TreeDiffs) > 0 {
		if err := recordAction(kcfg, domain.ActionAcceptDiff, fmt.Sprintf("swapped in %s although its transparency trees differ from the published ones: %s",
			rep.Schema, strings.Join(rep.TreeDiffs, "; "))); err != nil {
			env.Log.Error("the replay swapped over differing trees but its audit event was not recorded", "err", err)
		}
	}
	if rep.Swapped {
		// The projection readers see changed: an operator action.
		if err := recordAction(kcfg, domain.ActionReplaySwap, fmt.Sprintf("rebuilt %s from the log (%d events, %d votes counted) and swapped it in",
			rep.Schema, rep.EventsRead[domain.TopicVotes]+rep.EventsRead[domain.TopicVoters]+rep.EventsRead[domain.TopicCandidates], rep.Ballots)); err != nil {
			env.Log.Error("the replay swapped but its audit event was not recorded", "err", err)
		}
	}
	printReport(env.Stdout, rep)
	if c.Verify && len(rep.Differences) > 0 {
		fmt.Fprint(env.Stdout, projections.FormatDiffs(rep.Differences))
		return errors.New("the rebuilt projection differs from the live one")
	}
	if c.Verify && len(rep.TreeDiffs) > 0 {
		fmt.Fprintf(env.Stdout, "transparency trees differ:\n  %s\n", strings.Join(rep.TreeDiffs, "\n  "))
		return errors.New("the rebuilt transparency trees differ from the live ones")
	}
	return nil
}

// electionSecret loads the election secret from path or, when path is
// empty, the demo's if there is one (nil when neither: the trees are then
// not rebuilt).
func electionSecret(log *slog.Logger, path string, f AdminFlags) (transparency.Secret, error) {
	if path == "" && f.DatabaseURL == "" {
		dir := f.DataDir
		if dir == "" {
			var err error
			if dir, err = postgres.DefaultDir(); err != nil {
				return nil, err
			}
		}
		if demo := filepath.Join(dir, "election.secret"); fileExists(demo) {
			path = demo
		}
	}
	if path == "" {
		log.Warn("no election secret: the transparency trees' leaves are not recomputed (--election-secret)")
		return nil, nil
	}
	return transparency.LoadSecret(path)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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
	var cleanup closers
	defer cleanup.run()
	pool, _, err := openAdmin(ctx, env.Log, c.AdminFlags, &cleanup)
	if err != nil {
		return err
	}
	results, err := projections.NewResults(pool)
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
	ch, skipped := intakeCheck(ctx, pool, &lazyVotesLog{cfg: kcfg, cleanup: &cleanup})
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

// intakeCheck reconciles the intake with the log (skipped reports a
// database without the intake).
func intakeCheck(ctx context.Context, pool *pgxpool.Pool, log outbox.VotesLog) (check projections.AuditCheck, skipped bool) {
	check.Name = "every vote the intake accepted is in the votes topic or pending in the outbox"
	rec, err := outbox.Reconcile(ctx, pool, log)
	switch {
	case err != nil:
		check.Detail = err.Error()
	case !rec.Deployed:
		check.Detail = "skipped: no intake schema"
		return check, true
	case rec.Lost > 0:
		check.Detail = fmt.Sprintf("%d of %d accepted votes are neither in the votes topic nor in the outbox (%d still pending there), e.g. %s",
			rec.Lost, rec.Accepted, rec.Pending, strings.Join(rec.Examples, ", "))
	default:
		check.OK = true
	}
	return check, false
}

// lazyVotesLog connects to Kafka on first use: verifying a database whose
// intake accepted nothing needs no broker.
type lazyVotesLog struct {
	cfg     kafka.Config
	log     *kafka.Log
	cleanup *closers
}

func (l *lazyVotesLog) connect() (*kafka.Log, error) {
	if l.log == nil {
		klog, err := kafka.NewLog(l.cfg)
		if err != nil {
			return nil, err
		}
		l.log = klog
		l.cleanup.add(func() { _ = klog.Close() })
	}
	return l.log, nil
}

func (l *lazyVotesLog) LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	klog, err := l.connect()
	if err != nil {
		return nil, err
	}
	return klog.LowWatermarks(ctx, topic)
}

func (l *lazyVotesLog) HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error) {
	klog, err := l.connect()
	if err != nil {
		return nil, err
	}
	return klog.HighWatermarks(ctx, topic)
}

func (l *lazyVotesLog) ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]kafka.Record) error) error {
	return kafka.ReadRange(ctx, l.cfg, topic, from, to, fn)
}

// Run prints the projection's state.
func (c *StatusCmd) Run(ctx context.Context, env *Env) error {
	var cleanup closers
	defer cleanup.run()
	results, err := openResults(ctx, env, c.AdminFlags, &cleanup)
	if err != nil {
		return err
	}
	var ends projections.HighWatermarksFunc
	kcfg, err := c.kafkaConfig(c.KafkaBrokers, 0)
	if err != nil {
		return err
	}
	if klog, err := kafka.NewLog(kcfg); err == nil {
		cleanup.add(func() { _ = klog.Close() })
		ends = klog.HighWatermarks
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

// Run re-publishes dead letters whose payload now decodes. Progress is a
// consumer group's committed offsets, so running it again re-publishes
// nothing twice; and re-publishing is harmless anyway (applying is
// idempotent).
func (c *DLQReplayCmd) Run(ctx context.Context, env *Env) error {
	kcfg, err := c.kafkaConfig(c.KafkaBrokers, 0)
	if err != nil {
		return err
	}
	dlq := domain.DeadLetterTopic(c.Topic)
	group := "votewatch-dlq-replay." + c.Topic
	from, err := kafka.CommittedOffsets(ctx, kcfg, group, dlq)
	if err != nil {
		return err
	}
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		return err
	}
	defer klog.Close()
	to, err := klog.HighWatermarks(ctx, dlq)
	if err != nil {
		return err
	}
	decode := func(b []byte) error { _, err := domain.Decode(c.Topic, b); return err }
	var pub *kafka.Publisher
	if !c.DryRun {
		if pub, err = kafka.NewPublisher(kcfg); err != nil {
			return err
		}
		defer pub.Close()
	}
	var fixed, still int
	err = kafka.ReadRange(ctx, kcfg, dlq, from, to, func(recs []kafka.Record) error {
		var msgs []*message.Message
		for _, r := range recs {
			if err := decode(r.Value); err != nil {
				still++
				fmt.Fprintf(env.Stdout, "still invalid  %s/%d@%d: %v\n", dlq, r.Partition, r.Offset, err)
				continue
			}
			fixed++
			verb := "re-publish"
			if c.DryRun {
				verb = "would re-publish"
			}
			fmt.Fprintf(env.Stdout, "%s  %s/%d@%d → %s (key %q)\n", verb, dlq, r.Partition, r.Offset, c.Topic, r.Key)
			m := message.NewMessage(watermill.NewUUID(), slices.Clone(r.Value))
			m.Metadata.Set(kafka.KeyMetadata, string(r.Key))
			msgs = append(msgs, m)
		}
		if c.DryRun || len(msgs) == 0 {
			return nil
		}
		return pub.Publish(c.Topic, msgs...)
	})
	if err != nil {
		return err
	}
	if !c.DryRun {
		if err := kafka.CommitOffsets(ctx, kcfg, group, dlq, to); err != nil {
			return err
		}
	}
	summary := fmt.Sprintf("%d dead letters decode now and %s; %d are still invalid and stay on %s", fixed,
		map[bool]string{true: "would be re-published (dry run)", false: "were re-published to " + c.Topic}[c.DryRun], still, dlq)
	if !c.DryRun {
		if err := kafka.RecordAction(pub, domain.ActionDLQReplay, summary, "ok"); err != nil {
			return err
		}
	}
	fmt.Fprintln(env.Stdout, strings.TrimSpace(summary))
	return nil
}

// Run recounts the election from the log and compares it with the
// projection.
func (c *AuditCmd) Run(ctx context.Context, env *Env) error {
	var cleanup closers
	defer cleanup.run()
	pool, _, err := openAdmin(ctx, env.Log, c.AdminFlags, &cleanup)
	if err != nil {
		return err
	}
	kcfg, klog, err := openLog(c.AdminFlags, &cleanup)
	if err != nil {
		return err
	}
	log := replayLog{kcfg, klog}
	if err := projections.CheckLogComplete(ctx, log); err != nil {
		if !c.AllowTruncatedLog {
			return fmt.Errorf("audit: %w (--allow-truncated-log recounts what is left)", err)
		}
		env.Log.Warn("recounting a truncated log: the recount misses the lost events", "err", err)
	}
	rep, err := projections.Recount(ctx, pool, log, newProgress(env, "recounting events", "events"))
	if err != nil {
		return err
	}
	trees, err := c.auditTrees(ctx, env, pool, log)
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
	if len(trees.Problems) > 0 {
		return fmt.Errorf("the transparency log fails %d checks", len(trees.Problems))
	}
	return nil
}

// auditTrees checks the transparency log and prints what it checked.
func (c *AuditCmd) auditTrees(ctx context.Context, env *Env, pool *pgxpool.Pool, log projections.ReplayLog) (projections.TreeAudit, error) {
	secret, err := electionSecret(env.Log, c.ElectionSecret, c.AdminFlags)
	if err != nil {
		return projections.TreeAudit{}, err
	}
	opt := projections.TreeAuditOptions{Secret: secret, VerifierKey: c.VerifierKey}
	if c.VerifierKey != "" && fileExists(c.VerifierKey) {
		b, err := os.ReadFile(c.VerifierKey)
		if err != nil {
			return projections.TreeAudit{}, err
		}
		opt.VerifierKey = strings.TrimSpace(string(b))
	}
	if c.Checkpoint != "" {
		if opt.Checkpoint, err = os.ReadFile(c.Checkpoint); err != nil {
			return projections.TreeAudit{}, err
		}
	}
	a, err := projections.AuditTrees(ctx, pool, log, opt)
	if err != nil {
		return a, err
	}
	fmt.Fprintf(env.Stdout, "transparency log: %d trees, %d leaves", a.Trees, a.Leaves)
	if a.RootsCompared > 0 {
		fmt.Fprintf(env.Stdout, "; %d roots recomputed from the log", a.RootsCompared)
	}
	if a.Checkpoint != nil {
		fmt.Fprintf(env.Stdout, "; checkpoint of %s (%s, counted %d, rejected %d) signature verified",
			a.Checkpoint.Time.Format(time.RFC3339), a.Checkpoint.Origin, a.Checkpoint.Counted, a.Checkpoint.Rejected)
	}
	fmt.Fprintln(env.Stdout)
	for _, p := range a.Problems {
		fmt.Fprintln(env.Stdout, "FAIL  "+p)
	}
	if len(a.Problems) == 0 && a.Checkpoint != nil {
		fmt.Fprintln(env.Stdout, "ok    the checkpoint's trees are prefixes of today's, and its tallies are the recount's at its offsets")
	}
	return a, nil
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
		Status     string                       `json:"status"`
		Reason     string                       `json:"reason"`
		Checkpoint string                       `json:"checkpoint"`
		Proof      *transparency.InclusionProof `json:"proof"`
		Error      *struct {
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
	if c.VerifyProof {
		return c.verifyProof(ctx, env, body.Status, body.Reason, body.Checkpoint, body.Proof)
	}
	return nil
}

// recordAction appends an operator action to the audit topic.
func recordAction(kcfg kafka.Config, action, detail string) error {
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return err
	}
	defer pub.Close()
	return kafka.RecordAction(pub, action, detail, "ok")
}

// openLog connects to the Kafka log the maintenance commands read, closed
// by cleanup.
func openLog(f AdminFlags, cleanup *closers) (kafka.Config, *kafka.Log, error) {
	kcfg, err := f.kafkaConfig(f.KafkaBrokers, 0)
	if err != nil {
		return kafka.Config{}, nil, err
	}
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		return kafka.Config{}, nil, err
	}
	cleanup.add(func() { _ = klog.Close() })
	return kcfg, klog, nil
}
