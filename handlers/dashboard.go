package handlers

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/read"
)

type bucketJSON struct {
	Bucket  string      `json:"bucket"`
	Votes   int64       `json:"votes"`
	Tallies []tallyJSON `json:"tallies"`
}

type timelineJSON struct {
	Minute time.Time        `json:"minute"`
	Votes  map[string]int64 `json:"votes"`
}

type dashboardJSON struct {
	Summary    summaryJSON             `json:"summary"`
	Candidates []candidateJSON         `json:"candidates"`
	Regions    []regionJSON            `json:"regions"`
	Parties    []partyJSON             `json:"parties"`
	Breakdowns map[string][]bucketJSON `json:"breakdowns"`
	Timeline   []timelineJSON          `json:"timeline"`
	Monitoring monitoringJSON          `json:"monitoring"`
	Generated  time.Time               `json:"generated_at"`
}

type partyJSON struct {
	Party      string  `json:"party"`
	Candidates int64   `json:"candidates"`
	Votes      int64   `json:"votes"`
	Share      float64 `json:"share"`
}

type monitoringJSON struct {
	Rejected          map[string]int64 `json:"rejected"`
	DeadLettered      int64            `json:"dead_lettered"`
	RecentRejections  []rejectionJSON  `json:"recent_rejections"`
	RecentDeadLetters []deadLetterJSON `json:"recent_dead_letters"`
}

type rejectionJSON struct {
	Reason     string    `json:"reason"`
	CastAt     time.Time `json:"cast_at"`
	RecordedAt time.Time `json:"recorded_at"`
}

type deadLetterJSON struct {
	Topic      string    `json:"topic"`
	Partition  int32     `json:"partition"`
	Offset     int64     `json:"offset"`
	Reason     string    `json:"reason"`
	ReceivedAt time.Time `json:"received_at"`
}

// dashboardOptions are the lists' bounds for the page.
var dashboardOptions = read.DashboardOptions{TimelineMinutes: 60, Recent: 10}

func toSummaryJSON(s read.Summary) summaryJSON {
	out := summaryJSON{
		RegisteredVoters: s.RegisteredVoters, Candidates: s.Candidates, VotesCast: s.VotesCast,
		Turnout: s.Turnout, Rejected: map[string]int64{}, DeadLettered: s.DeadLettered, Contests: s.Contests,
	}
	for reason, n := range s.Rejected {
		out.Rejected[reason.String()] = n
	}
	if s.Leader != nil {
		out.Leader = &leaderJSON{s.Leader.CandidateID, s.Leader.Name, s.Leader.Party, s.Leader.Votes}
	}
	if !s.UpdatedAt.IsZero() {
		out.UpdatedAt = &s.UpdatedAt
	}
	return out
}

func toCandidatesJSON(cs []read.CandidateResult) []candidateJSON {
	out := make([]candidateJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, candidateJSON{c.CandidateID, c.Name, c.Party, c.Votes, c.Share})
	}
	return out
}

func toTimelineJSON(points []read.TimelinePoint) []timelineJSON {
	out := []timelineJSON{}
	for _, p := range points {
		if n := len(out); n == 0 || !out[n-1].Minute.Equal(p.Minute) {
			out = append(out, timelineJSON{Minute: p.Minute, Votes: map[string]int64{}})
		}
		out[len(out)-1].Votes[p.CandidateID] = p.Votes
	}
	return out
}

func toDashboardJSON(d read.Dashboard, now time.Time) dashboardJSON {
	out := dashboardJSON{
		Summary:    toSummaryJSON(d.Summary),
		Candidates: toCandidatesJSON(d.Candidates),
		Regions:    make([]regionJSON, 0, len(d.Regions)),
		Parties:    make([]partyJSON, 0, len(d.Parties)),
		Breakdowns: toBreakdownsJSON(d.Demographics),
		Timeline:   toTimelineJSON(d.Timeline),
		Generated:  now.UTC(),
	}
	for _, g := range d.Regions {
		out.Regions = append(out.Regions, toRegionJSON(g))
	}
	for _, p := range d.Parties {
		out.Parties = append(out.Parties, partyJSON{p.Party, p.Candidates, p.Votes, p.Share})
	}
	out.Monitoring = monitoringJSON{
		Rejected: out.Summary.Rejected, DeadLettered: d.Summary.DeadLettered,
		RecentRejections: make([]rejectionJSON, 0, len(d.Rejections)), RecentDeadLetters: make([]deadLetterJSON, 0, len(d.DeadLetters)),
	}
	for _, r := range d.Rejections {
		out.Monitoring.RecentRejections = append(out.Monitoring.RecentRejections, rejectionJSON{r.Reason, r.CastAt, r.RecordedAt})
	}
	for _, x := range d.DeadLetters {
		out.Monitoring.RecentDeadLetters = append(out.Monitoring.RecentDeadLetters, deadLetterJSON{x.Topic, x.Partition, x.Offset, x.Reason, x.ReceivedAt})
	}
	return out
}

func (a *API) dashboard(w http.ResponseWriter, r *http.Request) {
	if allowQuery(w, r, a.log) {
		a.fromSnapshot(w, r, func(s *snapshot) []byte { return s.dashboard })
	}
}

func (a *API) timeline(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log, "minutes") {
		return
	}
	minutes := 60
	if s := r.URL.Query().Get("minutes"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1440 {
			writeError(w, r, a.log, &domain.ValidationError{Field: "minutes", Problem: "must be a whole number from 1 to 1440"})
			return
		}
		minutes = n
	}
	points, err := a.results.Timeline(r.Context(), minutes)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, r, a.log, map[string]any{"minutes": minutes, "timeline": toTimelineJSON(points)})
}

func (a *API) resultsCSV(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log, "contest") {
		return
	}
	// ?contest=all adds every contest, and a contest column; without it the
	// export keeps contract v1's columns, for the default contest.
	all := false
	switch c := r.URL.Query().Get("contest"); c {
	case "", domain.DefaultContest:
	case "all":
		all = true
	default:
		writeError(w, r, a.log, &domain.ValidationError{Field: "contest", Problem: "must be all or default"})
		return
	}
	rows, err := a.results.ResultRows(r.Context(), all)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="votewatch-results.csv"`)
	w.Header().Set("Cache-Control", "no-cache")
	cw := csv.NewWriter(w)
	header := []string{"region", "candidate_id", "candidate", "party", "votes", "share_of_region", "region_votes_cast", "region_registered_voters", "region_turnout"}
	if all {
		header = append([]string{"contest"}, header...)
	}
	_ = cw.Write(header)
	for _, x := range rows {
		line := []string{
			csvSafe(x.Region), csvSafe(x.CandidateID), csvSafe(x.Name), csvSafe(x.Party),
			strconv.FormatInt(x.Votes, 10), fraction(x.Votes, x.RegionVotesCast),
			strconv.FormatInt(x.RegionVotesCast, 10), strconv.FormatInt(x.RegionRegisteredVoters, 10),
			fraction(x.RegionVotesCast, x.RegionRegisteredVoters),
		}
		if x.Withheld {
			// Too few votes to publish (README, "What is published"):
			// the counts are left empty, not zero.
			line[4], line[5], line[6], line[8] = "withheld", "", "", ""
		}
		if all {
			line = append([]string{csvSafe(x.Contest)}, line...)
		}
		_ = cw.Write(line)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		a.log.Debug("write csv", "err", err)
	}
}

// csvSafe keeps a spreadsheet from running a cell as a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func fraction(a, b int64) string {
	if b == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', 6, 64)
}

// toBreakdownsJSON groups demographic tallies (sorted by dimension and
// bucket) into the gender and age-band breakdowns.
func toBreakdownsJSON(demographics []read.DemographicTally) map[string][]bucketJSON {
	out := map[string][]bucketJSON{"gender": {}, "age_band": {}}
	for _, x := range demographics {
		buckets := out[x.Dimension]
		if n := len(buckets); n == 0 || buckets[n-1].Bucket != x.Bucket {
			buckets = append(buckets, bucketJSON{Bucket: x.Bucket, Tallies: []tallyJSON{}})
		}
		b := &buckets[len(buckets)-1]
		b.Votes += x.Votes
		b.Tallies = append(b.Tallies, tallyJSON{x.CandidateID, x.Votes})
		out[x.Dimension] = buckets
	}
	return out
}
