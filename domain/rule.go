package domain

import (
	"sort"
	"time"
)

// This file is the decision rule's specification: plain Go over a whole
// log, with no I/O. The projector applies the same rule with Decide
// (decider.go), batch by batch, live and in replay; tests compare both
// with Count.
//
// The rule, which depends only on the content of the log:
//
//  0. A vote belongs on the votes partition that murmur2 of its voter_id
//     names (VotePartition), where all of its voter's votes are in log
//     order. A vote found on another partition (a producer with another
//     partitioner: sarama's default FNV-1a, CRC32) is misrouted: refused at
//     its position, counted, and otherwise ignored. It does not take its
//     vote_id, so the same vote published again on the right partition is
//     decided there, whichever the projector reads first.
//  1. Registration is open on a partition of the contests, candidates or
//     voters topic until that partition's close marker (RegistrationClosed).
//     A registration after the marker is refused. A voter and a contest
//     register once (the first event wins); a candidate's latest
//     registration wins, but its contest is fixed by the first.
//  2. Registration is closed when all three topics carry a marker on every
//     partition. A marker declares its topic's partition count; one that
//     declares another is ignored.
//  3. A vote is decided at its first occurrence in the log; a redelivery
//     changes nothing. All of a voter's votes share a partition (rule 0),
//     so log order is offset order.
//  4. While registration is open, a vote whose voter, candidate or contest
//     is not registered is held, not decided, and holds every later vote of
//     its voter in that contest. Held votes are decided, in log order, as soon as what they
//     wait for is registered, or when registration closes.
//  5. A vote whose cast_at is implausible (in the future beyond the clock
//     skew of its log time, or before EarliestPlausible; never for being
//     logged late), or outside the polls' window of the latest schedule
//     before it in its partition however late it was logged, is rejected
//     at once (CheckCastTime): that depends on the vote alone, so it is
//     never held.
//  6. A vote through a station found after that station's close marker
//     (StationClosed) in its own partition of the votes topic is rejected
//     at once (after_station_close): that depends on the vote's position
//     alone, so it is never held, and a cast_at backdated into the window
//     changes nothing.
//  7. A vote through a station not opened before it in its own partition
//     (StationOpened: the stations register, by position), or stamped with
//     another region than the station's first opening there, is rejected
//     at once (unknown_station), never held.
//  8. Otherwise a vote is decided, in this order (Check): unknown_voter,
//     wrong_station (its station does not serve its voter's region),
//     unknown_contest, not_eligible (its voter's region is not among the
//     contest's), unknown_candidate (not registered, or in another contest),
//     duplicate_voter (its voter already has a counted vote in the
//     contest), and otherwise counted. The default contest exists as soon
//     as a registered candidate or a vote names it, and is open everywhere.
//
// So an election that never closes registration (contract v1, as the
// README's kcat example runs it) counts every vote whose voter and
// candidate are registered exactly as before, and leaves the others held
// instead of guessing; replay reproduces live exactly, whatever order the
// projector read the topics in.

// LogEntry is one message of a topic partition as the rule reads it. Event
// is a CandidateRegistered, VoterRegistered or RegistrationClosed on the
// registration topics, a VoteCast or ElectionScheduled on the votes topic.
type LogEntry struct {
	Offset int64
	// Time is when the message was logged (its Kafka timestamp); zero when
	// unknown.
	Time  time.Time
	Event any
}

// ElectionLog is an election's log: per topic, each partition's entries in
// offset order (index = partition).
type ElectionLog struct {
	Contests   [][]LogEntry
	Candidates [][]LogEntry
	Voters     [][]LogEntry
	Votes      [][]LogEntry
	Stations   [][]LogEntry
}

// StationState is a reporting station as its reports leave it: the first
// report fixes its region, the first close report closes it for good.
type StationState struct {
	Region   Region
	ClosedAt time.Time
}

// BallotKey names a counted ballot: a voter has at most one per contest.
type BallotKey struct{ Voter, Contest string }

// Outcome is what the rule makes of a log.
type Outcome struct {
	// Counted maps each voter and contest with a counted vote to that vote.
	Counted map[BallotKey]Vote
	// Rejected maps each rejected vote_id to why.
	Rejected map[string]RejectionReason
	// Stations maps each decided vote_id that came through a station to
	// the station's id.
	Stations map[string]string
	// Held lists the vote_ids not decided yet, in log order.
	Held []string
	// Misrouted lists the positions (partition, offset) of the votes not
	// on their voter's partition (rule 0).
	Misrouted [][2]int64
	// Refused counts registrations refused for coming after their
	// partition's close marker, per topic; RefusedAt lists their positions
	// (partition, offset).
	Refused   map[string]int
	RefusedAt map[string][][2]int64
	// Closed tells whether registration is closed.
	Closed bool
	// Contests, Candidates and Voters are the register. Contests holds
	// DefaultContest as soon as a registered candidate or a vote names it.
	Contests   map[string]Contest
	Candidates map[string]Candidate
	Voters     map[string]Voter
	// Reporting holds every station that reported, by id, as its reports
	// leave it (reporting progress; it decides no vote).
	Reporting map[string]StationState
}

// Count applies the rule to a whole log.
func Count(log ElectionLog) Outcome {
	out := Outcome{
		Counted: map[BallotKey]Vote{}, Contests: map[string]Contest{}, Reporting: map[string]StationState{}, Rejected: map[string]RejectionReason{}, Refused: map[string]int{}, RefusedAt: map[string][][2]int64{}, Stations: map[string]string{},
		Candidates: map[string]Candidate{}, Voters: map[string]Voter{},
	}
	contestsClosed := register(log.Contests, TopicContests, &out)
	candidatesClosed := register(log.Candidates, TopicCandidates, &out)
	votersClosed := register(log.Voters, TopicVoters, &out)
	out.Closed = contestsClosed && candidatesClosed && votersClosed
	for _, c := range out.Candidates {
		if c.ContestID() == DefaultContest {
			out.Contests[DefaultContest] = DefaultContestOf()
		}
	}

	// Reporting: a station's first report fixes its region, its first
	// close report closes it. It decides no vote (rules 6 and 7 read the
	// markers on the votes topic).
	for _, partition := range log.Stations {
		for _, entry := range partition {
			r, ok := entry.Event.(StationReported)
			if !ok {
				continue
			}
			st, known := out.Reporting[r.station.id]
			if !known {
				st = StationState{Region: r.station.region}
			}
			if r.closed && st.ClosedAt.IsZero() {
				st.ClosedAt = r.reported
			}
			out.Reporting[r.station.id] = st
		}
	}

	seen := map[string]bool{}
	blocked := map[BallotKey]bool{}
	for p, partition := range log.Votes {
		var schedule *ElectionScheduled
		stationsClosed := map[string]bool{}
		stationsOpened := map[string]Region{}
		for _, entry := range partition {
			if o, ok := entry.Event.(StationOpened); ok {
				for _, s := range o.stations {
					if _, opened := stationsOpened[s.id]; !opened {
						stationsOpened[s.id] = s.region
					}
				}
				continue
			}
			if s, ok := entry.Event.(ElectionScheduled); ok {
				schedule = &s
				continue
			}
			if c, ok := entry.Event.(StationClosed); ok {
				for _, id := range c.stationIDs {
					stationsClosed[id] = true
				}
				continue
			}
			vc, ok := entry.Event.(VoteCast)
			if !ok {
				continue
			}
			v := vc.Vote
			if VotePartition(v.VoterID(), len(log.Votes)) != int32(p) {
				out.Misrouted = append(out.Misrouted, [2]int64{int64(p), entry.Offset})
				continue
			}
			if v.ContestID() == DefaultContest {
				out.Contests[DefaultContest] = DefaultContestOf()
			}
			if seen[v.ID()] {
				continue
			}
			seen[v.ID()] = true
			if reason, rejected := CheckCastTime(v.CastAt(), entry.Time, schedule); rejected {
				out.Rejected[v.ID()] = reason
				out.Stations[v.ID()] = v.Station().ID()
				continue
			}
			if v.Station() != (Station{}) {
				reason, rejected := RejectionReason{}, false
				if stationsClosed[v.Station().ID()] {
					reason, rejected = RejectAfterStationClose, true
				} else if region, opened := stationsOpened[v.Station().ID()]; !opened || region != v.Station().region {
					reason, rejected = RejectUnknownStation, true
				}
				if rejected {
					out.Rejected[v.ID()] = reason
					out.Stations[v.ID()] = v.Station().ID()
					continue
				}
			}
			key := BallotKey{v.VoterID(), v.ContestID()}
			voter, voterKnown := out.Voters[v.VoterID()]
			candidate, candidateKnown := out.Candidates[v.CandidateID()]
			contest, contestKnown := out.Contests[v.ContestID()]
			if !out.Closed && (blocked[key] || !voterKnown || !candidateKnown || !contestKnown) {
				blocked[key] = true
				out.Held = append(out.Held, v.ID())
				continue
			}
			out.Stations[v.ID()] = v.Station().ID()
			_, counted := out.Counted[key]
			reg := Registration{Voter: voter, VoterKnown: voterKnown, Candidate: candidate, CandidateKnown: candidateKnown,
				Contest: contest, ContestKnown: contestKnown, HasCounted: counted}
			if reason, rejected := Check(v, reg); rejected {
				out.Rejected[v.ID()] = reason
			} else {
				out.Counted[key] = v
			}
		}
	}
	return out
}

// Registration is what the register says about a vote's voter, candidate
// and contest when it is decided.
type Registration struct {
	Voter          Voter
	VoterKnown     bool
	Candidate      Candidate
	CandidateKnown bool
	Contest        Contest
	ContestKnown   bool
	// HasCounted tells whether the voter already has a counted vote in the
	// vote's contest.
	HasCounted bool
}

// Check is rule 8: why a vote is rejected, or rejected=false when it
// counts.
func Check(v Vote, r Registration) (reason RejectionReason, rejected bool) {
	switch {
	case !r.VoterKnown:
		return RejectUnknownVoter, true
	case v.station != (Station{}) && v.station.region != r.Voter.region:
		return RejectWrongStation, true
	case !r.ContestKnown:
		return RejectUnknownContest, true
	case !r.Contest.OpenTo(r.Voter.region):
		return RejectNotEligible, true
	case !r.CandidateKnown || r.Candidate.contestID != v.contestID:
		return RejectUnknownCandidate, true
	case r.HasCounted:
		return RejectDuplicateVoter, true
	}
	return RejectionReason{}, false
}

// register applies rule 1 to one registration topic and reports rule 2's
// half for it: whether every declared partition carries a marker.
func register(partitions [][]LogEntry, topic string, out *Outcome) (closed bool) {
	declared, marked := 0, map[int]bool{}
	for p, entries := range partitions {
		open := true
		for _, entry := range entries {
			switch e := entry.Event.(type) {
			case RegistrationClosed:
				// A marker that miscounts the topic's partitions is
				// ignored: it could close registration early.
				if open && e.Partitions() == len(partitions) {
					open = false
					marked[p] = true
					declared = max(declared, e.Partitions())
				}
			case CandidateRegistered:
				if !open {
					out.Refused[topic]++
					out.RefusedAt[topic] = append(out.RefusedAt[topic], [2]int64{int64(p), entry.Offset})
					continue
				}
				c := e.Candidate
				if first, ok := out.Candidates[c.ID()]; ok {
					c.contestID = first.contestID // a candidate's contest is fixed
				}
				out.Candidates[c.ID()] = c
			case ContestRegistered:
				if !open {
					out.Refused[topic]++
					out.RefusedAt[topic] = append(out.RefusedAt[topic], [2]int64{int64(p), entry.Offset})
					continue
				}
				if _, ok := out.Contests[e.Contest.ID()]; !ok {
					out.Contests[e.Contest.ID()] = e.Contest
				}
			case VoterRegistered:
				if !open {
					out.Refused[topic]++
					out.RefusedAt[topic] = append(out.RefusedAt[topic], [2]int64{int64(p), entry.Offset})
					continue
				}
				if _, ok := out.Voters[e.Voter.ID()]; !ok {
					out.Voters[e.Voter.ID()] = e.Voter
				}
			}
		}
	}
	if declared == 0 {
		return false
	}
	for p := range declared {
		if !marked[p] {
			return false
		}
	}
	return true
}

// SortedHeld returns o.Held sorted, for comparisons that ignore order.
func (o Outcome) SortedHeld() []string {
	h := append([]string(nil), o.Held...)
	sort.Strings(h)
	return h
}
