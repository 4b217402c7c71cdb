package app

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/votewatch/votewatch/domain"
)

// maxRollErrors is how many bad rows a roll reports before giving up: a
// file with more has a systematic problem, and a list of thousands helps
// nobody.
const maxRollErrors = 20

// Column names are the contract's JSON field names.
var (
	candidateColumns = []string{"candidate_id", "name", "party", "biography", "platform", "photo_url"}
	voterColumns     = []string{"voter_id", "name", "gender", "birth_date", "region", "city", "registered_at"}
)

// ReadCandidates reads a candidates CSV (a header row naming the contract's
// fields; party, biography, platform and photo_url optional, and an empty
// party is a candidate of no party). name labels errors.
// Every row is validated; any bad row fails the whole file, naming each
// (up to 20) by line and field, so nothing is half-imported.
func ReadCandidates(r io.Reader, name string) ([]domain.CandidateRegistered, error) {
	return readRoll(r, name, candidateColumns, []string{"candidate_id", "name"}, domain.DecodeCandidateRegistered)
}

// ReadVoters reads a voter roll CSV with a header row naming the contract's
// fields, all required. Errors as ReadCandidates.
func ReadVoters(r io.Reader, name string) ([]domain.VoterRegistered, error) {
	return readRoll(r, name, voterColumns, voterColumns, domain.DecodeVoterRegistered)
}

func readRoll[E any](r io.Reader, name string, known, required []string, decode func([]byte) (E, error)) ([]E, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: read header: %w", name, err)
	}
	cols := make([]string, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) // spreadsheets write a BOM
		if !slices.Contains(known, h) {
			return nil, fmt.Errorf("%s:1: unknown column %q (columns: %s)", name, h, strings.Join(known, ", "))
		}
		if slices.Contains(cols, h) {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		cols[i] = h
	}
	for _, c := range required {
		if !slices.Contains(cols, c) {
			return nil, fmt.Errorf("%s:1: missing column %q", name, c)
		}
	}

	var out []E
	var errs []error
	seen := map[string]int{}
	row := make(map[string]string, len(cols))
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		} else {
			for i, c := range cols {
				row[c] = strings.TrimSpace(rec[i])
			}
			payload, _ := json.Marshal(row) // a map of strings always encodes
			ev, err := decode(payload)
			switch id := row[known[0]]; {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s:%d: %w", name, line, err))
			case seen[id] > 0:
				errs = append(errs, fmt.Errorf("%s:%d: %s %q already on line %d", name, line, known[0], id, seen[id]))
			default:
				seen[id] = line
				out = append(out, ev)
			}
		}
		if len(errs) >= maxRollErrors {
			errs = append(errs, fmt.Errorf("%s: stopped after %d errors", name, maxRollErrors))
			break
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rows after the header", name)
	}
	return out, nil
}
