package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
)

// Audit recounts the election from the log (after OpenLog) with the
// rules' Go specification and compares every table of the projection in
// Pool, reporting to out; it fails on any difference. A log that lost its
// start is refused unless allowTruncatedLog.
func (a *App) Audit(ctx context.Context, allowTruncatedLog bool, out io.Writer) error {
	log := a.ReplayLog()
	if err := projections.CheckLogComplete(ctx, log); err != nil {
		if !allowTruncatedLog {
			return fmt.Errorf("audit: %w (--allow-truncated-log recounts what is left)", err)
		}
		a.Log.Warn("recounting a truncated log: the recount misses the lost events", "err", err)
	}
	rep, err := projections.Recount(ctx, a.Pool, log, NewProgress(a.Log, out, "recounting events", "events"))
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
		fmt.Fprint(out, projections.FormatRecount(diffs))
		return fmt.Errorf("the projection differs from the recount of the log in %d of %d tables", len(diffs), rep.Compared)
	}
	fmt.Fprintf(out, "the projection equals the recount of the log in all %d tables\n", rep.Compared)
	return nil
}

// Ballot asks the read API at api what became of the vote voteID and
// says so on out.
func Ballot(ctx context.Context, api, voteID string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/api/v1/ballots/"+url.PathEscape(voteID), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", api, err)
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
		return fmt.Errorf("ballot %s: %s", voteID, msg)
	}
	line := "ballot " + voteID + ": " + body.Status
	if body.Reason != "" {
		line += " (" + body.Reason + ")"
	}
	fmt.Fprintln(out, line)
	return nil
}
