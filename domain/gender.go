package domain

import (
	"strings"
	"unicode/utf8"
)

// The closed gender vocabulary. A breakdown by free text publishes a cell
// per rare spelling, and a cell of one voter is that voter's ballot; so
// every registration's gender is one of these four, and only these are
// ever published (README, "What is published").
const (
	GenderFemale      = "female"
	GenderMale        = "male"
	GenderOther       = "other"
	GenderUnspecified = "unspecified"
)

// Genders returns the vocabulary, in the order breakdowns list it.
func Genders() []string {
	return []string{GenderFemale, GenderMale, GenderOther, GenderUnspecified}
}

// genderAliases are spellings registers commonly use for the vocabulary's
// values (ISO/IEC 5218 codes among them).
var genderAliases = map[string]string{
	"female": GenderFemale, "f": GenderFemale, "woman": GenderFemale, "w": GenderFemale, "2": GenderFemale,
	"male": GenderMale, "m": GenderMale, "man": GenderMale, "1": GenderMale,
	"other": GenderOther, "x": GenderOther, "nonbinary": GenderOther, "non-binary": GenderOther, "diverse": GenderOther, "d": GenderOther,
	"unspecified": GenderUnspecified, "unknown": GenderUnspecified, "u": GenderUnspecified, "0": GenderUnspecified,
	"9": GenderUnspecified, "not specified": GenderUnspecified, "prefer not to say": GenderUnspecified,
}

// NormalizeGender maps a register's gender onto the closed vocabulary.
// Known spellings (case and surrounding space ignored) map to their value;
// any other non-empty value maps to "other", so a registration is never
// lost for its spelling of gender and no rare value is ever published. An
// empty value is refused (the contract requires the field), as is text
// that is not valid UTF-8.
func NormalizeGender(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid("gender", "is not valid UTF-8")
	}
	key := strings.ToLower(strings.TrimSpace(s))
	if key == "" {
		return "", invalid("gender", "is required")
	}
	if g, ok := genderAliases[key]; ok {
		return g, nil
	}
	return GenderOther, nil
}
