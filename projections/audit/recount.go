package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
)

// ErrTruncatedLog is returned when a topic's first offset is not 0: the
// log no longer holds the whole election (retention or compaction removed
// its start), so neither a recount nor a rebuild can be complete.
var ErrTruncatedLog = errors.New("the log is truncated")

// CheckLogComplete returns ErrTruncatedLog, naming the topic and
// partition, when the log has lost its start on any event topic.
func CheckLogComplete(ctx context.Context, log projections.ReplayLog) error {
	for _, topic := range domain.EventTopics {
		low, err := log.LowWatermarks(ctx, topic)
		if err != nil {
			return fmt.Errorf("first offsets of %s: %w", topic, err)
		}
		for p, off := range low {
			if off > 0 {
				return fmt.Errorf("%w: %s/%d starts at offset %d, not 0", ErrTruncatedLog, topic, p, off)
			}
		}
	}
	return nil
}

// RecountReport is what an independent recount found.
type RecountReport struct {
	// Offsets are the applied offsets the projection was read at, and up to
	// which the log was recounted.
	Offsets map[string]map[int32]int64
	// EventsRead counts the messages recounted per topic.
	EventsRead map[string]int64
	// Tables lists the comparisons, table by table.
	Tables []projections.TableDiff
	// Compared counts the tables compared.
	Compared int
	Duration time.Duration
}

// Differences returns the tables that differ.
func (r RecountReport) Differences() []projections.TableDiff {
	var out []projections.TableDiff
	for _, t := range r.Tables {
		if t.OnlyLive+t.OnlyRebuilt > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Recount is the auditor's independent count: it reads the projection in
// one snapshot, reads the log from its start up to the projection's
// applied offsets, decides every event with the rule's specification in Go
// (domain.Count, no SQL), works out every table from that, and compares
// the two, row by row. A consistent edit of the projection (a ballot moved
// to another candidate with every tally adjusted), a deleted ballot and an
// inserted one all show up as rows only one side has. progress (may be
// nil) is told how many messages have been read of how many. opener
// decodes the votes as the projector does (its tally key opens sealed
// choices; nil: clear votes only).
func Recount(ctx context.Context, pool *pgxpool.Pool, log projections.ReplayLog, opener *domain.Opener, progress func(done, total int64)) (RecountReport, error) {
	start := time.Now()
	rep := RecountReport{EventsRead: map[string]int64{}}
	live, offsets, err := readLive(ctx, pool)
	if err != nil {
		return rep, err
	}
	rep.Offsets = offsets

	var total, done int64
	for _, topic := range domain.EventTopics {
		for _, end := range offsets[topic] {
			total += end
		}
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	progress(0, total)
	dead := rowSet{}
	el, err := readElectionLog(ctx, log, opener, offsets, dead, func(topic string, n int64, k int) {
		rep.EventsRead[topic] = n
		done += int64(k)
		progress(done, total)
	})
	if err != nil {
		return rep, err
	}
	want := expected(domain.Count(el), el)
	want["dead_letters"] = dead
	for _, table := range recountTables() {
		d := diffRows(table, live[table], want[table])
		rep.Tables = append(rep.Tables, d)
	}
	rep.Compared = len(recountTables())
	rep.Duration = time.Since(start)
	return rep, nil
}

// recountTables are the tables a recount checks (projections.Tables marks
// them Recount), in report order.
func recountTables() []string {
	var out []string
	for _, t := range projections.Tables() {
		if t.Recount {
			out = append(out, t.Name)
		}
	}
	return out
}

// rowSet is a table as a multiset of rows, each row rendered as text.
type rowSet map[string]int

func (s rowSet) add(cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		switch v := c.(type) {
		case time.Time:
			parts[i] = v.UTC().Format(time.RFC3339Nano)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	s[strings.Join(parts, " | ")]++
}

// diffRows compares a table's live rows with the recount's. OnlyLive are
// rows the projection has and the log does not justify; OnlyRebuilt rows
// the log justifies and the projection lacks.
func diffRows(table string, live, want rowSet) projections.TableDiff {
	d := projections.TableDiff{Table: table}
	var examples []string
	for row, n := range live {
		if extra := n - want[row]; extra > 0 {
			d.OnlyLive += int64(extra)
			examples = append(examples, "projection only: "+row)
		}
	}
	for row, n := range want {
		if missing := n - live[row]; missing > 0 {
			d.OnlyRebuilt += int64(missing)
			examples = append(examples, "log only:        "+row)
		}
	}
	slices.Sort(examples)
	if len(examples) > 5 {
		examples = examples[:5]
	}
	d.Examples = examples
	return d
}

// readLive reads every compared table and the applied offsets in one
// snapshot.
func readLive(ctx context.Context, pool *pgxpool.Pool) (map[string]rowSet, map[string]map[int32]int64, error) {
	tables := map[string]rowSet{}
	for _, t := range recountTables() {
		tables[t] = rowSet{}
	}
	var offsets map[string]map[int32]int64
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		q := db.New(tx)
		var err error
		if offsets, err = dbutil.AppliedOffsets(ctx, q); err != nil {
			return err
		}
		return readTables(ctx, q, tables)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read the projection: %w", err)
	}
	return tables, offsets, nil
}

func readTables(ctx context.Context, q *db.Queries, t map[string]rowSet) error {
	contests, err := q.RecountContests(ctx)
	if err != nil {
		return err
	}
	for _, c := range contests {
		t["contests"].add(c.ContestID, c.Name, c.Kind, c.Regions)
	}
	turnout, err := q.RecountContestTurnout(ctx)
	if err != nil {
		return err
	}
	for _, c := range turnout {
		t["contest_turnout"].add(c.ContestID, c.Region, c.VotesCast)
	}
	candidates, err := q.RecountCandidates(ctx)
	if err != nil {
		return err
	}
	for _, c := range candidates {
		t["candidates"].add(c.CandidateID, c.Name, c.Party, c.Biography, c.Platform, c.PhotoURL, c.ContestID)
	}
	regions, err := q.RecountRegions(ctx)
	if err != nil {
		return err
	}
	for _, r := range regions {
		t["regions"].add(r.Region, r.RegisteredVoters, r.VotesCast)
	}
	ballots, err := q.RecountBallots(ctx)
	if err != nil {
		return err
	}
	for _, b := range ballots {
		// A ballot names no candidate (00040): the candidates are
		// compared in the tallies, recounted from the log and the key.
		t["ballots"].add(b.VoterID, b.VoteID, b.Region, b.CastAt, b.StationID, b.ContestID)
	}
	rejections, err := q.RecountRejections(ctx)
	if err != nil {
		return err
	}
	for _, r := range rejections {
		t["rejections"].add(r.VoteID, r.Reason, r.VoterID, r.CastAt, r.StationID, r.ContestID)
	}
	held, err := q.RecountHeld(ctx)
	if err != nil {
		return err
	}
	for _, h := range held {
		t["held_votes"].add(h)
	}
	ct, err := q.RecountCandidateTallies(ctx)
	if err != nil {
		return err
	}
	for _, r := range ct {
		t["candidate_tallies"].add(r.CandidateID, r.Votes)
	}
	rt, err := q.RecountRegionTallies(ctx)
	if err != nil {
		return err
	}
	for _, r := range rt {
		t["region_tallies"].add(r.Region, r.CandidateID, r.Votes)
	}
	jt, err := q.RecountRejectionTallies(ctx)
	if err != nil {
		return err
	}
	for _, r := range jt {
		t["rejection_tallies"].add(r.ContestID, r.Reason, r.Count)
	}
	tl, err := q.RecountTimeline(ctx)
	if err != nil {
		return err
	}
	for _, r := range tl {
		t["timeline"].add(r.Minute, r.CandidateID, r.Votes)
	}
	dt, err := q.RecountDemographics(ctx)
	if err != nil {
		return err
	}
	for _, r := range dt {
		t["demographic_tallies"].add(r.Dimension, r.Bucket, r.CandidateID, r.Votes)
	}
	st, err := q.RecountStations(ctx)
	if err != nil {
		return err
	}
	for _, r := range st {
		t["station_tallies"].add(r.StationID, r.Outcome, r.Votes)
	}
	refused, err := q.RecountRefused(ctx)
	if err != nil {
		return err
	}
	for _, r := range refused {
		t["refused_registrations"].add(r.Topic, r.Partition, r.Offset)
	}
	misrouted, err := q.RecountMisrouted(ctx)
	if err != nil {
		return err
	}
	for _, r := range misrouted {
		t["misrouted_votes"].add(r.Partition, r.Offset)
	}
	stations, err := q.ListStations(ctx)
	if err != nil {
		return err
	}
	for _, st := range stations {
		closed := ""
		if st.ClosedAt != nil {
			closed = st.ClosedAt.UTC().Format(time.RFC3339Nano)
		}
		t["stations"].add(st.StationID, st.Region, closed)
	}
	dead, err := q.RecountDeadLetters(ctx)
	if err != nil {
		return err
	}
	for _, r := range dead {
		t["dead_letters"].add(r.Topic, r.Partition, r.Offset)
	}
	return nil
}

// readTopic reads topic from offset 0 up to ends and decodes each message
// as the projector does; what cannot be decoded is a dead letter.
func readTopic(ctx context.Context, log projections.ReplayLog, opener *domain.Opener, topic string, ends map[int32]int64, dead rowSet, read func(int)) ([][]domain.LogEntry, int64, error) {
	// Every partition of the topic, read or not: the rule checks a vote's
	// partition against the topic's count (rule 0).
	marks, err := log.HighWatermarks(ctx, topic)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", topic, err)
	}
	parts := make([][]domain.LogEntry, len(marks))
	from := map[int32]int64{}
	for p := range ends {
		from[p] = 0
		for int(p) >= len(parts) {
			parts = append(parts, nil)
		}
	}
	var n int64
	err = log.ReadRange(ctx, topic, from, ends, func(recs []projections.LogRecord) error {
		for _, rec := range recs {
			ev, err := opener.Decode(topic, rec.Value)
			if errors.Is(err, domain.ErrTallyKey) {
				return err // not the message's fault: the recount cannot go on
			}
			if err != nil {
				dead.add(topic, rec.Partition, rec.Offset)
				continue
			}
			parts[rec.Partition] = append(parts[rec.Partition], domain.LogEntry{Offset: rec.Offset, Time: rec.Time, Event: ev})
		}
		n += int64(len(recs))
		read(len(recs))
		return nil
	})
	if err != nil {
		return nil, n, fmt.Errorf("read %s: %w", topic, err)
	}
	return parts, n, nil
}

// readElectionLog reads every topic the rule reads, from offset 0 up to
// ends, into an ElectionLog; dead collects the messages that do not
// decode, and read is told, per batch, the topic, its messages read so far
// and the batch's size.
func readElectionLog(ctx context.Context, log projections.ReplayLog, opener *domain.Opener, ends map[string]map[int32]int64, dead rowSet, read func(topic string, n int64, k int)) (domain.ElectionLog, error) {
	var el domain.ElectionLog
	for _, topic := range domain.EventTopics {
		var n int64
		parts, _, err := readTopic(ctx, log, opener, topic, ends[topic], dead, func(k int) {
			n += int64(k)
			read(topic, n, k)
		})
		if err != nil {
			return el, err
		}
		switch topic {
		case domain.TopicContests:
			el.Contests = parts
		case domain.TopicStations:
			el.Stations = parts
		case domain.TopicOperatorActions:
			// Operator actions decide nothing; replay --verify compares them.
		case domain.TopicCandidates:
			el.Candidates = parts
		case domain.TopicVoters:
			el.Voters = parts
		default:
			el.Votes = parts
		}
	}
	return el, nil
}

// expected works out every compared table from the rule's outcome.
func expected(o domain.Outcome, el domain.ElectionLog) map[string]rowSet {
	t := map[string]rowSet{}
	for _, name := range recountTables() {
		t[name] = rowSet{}
	}
	for _, c := range o.Contests {
		regions := make([]string, 0, len(c.Regions()))
		for _, r := range c.Regions() {
			regions = append(regions, r.String())
		}
		t["contests"].add(c.ID(), c.Name(), c.Kind().String(), strings.Join(regions, ","))
	}
	for _, c := range o.Candidates {
		t["candidates"].add(c.ID(), c.Name(), c.Party().String(), c.Biography(), c.Platform(), c.PhotoURL(), c.ContestID())
	}
	registered, cast := map[string]int64{}, map[string]int64{}
	for _, v := range o.Voters {
		registered[v.Region().String()]++
	}
	counts := map[string]map[string]int64{}
	bump := func(table string, key ...any) {
		if counts[table] == nil {
			counts[table] = map[string]int64{}
		}
		parts := make([]string, len(key))
		for i, k := range key {
			if tm, ok := k.(time.Time); ok {
				parts[i] = tm.UTC().Format(time.RFC3339Nano)
			} else {
				parts[i] = fmt.Sprint(k)
			}
		}
		counts[table][strings.Join(parts, " | ")]++
	}
	// PostgreSQL keeps microseconds: pgx sends times truncated to them.
	castAt := func(v domain.Vote) time.Time { return v.CastAt().Truncate(time.Microsecond) }
	for key, v := range o.Counted {
		voter := o.Voters[key.Voter]
		region := voter.Region().String()
		if key.Contest == domain.DefaultContest {
			cast[region]++
		}
		bump("contest_turnout", key.Contest, region)
		t["ballots"].add(key.Voter, v.ID(), region, castAt(v), v.Station().ID(), key.Contest)
		bump("candidate_tallies", v.CandidateID())
		bump("region_tallies", region, v.CandidateID())
		bump("timeline", castAt(v).Truncate(time.Minute), v.CandidateID())
		bump("demographic_tallies", "gender", voter.Gender(), v.CandidateID())
		bump("demographic_tallies", "age_band", domain.AgeBand(voter.BirthDate(), castAt(v)), v.CandidateID())
		if st := v.Station().ID(); st != "" {
			bump("station_tallies", st, "counted")
		}
	}
	for region, n := range registered {
		t["regions"].add(region, n, cast[region])
	}
	// The vote each vote_id names is its first occurrence on its voter's
	// partition: a misrouted copy (rule 0) takes no vote_id, so a vote_id
	// reused there is another vote's.
	votes := map[string]domain.Vote{}
	for p, part := range el.Votes {
		for _, e := range part {
			if vc, ok := e.Event.(domain.VoteCast); ok && domain.VotePartition(vc.Vote.VoterID(), len(el.Votes)) == int32(p) {
				if _, seen := votes[vc.Vote.ID()]; !seen {
					votes[vc.Vote.ID()] = vc.Vote
				}
			}
		}
	}
	for id, reason := range o.Rejected {
		v := votes[id]
		t["rejections"].add(id, reason.String(), v.VoterID(), castAt(v), v.Station().ID(), v.ContestID())
		bump("rejection_tallies", v.ContestID(), reason.String())
		if st := v.Station().ID(); st != "" {
			bump("station_tallies", st, reason.String())
		}
	}
	for _, id := range o.Held {
		t["held_votes"].add(id)
	}
	for table, keys := range counts {
		for key, n := range keys {
			t[table][key+" | "+fmt.Sprint(n)]++
		}
	}
	for id, st := range o.Reporting {
		closed := ""
		if !st.ClosedAt.IsZero() {
			closed = st.ClosedAt.Truncate(time.Microsecond).UTC().Format(time.RFC3339Nano)
		}
		t["stations"].add(id, st.Region.String(), closed)
	}
	for topic, positions := range o.RefusedAt {
		for _, pos := range positions {
			t["refused_registrations"].add(topic, pos[0], pos[1])
		}
	}
	for _, pos := range o.Misrouted {
		t["misrouted_votes"].add(pos[0], pos[1])
	}
	return t
}

// FormatRecount renders a recount's differences for people.
func FormatRecount(diffs []projections.TableDiff) string {
	var b strings.Builder
	for _, d := range diffs {
		fmt.Fprintf(&b, "%s: %d rows the projection has and the log does not justify, %d the log justifies and the projection lacks\n",
			d.Table, d.OnlyLive, d.OnlyRebuilt)
		for _, e := range d.Examples {
			fmt.Fprintf(&b, "    %s\n", e)
		}
	}
	return b.String()
}

// ErrLagging is returned by CheckCaughtUp when the projection has not
// applied the whole log: a recount at its offsets would pass while votes
// it has not counted wait in the log.
var ErrLagging = errors.New("the projection lags the log's end")

// CheckCaughtUp compares the projection's applied offsets with the log's
// ends, topic by topic, and describes the first partition behind.
func CheckCaughtUp(ctx context.Context, pool *pgxpool.Pool, log projections.ReplayLog) error {
	applied, err := AllAppliedOffsets(ctx, pool)
	if err != nil {
		return err
	}
	for _, topic := range domain.EventTopics {
		ends, err := log.HighWatermarks(ctx, topic)
		if err != nil {
			return fmt.Errorf("ends of %s: %w", topic, err)
		}
		for p, end := range ends {
			if got := applied[topic][p]; got < end {
				return fmt.Errorf("%w: %s/%d applied up to offset %d of %d", ErrLagging, topic, p, got, end)
			}
		}
	}
	return nil
}
