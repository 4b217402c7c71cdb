package domain

import (
	"encoding/json"
	"slices"
)

// DefaultContest is the contest of every candidate and vote that names
// none (contract v1): open to every region, so v1 producers work unchanged.
const DefaultContest = "default"

// TopicContests is the contract v1.2 topic of contest registrations, keyed
// by contest_id.
const TopicContests = "contests"

// ContestKind says what a contest's choices are.
type ContestKind struct{ code string }

// The contest kinds: a race between candidates, or a measure whose choices
// (yes, no) are candidates of the contest.
var (
	KindCandidate = ContestKind{"candidate"}
	KindMeasure   = ContestKind{"measure"}
)

// String returns the kind's code.
func (k ContestKind) String() string { return k.code }

// Contest is one race or measure on the ballot.
type Contest struct {
	id, name string
	kind     ContestKind
	regions  []Region
}

// NewContest validates a contest. No regions means every region.
func NewContest(id, name string, kind ContestKind, regions []Region) (Contest, error) {
	if err := validID("contest_id", id); err != nil {
		return Contest{}, err
	}
	if err := validText("name", name, maxNameLen, true); err != nil {
		return Contest{}, err
	}
	if kind != KindCandidate && kind != KindMeasure {
		return Contest{}, invalid("kind", "must be candidate or measure")
	}
	regions = slices.Clone(regions)
	slices.SortFunc(regions, func(a, b Region) int { return compareStrings(a.name, b.name) })
	regions = slices.Compact(regions)
	return Contest{id: id, name: name, kind: kind, regions: regions}, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ID returns the contest's identifier.
func (c Contest) ID() string { return c.id }

// Name returns the contest's name.
func (c Contest) Name() string { return c.name }

// Kind returns whether it is a race or a measure.
func (c Contest) Kind() ContestKind { return c.kind }

// Regions returns the regions whose voters may vote in it, sorted; none
// means every region.
func (c Contest) Regions() []Region { return slices.Clone(c.regions) }

// OpenTo reports whether a voter of region may vote in the contest.
func (c Contest) OpenTo(region Region) bool {
	return len(c.regions) == 0 || slices.Contains(c.regions, region)
}

// DefaultContestOf returns the default contest, open to every region.
func DefaultContestOf() Contest {
	return Contest{id: DefaultContest, name: DefaultContest, kind: KindCandidate}
}

// ContestRegistered announces a contest (the first event for a contest_id
// wins: its regions decide eligibility, so they cannot change).
type ContestRegistered struct{ Contest Contest }

type contestWire struct {
	ContestID string   `json:"contest_id"`
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Regions   []string `json:"regions"`
}

// Key returns the message key: the contest_id.
func (e ContestRegistered) Key() string { return e.Contest.id }

// MarshalJSON encodes the event as the contract gives it.
func (e ContestRegistered) MarshalJSON() ([]byte, error) {
	c := e.Contest
	regions := make([]string, len(c.regions))
	for i, r := range c.regions {
		regions[i] = r.name
	}
	return json.Marshal(contestWire{c.id, c.name, c.kind.code, regions})
}

// DecodeContestRegistered parses and validates a contests message.
func DecodeContestRegistered(payload []byte) (ContestRegistered, error) {
	var w contestWire
	if err := decodeStrict(payload, &w); err != nil {
		return ContestRegistered{}, err
	}
	var regions []Region
	for _, name := range w.Regions {
		r, err := NewRegion(name)
		if err != nil {
			return ContestRegistered{}, invalid("regions", "must be regions: %v", err)
		}
		regions = append(regions, r)
	}
	if w.ContestID == DefaultContest {
		return ContestRegistered{}, invalid("contest_id", "%q is reserved for the votes and candidates that name no contest", DefaultContest)
	}
	c, err := NewContest(w.ContestID, w.Name, ContestKind{w.Kind}, regions)
	if err != nil {
		return ContestRegistered{}, err
	}
	return ContestRegistered{Contest: c}, nil
}
