package domain

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	maxIDLen   = 64
	maxNameLen = 200
	maxTextLen = 4000
)

// validID accepts the identifiers of the contract: 1–64 characters from
// letters, digits and . _ : - so they are safe in URLs, logs and CSV.
func validID(field, s string) error {
	if s == "" {
		return invalid(field, "is required")
	}
	if len(s) > maxIDLen {
		return invalid(field, "is longer than %d characters", maxIDLen)
	}
	for _, r := range s {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._:-", r))) {
			return invalid(field, "may only contain ASCII letters, digits and . _ : -")
		}
	}
	return nil
}

// validText accepts printable UTF-8 of bounded length; required text must
// not be blank.
func validText(field, s string, maxLen int, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return invalid(field, "is required")
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > maxLen {
		return invalid(field, "is longer than %d characters", maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return invalid(field, "contains control characters")
		}
	}
	return nil
}

// Region is an electoral region (a state, a district).
type Region struct{ name string }

// NewRegion validates a region name: 1–64 characters of letters, digits,
// spaces and . ' _ -.
func NewRegion(name string) (Region, error) {
	if strings.TrimSpace(name) == "" {
		return Region{}, invalid("region", "is required")
	}
	if name != strings.TrimSpace(name) {
		return Region{}, invalid("region", "has leading or trailing spaces")
	}
	if utf8.RuneCountInString(name) > maxIDLen || !utf8.ValidString(name) {
		return Region{}, invalid("region", "is longer than %d characters or not UTF-8", maxIDLen)
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(" .'_-", r)) {
			return Region{}, invalid("region", "may only contain letters, digits, spaces and . ' _ -")
		}
	}
	return Region{name: name}, nil
}

// String returns the region's name.
func (r Region) String() string { return r.name }

// Party is a political party. The zero Party is none: an independent
// candidate's, or a measure choice's.
type Party struct{ name string }

// NewParty validates a party name; it may not be blank (a candidate with
// no party has the zero Party).
func NewParty(name string) (Party, error) {
	if err := validText("party", name, 100, true); err != nil {
		return Party{}, err
	}
	return Party{name: name}, nil
}

// String returns the party's name.
func (p Party) String() string { return p.name }

// parseTimestamp reads an RFC 3339 timestamp and normalises it to UTC.
func parseTimestamp(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, invalid(field, "is required")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalid(field, "must be an RFC 3339 timestamp such as 2026-11-03T14:05:00Z")
	}
	if t.Year() < 1900 || t.Year() > 9999 {
		return time.Time{}, invalid(field, "is out of range")
	}
	return t.UTC(), nil
}
