package domain

import (
	"net/url"
)

// Candidate stands for election, under a party or none: an independent
// candidate, or a measure's choice (contract v1.3).
type Candidate struct {
	id        string
	name      string
	party     Party
	biography string
	platform  string
	photoURL  string
	contestID string
}

// NewCandidate validates a candidate. party may be the zero Party: the
// candidate stands for none. photoURL may be empty; when set it must be an
// absolute http(s) URL.
func NewCandidate(id, name string, party Party, biography, platform, photoURL string) (Candidate, error) {
	if err := validID("candidate_id", id); err != nil {
		return Candidate{}, err
	}
	if err := validText("name", name, maxNameLen, true); err != nil {
		return Candidate{}, err
	}
	if err := validText("biography", biography, maxTextLen, false); err != nil {
		return Candidate{}, err
	}
	if err := validText("platform", platform, maxTextLen, false); err != nil {
		return Candidate{}, err
	}
	if photoURL != "" {
		u, err := url.Parse(photoURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(photoURL) > 2000 {
			return Candidate{}, invalid("photo_url", "must be an absolute http(s) URL")
		}
	}
	return Candidate{id: id, name: name, party: party, biography: biography, platform: platform, photoURL: photoURL, contestID: DefaultContest}, nil
}

// InContest returns the candidate standing in contest (contract v1.2; a
// candidate that names none stands in DefaultContest). A candidate's
// contest is fixed by its first registration.
func (c Candidate) InContest(contestID string) (Candidate, error) {
	if err := validID("contest_id", contestID); err != nil {
		return Candidate{}, err
	}
	c.contestID = contestID
	return c, nil
}

// ContestID returns the contest the candidate stands in.
func (c Candidate) ContestID() string { return c.contestID }

// ID returns the candidate's identifier.
func (c Candidate) ID() string { return c.id }

// Name returns the candidate's name.
func (c Candidate) Name() string { return c.name }

// Party returns the candidate's party: the zero Party (its String is
// empty) when it stands for none.
func (c Candidate) Party() Party { return c.party }

// HasParty reports whether the candidate stands for a party.
func (c Candidate) HasParty() bool { return c.party != (Party{}) }

// Biography returns the candidate's biography (may be empty).
func (c Candidate) Biography() string { return c.biography }

// Platform returns the candidate's platform (may be empty).
func (c Candidate) Platform() string { return c.platform }

// PhotoURL returns the candidate's photo URL (may be empty).
func (c Candidate) PhotoURL() string { return c.photoURL }
