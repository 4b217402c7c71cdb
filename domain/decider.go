package domain

import "time"

// This file is the decision rule as the projector runs it, live and in
// replay: Decide, a pure function of a batch of votes and the facts it is
// given (the Decider pattern: decide(command, state) → events). Live loads
// the facts for a batch's keys from the database, replay keeps them in
// memory (Ledger); neither decides anything itself. Count, in rule.go, is
// the whole-log specification both are tested against.

// VoteEntry is a vote as the decider reads it: the vote and where the log
// holds it.
type VoteEntry struct {
	Vote      Vote
	Partition int32
	Offset    int64
	// Logged is when the message was logged (its Kafka timestamp); zero
	// when unknown.
	Logged time.Time
	// Released marks a held vote decided again: the time rule passed it
	// when it was first read, and it still holds its vote_id.
	Released bool
}

// Facts is what the decider needs to know besides the votes it decides:
// the register, the decisions already made, and the log's control events.
// An implementation answers for the state before the batch; Decide folds
// the batch's own decisions in as it goes.
type Facts interface {
	// Voter, Candidate and Contest look the register up.
	Voter(id string) (Voter, bool)
	Candidate(id string) (Candidate, bool)
	Contest(id string) (Contest, bool)
	// StationOpened tells the region a station opened with before offset
	// in the votes partition, and whether it did (rule 7).
	StationOpened(station string, partition int32, offset int64) (Region, bool)
	// StationClosed tells whether a close marker of the station lies
	// before offset in the votes partition (rule 6).
	StationClosed(station string, partition int32, offset int64) bool
	// HasCounted tells whether the voter has a counted vote in the contest.
	HasCounted(voter, contest string) bool
	// IsHeld tells whether a vote of the voter in the contest is held.
	IsHeld(voter, contest string) bool
	// Decided tells whether a vote_id was decided (or held) before.
	Decided(voteID string) bool
	// Schedule is the latest schedule before offset in the votes
	// partition, or nil.
	Schedule(partition int32, offset int64) *ElectionScheduled
	// RegistrationClosed tells whether registration is closed (rule 2).
	RegistrationClosed() bool
	// VotePartitions is the votes topic's partition count, by which a
	// vote's partition is checked (rule 0); 0 when unknown, unchecked.
	VotePartitions() int
}

// Verdict kinds.
const (
	// VerdictSkipped: the vote_id was decided before (a redelivery).
	VerdictSkipped VerdictKind = iota
	// VerdictCounted: the vote is a ballot.
	VerdictCounted
	// VerdictRejected: the vote did not count, for Verdict.Reason.
	VerdictRejected
	// VerdictHeld: the vote waits for registration (rule 4).
	VerdictHeld
	// VerdictMisrouted: the vote is not on its voter's partition (rule
	// 0). It is refused by position and does not take its vote_id.
	VerdictMisrouted
)

// VerdictKind is what became of a vote.
type VerdictKind uint8

// Verdict is the decision on one vote.
type Verdict struct {
	Kind   VerdictKind
	Reason RejectionReason // VerdictRejected only
	// Voter is the register's entry for the vote's voter, when known
	// (a counted vote's is always known): its region and demographics go
	// into the tallies.
	Voter Voter
}

// Decide decides entries, in order (each partition's in offset order), on
// facts: the rule of rule.go, vote by vote, with the batch's own decisions
// folded into what facts say. It reads nothing else and changes nothing:
// the caller stores the verdicts (verdicts[i] is entries[i]'s).
func Decide(entries []VoteEntry, facts Facts) []Verdict {
	out := make([]Verdict, len(entries))
	var (
		decided = map[string]bool{}
		counted = map[BallotKey]bool{}
		held    = map[BallotKey]bool{}
	)
	closed := facts.RegistrationClosed()
	parts := facts.VotePartitions()
	for i, e := range entries {
		v := e.Vote
		if parts > 0 && e.Partition != VotePartition(v.VoterID(), parts) {
			out[i] = Verdict{Kind: VerdictMisrouted}
			continue
		}
		if decided[v.ID()] || (!e.Released && facts.Decided(v.ID())) {
			out[i] = Verdict{Kind: VerdictSkipped}
			continue
		}
		decided[v.ID()] = true
		if !e.Released {
			if reason, rejected := CheckCastTime(v.CastAt(), e.Logged, facts.Schedule(e.Partition, e.Offset)); rejected {
				out[i] = Verdict{Kind: VerdictRejected, Reason: reason}
				continue
			}
			// Rule 6, by position: a marker after the vote, read while it
			// was held, does not reach back to it.
			if v.Station() != (Station{}) && facts.StationClosed(v.Station().ID(), e.Partition, e.Offset) {
				out[i] = Verdict{Kind: VerdictRejected, Reason: RejectAfterStationClose}
				continue
			}
			// Rule 7, by position too.
			if v.Station() != (Station{}) {
				if region, opened := facts.StationOpened(v.Station().ID(), e.Partition, e.Offset); !opened || region != v.Station().region {
					out[i] = Verdict{Kind: VerdictRejected, Reason: RejectUnknownStation}
					continue
				}
			}
		}
		key := BallotKey{v.VoterID(), v.ContestID()}
		voter, voterKnown := facts.Voter(v.VoterID())
		candidate, candidateKnown := facts.Candidate(v.CandidateID())
		contest, contestKnown := facts.Contest(v.ContestID())
		if v.ContestID() == DefaultContest {
			// The default contest exists as soon as a vote names it.
			contest, contestKnown = DefaultContestOf(), true
		}
		if !closed && (held[key] || facts.IsHeld(key.Voter, key.Contest) || !voterKnown || !candidateKnown || !contestKnown) {
			held[key] = true
			out[i] = Verdict{Kind: VerdictHeld, Voter: voter}
			continue
		}
		reg := Registration{Voter: voter, VoterKnown: voterKnown, Candidate: candidate, CandidateKnown: candidateKnown,
			Contest: contest, ContestKnown: contestKnown, HasCounted: counted[key] || facts.HasCounted(key.Voter, key.Contest)}
		if reason, rejected := Check(v, reg); rejected {
			out[i] = Verdict{Kind: VerdictRejected, Reason: reason, Voter: voter}
			continue
		}
		counted[key] = true
		out[i] = Verdict{Kind: VerdictCounted, Voter: voter}
	}
	return out
}

// VotePartition is the partition of the votes topic that a vote of voterID
// belongs on: murmur2 of the key, as the Java client (and kcat's
// murmur2_random, franz-go's default, sarama's NewMurmur2Partitioner)
// partitions, over partitions partitions.
func VotePartition(voterID string, partitions int) int32 {
	return int32((murmur2([]byte(voterID)) & 0x7fffffff) % uint32(partitions))
}

// murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils).
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length % 4 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Ledger is Facts kept in memory: the register, and the decisions folded in
// with Record. A replay decides a whole log on one; tests drive Decide
// with it. Not safe for concurrent use.
type Ledger struct {
	Voters     map[string]Voter
	Candidates map[string]Candidate
	Contests   map[string]Contest
	Closed     bool
	// Partitions is the votes topic's partition count (0: unchecked).
	Partitions int
	counted    map[BallotKey]bool
	held       map[BallotKey]bool
	decided    map[string]bool
	// schedules holds each partition's schedules in offset order.
	schedules map[int32][]scheduleAt
	// StationMarkers answers StationOpened and StationClosed.
	*StationMarkers
}

type scheduleAt struct {
	offset   int64
	schedule ElectionScheduled
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{Voters: map[string]Voter{}, Candidates: map[string]Candidate{}, Contests: map[string]Contest{},
		counted: map[BallotKey]bool{}, held: map[BallotKey]bool{},
		decided: map[string]bool{}, schedules: map[int32][]scheduleAt{}, StationMarkers: NewStationMarkers()}
}

// Voter implements Facts.
func (l *Ledger) Voter(id string) (Voter, bool) { v, ok := l.Voters[id]; return v, ok }

// Candidate implements Facts.
func (l *Ledger) Candidate(id string) (Candidate, bool) { c, ok := l.Candidates[id]; return c, ok }

// Contest implements Facts.
func (l *Ledger) Contest(id string) (Contest, bool) { c, ok := l.Contests[id]; return c, ok }

// HasCounted implements Facts.
func (l *Ledger) HasCounted(voter, contest string) bool { return l.counted[BallotKey{voter, contest}] }

// IsHeld implements Facts.
func (l *Ledger) IsHeld(voter, contest string) bool { return l.held[BallotKey{voter, contest}] }

// Decided implements Facts.
func (l *Ledger) Decided(voteID string) bool { return l.decided[voteID] }

// RegistrationClosed implements Facts.
func (l *Ledger) RegistrationClosed() bool { return l.Closed }

// VotePartitions implements Facts.
func (l *Ledger) VotePartitions() int { return l.Partitions }

// Schedule implements Facts.
func (l *Ledger) Schedule(partition int32, offset int64) *ElectionScheduled {
	var at *ElectionScheduled
	for i, s := range l.schedules[partition] {
		if s.offset < offset {
			at = &l.schedules[partition][i].schedule
		}
	}
	return at
}

// Schedule records a schedule read at a votes partition's offset.
func (l *Ledger) AddSchedule(partition int32, offset int64, s ElectionScheduled) {
	l.schedules[partition] = append(l.schedules[partition], scheduleAt{offset, s})
}

// Record folds Decide's verdicts on entries into the ledger (evolve).
// Released entries that are held again stay held.
func (l *Ledger) Record(entries []VoteEntry, verdicts []Verdict) {
	for i, e := range entries {
		v := e.Vote
		key := BallotKey{v.VoterID(), v.ContestID()}
		switch verdicts[i].Kind {
		case VerdictCounted:
			l.counted[key] = true
		case VerdictHeld:
			l.held[key] = true
		}
		if k := verdicts[i].Kind; k != VerdictMisrouted && k != VerdictSkipped {
			l.decided[v.ID()] = true
		}
	}
}

// Release takes the held votes out of the ledger's holds, for Decide to
// decide again (marked Released): held are every held vote, in log order.
func (l *Ledger) Release(held []VoteEntry) {
	for _, e := range held {
		delete(l.held, BallotKey{e.Vote.VoterID(), e.Vote.ContestID()})
	}
}
