package app

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/audit"
)

// Audit recounts the election from the log (after OpenLog) with the
// rules' Go specification and compares every table of the projection in
// Pool, and checks the transparency log (AuditTrees), reporting to out; it
// fails on any difference. A log that lost its start is refused unless
// opt.AllowTruncatedLog, and a projection that has not applied the whole
// log unless opt.AllowLag.
func (a *App) Audit(ctx context.Context, opt AuditOptions, out io.Writer) error {
	log := a.ReplayLog()
	if err := audit.CheckLogComplete(ctx, log); err != nil {
		if !opt.AllowTruncatedLog {
			return fmt.Errorf("audit: %w (--allow-truncated-log recounts what is left)", err)
		}
		a.Log.Warn("recounting a truncated log: the recount misses the lost events", "err", err)
	}
	if err := audit.CheckCaughtUp(ctx, a.Pool, log); err != nil {
		if !opt.AllowLag {
			return fmt.Errorf("audit: %w: the recount would cover only what it applied (--allow-lag audits it anyway)", err)
		}
		a.Log.Warn("auditing a projection that lags the log", "err", err)
	}
	rep, err := audit.Recount(ctx, a.Pool, log, a.Sealing.Opener, NewProgress(a.Log, out, "recounting events", "events"))
	if err != nil {
		return err
	}
	trees, err := a.auditTrees(ctx, opt, out)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
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
		fmt.Fprint(out, audit.FormatRecount(diffs))
		return fmt.Errorf("the projection differs from the recount of the log in %d of %d tables", len(diffs), rep.Compared)
	}
	fmt.Fprintf(out, "the projection equals the recount of the log in all %d tables\n", rep.Compared)
	if len(trees.Problems) > 0 {
		return fmt.Errorf("the transparency log fails %d checks", len(trees.Problems))
	}
	return nil
}
