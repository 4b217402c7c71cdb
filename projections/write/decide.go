package write

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections/internal/db"
)

// The projector's side of the one decider (domain.Decide): live, the facts
// for a batch's keys are loaded in one query (dbFacts); the verdicts become
// rows (decisions) and grouped tallies (tallyGroups), written in two
// statements. Nothing here decides a vote.

// dbFacts is domain.Facts as LoadVoteFacts read them for one batch.
type dbFacts struct {
	voters     map[string]domain.Voter
	candidates map[string]domain.Candidate
	contests   map[string]domain.Contest
	counted    map[domain.BallotKey]bool
	held       map[domain.BallotKey]bool
	decided    map[string]bool
	schedules  []db.VoteSchedule
	// StationMarkers are the batch's stations' openings and closes.
	*domain.StationMarkers
	closed     bool
	partitions int
}

func (f *dbFacts) Voter(id string) (domain.Voter, bool) { v, ok := f.voters[id]; return v, ok }
func (f *dbFacts) Candidate(id string) (domain.Candidate, bool) {
	c, ok := f.candidates[id]
	return c, ok
}
func (f *dbFacts) Contest(id string) (domain.Contest, bool) { c, ok := f.contests[id]; return c, ok }

func (f *dbFacts) HasCounted(voter, contest string) bool {
	return f.counted[domain.BallotKey{Voter: voter, Contest: contest}]
}
func (f *dbFacts) IsHeld(voter, contest string) bool {
	return f.held[domain.BallotKey{Voter: voter, Contest: contest}]
}
func (f *dbFacts) Decided(voteID string) bool { return f.decided[voteID] }
func (f *dbFacts) RegistrationClosed() bool   { return f.closed }
func (f *dbFacts) VotePartitions() int        { return f.partitions }

// Schedule returns the latest schedule before offset in partition; the
// stored schedules were valid when recorded.
func (f *dbFacts) Schedule(partition int32, offset int64) *domain.ElectionScheduled {
	var at *db.VoteSchedule
	for i := range f.schedules {
		s := &f.schedules[i]
		if s.Partition == partition && s.Offset < offset && (at == nil || s.Offset > at.Offset) {
			at = s
		}
	}
	if at == nil {
		return nil
	}
	e, err := domain.NewElectionScheduled(at.PollsOpen, at.PollsClose)
	if err != nil {
		return nil // the table's CHECK keeps polls_close after polls_open
	}
	return &e
}

// loadFacts reads, in one query, the facts domain.Decide needs for entries.
func loadFacts(ctx context.Context, q *db.Queries, entries []domain.VoteEntry, partitions int) (*dbFacts, error) {
	var p db.LoadVoteFactsParams
	seen := map[string]bool{}
	add := func(list *[]string, kind byte, id string) {
		k := string(kind) + id
		if !seen[k] {
			seen[k] = true
			*list = append(*list, id)
		}
	}
	for _, e := range entries {
		v := e.Vote
		add(&p.VoterIDs, 'v', v.VoterID())
		add(&p.CandidateIDs, 'c', v.CandidateID())
		add(&p.ContestIDs, 'k', v.ContestID())
		if id := v.Station().ID(); id != "" {
			add(&p.StationIDs, 's', id)
		}
		if !seen["i"+v.ID()] {
			seen["i"+v.ID()] = true
			p.VoteIDs = append(p.VoteIDs, voteUUID(v.ID()))
		}
	}
	row, err := q.LoadVoteFacts(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("load the facts: %w", err)
	}
	f := &dbFacts{
		voters: make(map[string]domain.Voter, len(row.VoterIDs)), candidates: make(map[string]domain.Candidate, len(row.CandidateIDs)),
		contests: make(map[string]domain.Contest, len(row.ContestIDs)), counted: make(map[domain.BallotKey]bool, len(row.CountedVoters)),
		held: make(map[domain.BallotKey]bool, len(row.HeldVoters)), decided: make(map[string]bool, len(row.DecidedIds)),
		StationMarkers: domain.NewStationMarkers(), closed: row.RegistrationClosed, partitions: partitions,
	}
	for i, id := range row.OpeningStationIds {
		region, err := domain.NewRegion(row.OpeningRegions[i])
		if err == nil {
			var st domain.Station
			if st, err = domain.NewStation(id, region); err == nil {
				f.AddOpening(row.OpeningPartitions[i], row.OpeningOffsets[i], st)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("station %q: %w", id, err)
		}
	}
	for i, id := range row.ClosureStationIds {
		f.AddClosing(row.ClosurePartitions[i], row.ClosureOffsets[i], id)
	}
	for i, id := range row.VoterIDs {
		f.voters[id] = domain.UnmarshalVoterFromDatabase(id, row.VoterGenders[i], row.VoterBirths[i].Time, row.VoterRegions[i])
	}
	for i, id := range row.CandidateIDs {
		f.candidates[id] = domain.UnmarshalCandidateFromDatabase(id, row.CandidateContests[i])
	}
	for i, id := range row.ContestIDs {
		var regions []string
		if row.ContestRegions[i] != "" {
			regions = strings.Split(row.ContestRegions[i], "\x1f")
		}
		f.contests[id] = domain.UnmarshalContestFromDatabase(id, row.ContestNames[i], row.ContestKinds[i], regions)
	}
	for i, v := range row.CountedVoters {
		f.counted[domain.BallotKey{Voter: v, Contest: row.CountedContests[i]}] = true
	}
	for i, v := range row.HeldVoters {
		f.held[domain.BallotKey{Voter: v, Contest: row.HeldContests[i]}] = true
	}
	for _, id := range row.DecidedIds {
		f.decided[id] = true
	}
	for i, part := range row.SchedulePartitions {
		f.schedules = append(f.schedules, db.VoteSchedule{Partition: part, Offset: row.ScheduleOffsets[i],
			PollsOpen: row.ScheduleOpens[i], PollsClose: row.ScheduleCloses[i]})
	}
	return f, nil
}

// voteUUID is a vote_id as the tables keep it. domain.NewVote accepted
// only UUIDs; a vote_id that does not parse is left invalid (NULL), which
// the tables refuse.
func voteUUID(id string) pgtype.UUID {
	u, err := uuid.Parse(id)
	return pgtype.UUID{Bytes: u, Valid: err == nil}
}

// decisions are the rows a batch's verdicts become.
type decisions struct {
	p db.WriteVoteDecisionsParams
}

// add records entry's verdict v. now is the recorded time of a rejection
// whose log time is unknown. A ballot names no candidate (the choice goes
// only into the tallies), and a held vote keeps its message as the log
// holds it (heldMessage).
func (d *decisions) add(e domain.VoteEntry, v domain.Verdict, now time.Time) error {
	vote := e.Vote
	p := &d.p
	switch v.Kind {
	case domain.VerdictCounted:
		p.BallotVoterIds = append(p.BallotVoterIds, vote.VoterID())
		p.BallotVoteIds = append(p.BallotVoteIds, voteUUID(vote.ID()))
		p.BallotRegions = append(p.BallotRegions, v.Voter.Region().String())
		p.BallotCastAts = append(p.BallotCastAts, vote.CastAt())
		p.BallotStationIds = append(p.BallotStationIds, vote.Station().ID())
		p.BallotContestIds = append(p.BallotContestIds, vote.ContestID())
	case domain.VerdictRejected:
		at := e.Logged
		if at.IsZero() {
			at = now
		}
		p.RejectedVoteIds = append(p.RejectedVoteIds, voteUUID(vote.ID()))
		p.RejectedReasons = append(p.RejectedReasons, v.Reason.String())
		p.RejectedVoterIds = append(p.RejectedVoterIds, vote.VoterID())
		p.RejectedCastAts = append(p.RejectedCastAts, vote.CastAt())
		p.RejectedStationIds = append(p.RejectedStationIds, vote.Station().ID())
		p.RejectedContestIds = append(p.RejectedContestIds, vote.ContestID())
		p.RejectedRecordedAts = append(p.RejectedRecordedAts, at)
	case domain.VerdictHeld:
		p.HeldVoteIds = append(p.HeldVoteIds, voteUUID(vote.ID()))
		p.HeldVoterIds = append(p.HeldVoterIds, vote.VoterID())
		msg, err := heldMessage(vote)
		if err != nil {
			return err
		}
		p.HeldMessages = append(p.HeldMessages, msg)
		p.HeldCastAts = append(p.HeldCastAts, vote.CastAt())
		p.HeldPartitions = append(p.HeldPartitions, e.Partition)
		p.HeldOffsets = append(p.HeldOffsets, e.Offset)
		p.HeldStationIds = append(p.HeldStationIds, vote.Station().ID())
		station := ""
		if vote.Station().ID() != "" {
			station = vote.Station().Region().String()
		}
		p.HeldStationRegions = append(p.HeldStationRegions, station)
		p.HeldContestIds = append(p.HeldContestIds, vote.ContestID())
		p.HeldLoggedAts = append(p.HeldLoggedAts, e.Logged)
	case domain.VerdictMisrouted:
		p.MisroutedPartitions = append(p.MisroutedPartitions, e.Partition)
		p.MisroutedOffsets = append(p.MisroutedOffsets, e.Offset)
	}
	if v.Kind != domain.VerdictMisrouted && vote.ContestID() == domain.DefaultContest {
		p.NamesDefault = true
	}
	return nil
}

// heldMessage is what held_votes keeps of a vote not decided yet (00040):
// its message as the log holds it, the choice sealed when the vote came
// sealed, so that no clear choice rests next to its voter; the store
// opens it again when it decides the vote (Store.release). A clear v1
// vote is clear in its message, as it is in the log.
func heldMessage(v domain.Vote) ([]byte, error) {
	msg, err := json.Marshal(domain.VoteCast{Vote: v.AsLogged()})
	if err != nil {
		return nil, fmt.Errorf("held vote %s: %w", v.ID(), err)
	}
	return msg, nil
}

// empty tells whether there is nothing to write.
func (d *decisions) empty() bool {
	p := &d.p
	return len(p.BallotVoteIds)+len(p.RejectedVoteIds)+len(p.HeldVoteIds)+len(p.MisroutedOffsets) == 0 && !p.NamesDefault
}

// tallyKey names one tally row: its table's key columns.
type tallyKey struct {
	a, b   string
	minute int64
}

// ballotKey groups counted ballots as add_tallies (00025) takes them: it
// rolls them up into the candidate, region, turnout and timeline tallies.
type ballotKey struct {
	region, candidate, contest string
	minute                     int64
}

// tallyGroups groups counted ballots and rejections into every tally, as
// AddTallies writes them: live per batch, replay once.
type tallyGroups struct {
	ballots                            map[ballotKey]int64
	demographics, rejections, stations map[tallyKey]int64
}

func newTallyGroups() *tallyGroups {
	return &tallyGroups{ballots: map[ballotKey]int64{}, demographics: map[tallyKey]int64{}, rejections: map[tallyKey]int64{},
		stations: map[tallyKey]int64{}}
}

// add counts entry's verdict v (counted and rejected votes only).
func (t *tallyGroups) add(e domain.VoteEntry, v domain.Verdict) {
	vote := e.Vote
	station := vote.Station().ID()
	switch v.Kind {
	case domain.VerdictCounted:
		candidate, region := vote.CandidateID(), v.Voter.Region().String()
		// Microseconds, as the projection keeps cast_at.
		at := vote.CastAt().Truncate(time.Microsecond)
		t.ballots[ballotKey{region: region, candidate: candidate, contest: vote.ContestID(), minute: at.Truncate(time.Minute).Unix()}]++
		t.demographics[tallyKey{a: "gender\x1f" + v.Voter.Gender(), b: candidate}]++
		t.demographics[tallyKey{a: "age_band\x1f" + domain.AgeBand(v.Voter.BirthDate(), at), b: candidate}]++
		if station != "" {
			t.stations[tallyKey{a: station, b: "counted"}]++
		}
	case domain.VerdictRejected:
		t.rejections[tallyKey{a: vote.ContestID(), b: v.Reason.String()}]++
		if station != "" {
			t.stations[tallyKey{a: station, b: v.Reason.String()}]++
		}
	}
}

func (t *tallyGroups) empty() bool {
	return len(t.ballots)+len(t.rejections)+len(t.stations) == 0
}

// sorted returns m's keys in key order.
func sorted(m map[tallyKey]int64) []tallyKey {
	keys := make([]tallyKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y tallyKey) int {
		return cmp.Or(cmp.Compare(x.minute, y.minute), cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b))
	})
	return keys
}

// params returns AddTallies' parameters for stripe. add_tallies locks
// each table's rows in key order itself.
func (t *tallyGroups) params(stripe int16) db.AddTalliesParams {
	p := db.AddTalliesParams{Stripe: stripe}
	for k, n := range t.ballots {
		p.Regions = append(p.Regions, k.region)
		p.CandidateIDs = append(p.CandidateIDs, k.candidate)
		p.ContestIDs = append(p.ContestIDs, k.contest)
		p.Minutes = append(p.Minutes, time.Unix(k.minute, 0).UTC())
		p.Counts = append(p.Counts, n)
	}
	for _, k := range sorted(t.demographics) {
		dimension, bucket, _ := strings.Cut(k.a, "\x1f")
		p.Dimensions = append(p.Dimensions, dimension)
		p.Buckets = append(p.Buckets, bucket)
		p.DemographicCandidateIDs = append(p.DemographicCandidateIDs, k.b)
		p.DemographicCounts = append(p.DemographicCounts, t.demographics[k])
	}
	for _, k := range sorted(t.rejections) {
		p.RejectionContestIDs = append(p.RejectionContestIDs, k.a)
		p.Reasons = append(p.Reasons, k.b)
		p.RejectionCounts = append(p.RejectionCounts, t.rejections[k])
	}
	for _, k := range sorted(t.stations) {
		p.StationIDs = append(p.StationIDs, k.a)
		p.Outcomes = append(p.Outcomes, k.b)
		p.StationCounts = append(p.StationCounts, t.stations[k])
	}
	return p
}

// decideAndWrite decides entries (in log order per partition) on the facts
// loaded for them and writes the decisions and their tallies in q's
// transaction, which holds the registration lock.
func decideAndWrite(ctx context.Context, q striped, entries []domain.VoteEntry, partitions int) (VoteBatchResult, error) {
	res := VoteBatchResult{Rejected: map[domain.RejectionReason]int{}}
	if len(entries) == 0 {
		return res, nil
	}
	facts, err := loadFacts(ctx, q.Queries, entries, partitions)
	if err != nil {
		return res, err
	}
	verdicts := domain.Decide(entries, facts)
	var rows decisions
	tallies := newTallyGroups()
	now := time.Now()
	for i, v := range verdicts {
		if err := rows.add(entries[i], v, now); err != nil {
			return res, err
		}
		tallies.add(entries[i], v)
		switch v.Kind {
		case domain.VerdictCounted:
			res.Accepted++
		case domain.VerdictHeld:
			res.Held++
		case domain.VerdictRejected:
			res.Rejected[v.Reason]++
		case domain.VerdictMisrouted:
			res.Misrouted++
		}
	}
	if !rows.empty() {
		if err := q.WriteVoteDecisions(ctx, rows.p); err != nil {
			return res, fmt.Errorf("write the decisions: %w", err)
		}
	}
	if !tallies.empty() {
		if err := q.AddTallies(ctx, tallies.params(q.stripe)); err != nil {
			return res, fmt.Errorf("add the tallies: %w", err)
		}
	}
	return res, nil
}
