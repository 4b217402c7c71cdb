package handlers

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/votewatch/votewatch/projections/read"
)

// The results in the Election Results Common Data Format (NIST SP
// 1500-100 V2, JSON): what newsrooms' and election offices' tools import.
// Objects refer to each other by @id: the election is one ReportingUnit
// made of one per region, every contest has a district (the election, or
// a unit made of its regions), and every selection has a VoteCounts per
// region it is open in and one for the whole district. A Candidate's
// BallotName is the candidate's name and a measure's Selection is the
// choice's name, so consumers can match them without our ids.

type cdfText struct {
	Type string          `json:"@type"`
	Text []cdfLangString `json:"Text"`
}

type cdfLangString struct {
	Type     string `json:"@type"`
	Content  string `json:"Content"`
	Language string `json:"Language"`
}

func text(s string) cdfText {
	return cdfText{Type: "ElectionResults.InternationalizedText",
		Text: []cdfLangString{{Type: "ElectionResults.LanguageString", Content: s, Language: "en"}}}
}

type cdfReport struct {
	Type                string      `json:"@type"`
	Format              string      `json:"Format"`
	GeneratedDate       string      `json:"GeneratedDate"`
	Issuer              string      `json:"Issuer"`
	IssuerAbbreviation  string      `json:"IssuerAbbreviation"`
	SequenceStart       int         `json:"SequenceStart"`
	SequenceEnd         int         `json:"SequenceEnd"`
	Status              string      `json:"Status"`
	VendorApplicationID string      `json:"VendorApplicationId"`
	IsTest              bool        `json:"IsTest"`
	Election            []cdfElect  `json:"Election"`
	GpUnit              []cdfGpUnit `json:"GpUnit"`
	Party               []cdfParty  `json:"Party"`
	Notes               string      `json:"Notes,omitempty"`
}

type cdfGpUnit struct {
	ID                 string   `json:"@id"`
	Type               string   `json:"@type"`
	UnitType           string   `json:"Type"`
	OtherType          string   `json:"OtherType"`
	Name               cdfText  `json:"Name"`
	VotersRegistered   int64    `json:"VotersRegistered"`
	VotersParticipated *int64   `json:"VotersParticipated,omitempty"`
	ComposingGpUnitIDs []string `json:"ComposingGpUnitIds,omitempty"`
}

type cdfParty struct {
	ID   string  `json:"@id"`
	Type string  `json:"@type"`
	Name cdfText `json:"Name"`
}

type cdfElect struct {
	Type            string         `json:"@type"`
	ElectionScopeID string         `json:"ElectionScopeId"`
	Name            cdfText        `json:"Name"`
	StartDate       string         `json:"StartDate"`
	EndDate         string         `json:"EndDate"`
	ElectionType    string         `json:"Type"`
	Candidate       []cdfCandidate `json:"Candidate"`
	Contest         []any          `json:"Contest"`
}

type cdfCandidate struct {
	ID         string  `json:"@id"`
	Type       string  `json:"@type"`
	BallotName cdfText `json:"BallotName"`
	PartyID    string  `json:"PartyId,omitempty"`
}

type cdfVoteCounts struct {
	Type      string `json:"@type"`
	GpUnitID  string `json:"GpUnitId"`
	CountType string `json:"Type"`
	Count     int64  `json:"Count"`
}

type cdfCandidateContest struct {
	ID                 string            `json:"@id"`
	Type               string            `json:"@type"`
	Name               string            `json:"Name"`
	ElectionDistrictID string            `json:"ElectionDistrictId"`
	VotesAllowed       int               `json:"VotesAllowed"`
	ContestSelection   []cdfCandSelected `json:"ContestSelection"`
}

type cdfCandSelected struct {
	ID           string          `json:"@id"`
	Type         string          `json:"@type"`
	CandidateIDs []string        `json:"CandidateIds"`
	VoteCounts   []cdfVoteCounts `json:"VoteCounts"`
}

type cdfMeasureContest struct {
	ID                 string               `json:"@id"`
	Type               string               `json:"@type"`
	Name               string               `json:"Name"`
	ElectionDistrictID string               `json:"ElectionDistrictId"`
	ContestSelection   []cdfMeasureSelected `json:"ContestSelection"`
}

type cdfMeasureSelected struct {
	ID         string          `json:"@id"`
	Type       string          `json:"@type"`
	Selection  cdfText         `json:"Selection"`
	VoteCounts []cdfVoteCounts `json:"VoteCounts"`
}

const cdfElectionUnit = "gpu-election"

func regionUnit(region string) string { return "gpu-region-" + region }

// electionReport builds the ElectionReport from every contest's results
// and the register's parties (candidate_id to party, for the candidates
// that stand for one).
func electionReport(contests []read.ContestResult, parties map[string]string, now time.Time) cdfReport {
	rep := cdfReport{
		Type: "ElectionResults.ElectionReport", Format: "summary-contest", GeneratedDate: now.UTC().Format("2006-01-02T15:04:05Z"),
		Issuer: "votewatch", IssuerAbbreviation: "votewatch", SequenceStart: 1, SequenceEnd: 1,
		Status: "unofficial-partial", VendorApplicationID: "votewatch",
		Notes: "Counts are live and unofficial: votes released so far (in steps of at least k votes per region while the polls are open, exact once they close), by region and for the whole election; a region with fewer than k votes has no count.",
	}
	election := cdfElect{Type: "ElectionResults.Election", ElectionScopeID: cdfElectionUnit, Name: text("votewatch election"),
		StartDate: now.UTC().Format(time.DateOnly), EndDate: now.UTC().Format(time.DateOnly), ElectionType: "general",
		Candidate: []cdfCandidate{}, Contest: []any{}}

	// Regions: every region any contest reports, with its register.
	registered := map[string]int64{}
	for _, c := range contests {
		for _, g := range c.Regions {
			registered[g.Region] = g.EligibleVoters
		}
	}
	regions := make([]string, 0, len(registered))
	for r := range registered {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	all := cdfGpUnit{ID: cdfElectionUnit, Type: "ElectionResults.ReportingUnit", UnitType: "other", OtherType: "election", Name: text("The whole election")}
	units := []cdfGpUnit{}
	for _, r := range regions {
		all.VotersRegistered += registered[r]
		all.ComposingGpUnitIDs = append(all.ComposingGpUnitIDs, regionUnit(r))
		units = append(units, cdfGpUnit{ID: regionUnit(r), Type: "ElectionResults.ReportingUnit", UnitType: "other", OtherType: "region",
			Name: text(r), VotersRegistered: registered[r]})
	}
	rep.GpUnit = append([]cdfGpUnit{all}, units...)

	partyIDs := map[string]string{}
	names := make([]string, 0, len(parties))
	for _, p := range parties {
		if _, ok := partyIDs[p]; !ok {
			partyIDs[p] = ""
			names = append(names, p)
		}
	}
	sort.Strings(names)
	for i, p := range names {
		partyIDs[p] = "party-" + strconv.Itoa(i+1)
		rep.Party = append(rep.Party, cdfParty{ID: partyIDs[p], Type: "ElectionResults.Party", Name: text(p)})
	}
	if rep.Party == nil {
		rep.Party = []cdfParty{}
	}

	for _, c := range contests {
		district := cdfElectionUnit
		if len(c.Regions) < len(regions) {
			district = "gpu-contest-" + c.ContestID
			unit := cdfGpUnit{ID: district, Type: "ElectionResults.ReportingUnit", UnitType: "other", OtherType: "contest-district",
				Name: text(c.Name + " district")}
			for _, g := range c.Regions {
				unit.VotersRegistered += g.EligibleVoters
				unit.ComposingGpUnitIDs = append(unit.ComposingGpUnitIDs, regionUnit(g.Region))
			}
			rep.GpUnit = append(rep.GpUnit, unit)
		}
		counts := func(candidateID string, total int64) []cdfVoteCounts {
			out := []cdfVoteCounts{{Type: "ElectionResults.VoteCounts", GpUnitID: district, CountType: "total", Count: total}}
			for _, g := range c.Regions {
				if g.Withheld {
					// Too few votes to publish: the region has no
					// count, and the total minus the shown regions is
					// none or at least k.
					continue
				}
				var n int64
				for _, t := range g.Tallies {
					if t.CandidateID == candidateID {
						n = t.Votes
					}
				}
				out = append(out, cdfVoteCounts{Type: "ElectionResults.VoteCounts", GpUnitID: regionUnit(g.Region), CountType: "total", Count: n})
			}
			return out
		}
		contestID := "contest-" + c.ContestID
		if c.Kind == "measure" {
			mc := cdfMeasureContest{ID: contestID, Type: "ElectionResults.BallotMeasureContest", Name: c.Name, ElectionDistrictID: district,
				ContestSelection: []cdfMeasureSelected{}}
			for _, cand := range c.Candidates {
				mc.ContestSelection = append(mc.ContestSelection, cdfMeasureSelected{ID: "sel-" + c.ContestID + "-" + cand.CandidateID,
					Type: "ElectionResults.BallotMeasureSelection", Selection: text(cand.Name), VoteCounts: counts(cand.CandidateID, cand.Votes)})
			}
			election.Contest = append(election.Contest, mc)
			continue
		}
		cc := cdfCandidateContest{ID: contestID, Type: "ElectionResults.CandidateContest", Name: c.Name, ElectionDistrictID: district,
			VotesAllowed: 1, ContestSelection: []cdfCandSelected{}}
		for _, cand := range c.Candidates {
			id := "cand-" + cand.CandidateID
			election.Candidate = append(election.Candidate, cdfCandidate{ID: id, Type: "ElectionResults.Candidate",
				BallotName: text(cand.Name), PartyID: partyIDs[parties[cand.CandidateID]]})
			cc.ContestSelection = append(cc.ContestSelection, cdfCandSelected{ID: "sel-" + c.ContestID + "-" + cand.CandidateID,
				Type: "ElectionResults.CandidateSelection", CandidateIDs: []string{id}, VoteCounts: counts(cand.CandidateID, cand.Votes)})
		}
		election.Contest = append(election.Contest, cc)
	}
	rep.Election = []cdfElect{election}
	return rep
}

func (a *API) resultsCDF(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	contests, err := a.results.Contests(r.Context())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	// Only a candidate contest's candidates stand for parties; an
	// independent, or a measure's choice, has none, and a CDF Party is
	// never made up for it (its Candidate has no PartyId).
	parties := map[string]string{}
	for _, c := range contests {
		if c.Kind == "measure" {
			continue
		}
		for _, cand := range c.Candidates {
			if cand.Party != "" {
				parties[cand.CandidateID] = cand.Party
			}
		}
	}
	writeJSON(w, r, a.log, electionReport(contests, parties, time.Now()))
}
