package domain

import "time"

// The register as the projection stores it. These constructors rebuild
// values from rows the projection wrote after validating them (their
// events were checked on the way in), so they do not validate again: the
// decider's facts are loaded per batch, on the hot path.

// UnmarshalVoterFromDatabase returns a registered voter as the voters table
// keeps it (no name: the projection does not store it).
func UnmarshalVoterFromDatabase(id, gender string, birthDate time.Time, region string) Voter {
	return Voter{id: id, gender: gender, birthDate: birthDate, region: Region{name: region}}
}

// UnmarshalCandidateFromDatabase returns a registered candidate as far as
// the rule needs it: its id and contest.
func UnmarshalCandidateFromDatabase(id, contestID string) Candidate {
	return Candidate{id: id, contestID: contestID}
}

// UnmarshalContestFromDatabase returns a registered contest; regions are
// sorted and unique, as NewContest left them.
func UnmarshalContestFromDatabase(id, name, kind string, regions []string) Contest {
	c := Contest{id: id, name: name, kind: ContestKind{code: kind}}
	for _, r := range regions {
		c.regions = append(c.regions, Region{name: r})
	}
	return c
}
