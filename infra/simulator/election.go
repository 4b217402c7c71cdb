// Package simulator generates an election — candidates, a voter register
// and votes — from a config and publishes it as contract events, for the
// demo, tests and benchmarks.
package simulator

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/brianvoe/gofakeit/v7"

	"github.com/votewatch/votewatch/domain"
)

//go:embed general_election.json
var generalElection []byte

//go:embed one_race_election.json
var oneRaceElection []byte

// ElectionConfig describes an election to simulate (JSON).
type ElectionConfig struct {
	Name string `json:"name"`
	// Seed makes the register and the order of votes reproducible.
	Seed uint64 `json:"seed"`
	// Turnout is the share of registered voters who vote (0–1].
	Turnout float64 `json:"turnout"`
	// Candidates stand in the default contest, open to every region.
	Candidates []CandidateConfig `json:"candidates"`
	Regions    []RegionConfig    `json:"regions"`
	// Contests are the other races and measures on the ballot; every
	// voting voter votes in each one open to their region.
	Contests []ContestConfig `json:"contests"`
}

// ContestConfig describes a race or measure beside the default contest. A
// measure's choices are its candidates (name them Yes and No).
type ContestConfig struct {
	ContestID  string            `json:"contest_id"`
	Name       string            `json:"name"`
	Kind       string            `json:"kind"`
	Regions    []string          `json:"regions"`
	Candidates []CandidateConfig `json:"candidates"`
}

// CandidateConfig describes a candidate; a missing name is made up.
type CandidateConfig struct {
	CandidateID string `json:"candidate_id"`
	Name        string `json:"name"`
	// Party may be empty: an independent candidate, or a measure's choice.
	Party string `json:"party"`
	// Popularity is the candidate's nationwide weight (default 1).
	Popularity float64 `json:"popularity"`
}

// RegionConfig describes a region: its share of the voters (weight) and,
// optionally, preferences per candidate_id that replace the generated lean.
type RegionConfig struct {
	Name        string             `json:"name"`
	Weight      float64            `json:"weight"`
	Preferences map[string]float64 `json:"preferences"`
}

// DefaultElection returns the built-in general election: the 50 US states
// and DC, weighted by population; a presidential race everywhere (the
// default contest, five candidates), a Senate race in a third of the
// states and a statewide measure in a few.
func DefaultElection() ElectionConfig { return embedded(generalElection) }

// OneRaceElection returns the built-in one-race election: the same states
// and presidential race, nothing else on the ballot (contract v1's model;
// the tests and the benchmark's baseline use it).
func OneRaceElection() ElectionConfig { return embedded(oneRaceElection) }

func embedded(raw []byte) ElectionConfig {
	var cfg ElectionConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		// The files are embedded at build time and covered by tests.
		panic(fmt.Sprintf("embedded election: %v", err))
	}
	return cfg
}

// LoadElection reads an election config file; "" means the default.
func LoadElection(path string) (ElectionConfig, error) {
	if path == "" {
		return DefaultElection(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return ElectionConfig{}, fmt.Errorf("read election config: %w", err)
	}
	var cfg ElectionConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return ElectionConfig{}, fmt.Errorf("parse election config %s: %w", path, err)
	}
	return cfg, cfg.Validate()
}

// Validate reports what is wrong with the config.
func (c ElectionConfig) Validate() error {
	if len(c.Candidates) == 0 {
		return errors.New("election config: no candidates")
	}
	if len(c.Regions) == 0 {
		return errors.New("election config: no regions")
	}
	if c.Turnout <= 0 || c.Turnout > 1 {
		return fmt.Errorf("election config: turnout %v is not in (0, 1]", c.Turnout)
	}
	seen := map[string]bool{}
	for _, cand := range c.Candidates {
		if seen[cand.CandidateID] {
			return fmt.Errorf("election config: candidate %s twice", cand.CandidateID)
		}
		seen[cand.CandidateID] = true
		if _, err := partyOf(cand.Party); err != nil {
			return fmt.Errorf("election config: candidate %s: %w", cand.CandidateID, err)
		}
	}
	regions := map[string]bool{}
	for _, r := range c.Regions {
		if _, err := domain.NewRegion(r.Name); err != nil {
			return fmt.Errorf("election config: %w", err)
		}
		if r.Weight <= 0 {
			return fmt.Errorf("election config: region %s: weight must be positive", r.Name)
		}
		regions[r.Name] = true
	}
	contests := map[string]bool{}
	for _, k := range c.Contests {
		if _, err := k.contest(); err != nil {
			return fmt.Errorf("election config: contest %s: %w", k.ContestID, err)
		}
		if contests[k.ContestID] {
			return fmt.Errorf("election config: contest %s twice", k.ContestID)
		}
		contests[k.ContestID] = true
		for _, r := range k.Regions {
			if !regions[r] {
				return fmt.Errorf("election config: contest %s: region %s is not in the election", k.ContestID, r)
			}
		}
		if len(k.Candidates) < 2 {
			return fmt.Errorf("election config: contest %s: fewer than two choices", k.ContestID)
		}
		for _, cand := range k.Candidates {
			if seen[cand.CandidateID] {
				return fmt.Errorf("election config: candidate %s twice", cand.CandidateID)
			}
			seen[cand.CandidateID] = true
			if _, err := partyOf(cand.Party); err != nil {
				return fmt.Errorf("election config: candidate %s: %w", cand.CandidateID, err)
			}
		}
	}
	return nil
}

// partyOf is the party named name; "" is none (an independent, or a
// measure's choice).
func partyOf(name string) (domain.Party, error) {
	if name == "" {
		return domain.Party{}, nil
	}
	return domain.NewParty(name)
}

func (k ContestConfig) contest() (domain.Contest, error) {
	var regions []domain.Region
	for _, name := range k.Regions {
		r, err := domain.NewRegion(name)
		if err != nil {
			return domain.Contest{}, err
		}
		regions = append(regions, r)
	}
	kind := domain.KindCandidate
	if k.Kind == domain.KindMeasure.String() {
		kind = domain.KindMeasure
	} else if k.Kind != "" && k.Kind != domain.KindCandidate.String() {
		return domain.Contest{}, fmt.Errorf("kind %q is neither candidate nor measure", k.Kind)
	}
	return domain.NewContest(k.ContestID, k.Name, kind, regions)
}

// Election is a generated election: who stands, who may vote, and how each
// region leans.
type Election struct {
	Contests   []domain.ContestRegistered
	Candidates []domain.CandidateRegistered
	Voters     []domain.VoterRegistered
	// prefs[r] are cumulative candidate weights for region index r.
	prefs [][]float64
	// ballot lists the other contests, each with its candidates' index
	// range in Candidates and cumulative weights per region index (nil
	// where the contest is not open).
	ballot      []contestBallot
	voterRegion []int
	turnout     float64
	seed        uint64
	// defaultCandidates is how many of Candidates, first, stand in the
	// default contest.
	defaultCandidates int
}

// Generate builds the election with voters registered in total, spread
// over the regions by weight (at least one each). The same config and
// total always give the same election.
func Generate(cfg ElectionConfig, voters int, now time.Time) (*Election, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if voters < len(cfg.Regions) {
		return nil, fmt.Errorf("generate election: %d voters cannot cover %d regions", voters, len(cfg.Regions))
	}
	faker := gofakeit.New(cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, 1))
	e := &Election{turnout: cfg.Turnout, seed: cfg.Seed}

	for _, c := range cfg.Candidates {
		name := c.Name
		if name == "" {
			name = faker.FirstName() + " " + faker.LastName()
		}
		party, _ := partyOf(c.Party) // validated above
		bio := fmt.Sprintf("%s is the %s candidate. %s", name, c.Party, faker.Sentence())
		if party == (domain.Party{}) {
			bio = fmt.Sprintf("%s is an independent candidate. %s", name, faker.Sentence())
		}
		cand, err := domain.NewCandidate(c.CandidateID, name, party, bio, faker.Sentence(), "")
		if err != nil {
			return nil, fmt.Errorf("generate candidate %s: %w", c.CandidateID, err)
		}
		e.Candidates = append(e.Candidates, domain.CandidateRegistered{Candidate: cand})
	}

	defaultCandidates := len(e.Candidates)
	for _, k := range cfg.Contests {
		contest, _ := k.contest() // validated above
		e.Contests = append(e.Contests, domain.ContestRegistered{Contest: contest})
		b := contestBallot{id: k.ContestID, first: len(e.Candidates)}
		for _, c := range k.Candidates {
			name := c.Name
			if name == "" {
				name = faker.FirstName() + " " + faker.LastName()
			}
			party, _ := partyOf(c.Party) // validated above
			cand, err := domain.NewCandidate(c.CandidateID, name, party, "", "", "")
			if err == nil {
				cand, err = cand.InContest(k.ContestID)
			}
			if err != nil {
				return nil, fmt.Errorf("generate candidate %s: %w", c.CandidateID, err)
			}
			e.Candidates = append(e.Candidates, domain.CandidateRegistered{Candidate: cand})
		}
		b.end = len(e.Candidates)
		open := map[string]bool{}
		for _, r := range k.Regions {
			open[r] = true
		}
		for _, r := range cfg.Regions {
			if len(open) > 0 && !open[r.Name] {
				b.prefs = append(b.prefs, nil)
				continue
			}
			cum := make([]float64, len(k.Candidates))
			var acc float64
			for j, c := range k.Candidates {
				pop := c.Popularity
				if pop == 0 {
					pop = 1
				}
				acc += pop * (0.35 + 1.3*rng.Float64())
				cum[j] = acc
			}
			b.prefs = append(b.prefs, cum)
		}
		e.ballot = append(e.ballot, b)
	}
	e.defaultCandidates = defaultCandidates

	var totalWeight float64
	for _, r := range cfg.Regions {
		totalWeight += r.Weight
	}
	counts := make([]int, len(cfg.Regions))
	assigned := 0
	for i, r := range cfg.Regions {
		counts[i] = max(1, int(float64(voters)*r.Weight/totalWeight))
		assigned += counts[i]
	}
	for i := 0; assigned < voters; i = (i + 1) % len(counts) {
		counts[i]++
		assigned++
	}
	for i := 0; assigned > voters; i = (i + 1) % len(counts) {
		if counts[i] > 1 {
			counts[i]--
			assigned--
		}
	}

	for _, r := range cfg.Regions {
		cum := make([]float64, len(cfg.Candidates))
		var acc float64
		for j, c := range cfg.Candidates {
			w, ok := r.Preferences[c.CandidateID]
			if !ok {
				pop := c.Popularity
				if pop == 0 {
					pop = 1
				}
				// A regional lean: strong swings so regions differ and the
				// map shows more than one colour.
				w = pop * (0.35 + 1.3*rng.Float64())
			}
			acc += w
			cum[j] = acc
		}
		e.prefs = append(e.prefs, cum)
	}

	registered := now.Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	seq := 0
	for ri, r := range cfg.Regions {
		region, _ := domain.NewRegion(r.Name)
		for range counts[ri] {
			seq++
			birth := now.AddDate(-18-rng.IntN(70), 0, -rng.IntN(365)).UTC().Truncate(24 * time.Hour)
			gender := "female"
			if g := rng.IntN(100); g < 48 {
				gender = "male"
			} else if g < 50 {
				gender = domain.GenderOther
			}
			v, err := domain.NewVoter(fmt.Sprintf("v-%08d", seq), faker.Name(), gender, birth, region, faker.City(),
				registered.Add(time.Duration(seq)*time.Second))
			if err != nil {
				return nil, fmt.Errorf("generate voter %d: %w", seq, err)
			}
			e.Voters = append(e.Voters, domain.VoterRegistered{Voter: v})
			e.voterRegion = append(e.voterRegion, ri)
		}
	}
	return e, nil
}

type contestBallot struct {
	id         string
	first, end int
	prefs      [][]float64
}

// Turnout returns the share of voters who vote.
func (e *Election) Turnout() float64 { return e.turnout }

// choose picks a default-contest candidate for a voter of region ri, by its
// preferences.
func (e *Election) choose(rng *rand.Rand, ri int) domain.CandidateRegistered {
	return e.Candidates[pick(rng, e.prefs[ri])]
}

// pick draws an index by cumulative weights.
func pick(rng *rand.Rand, cum []float64) int {
	x := rng.Float64() * cum[len(cum)-1]
	for j, c := range cum {
		if x < c {
			return j
		}
	}
	return len(cum) - 1
}

// StationReports are the election's polling stations' reports, one station
// per region (st-<region>): all registering (open), or all closing.
func (e *Election) StationReports(closed bool, at time.Time) []domain.StationReported {
	seen := map[domain.Region]bool{}
	var out []domain.StationReported
	for _, v := range e.Voters {
		r := v.Voter.Region()
		if seen[r] {
			continue
		}
		seen[r] = true
		st, err := domain.NewStation("st-"+strings.ReplaceAll(r.String(), " ", "-"), r)
		if err != nil {
			continue // a region name that makes no station id: no station there
		}
		rep, err := domain.NewStationReport(st, closed, at)
		if err == nil {
			out = append(out, rep)
		}
	}
	return out
}
