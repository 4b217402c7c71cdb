package domain

import "time"

// AgeBands are the breakdown's age bands, youngest first.
var AgeBands = []string{"under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"}

// AgeBand is the voter's age band on the day (UTC) the vote was cast: age
// in whole years. The projection computes the same in SQL (age_band in
// sql/schema/00002_dashboard.sql); this is the specification the audit
// recounts with.
func AgeBand(birth, castAt time.Time) string {
	day := castAt.UTC()
	age := day.Year() - birth.Year()
	if day.Month() < birth.Month() || (day.Month() == birth.Month() && day.Day() < birth.Day()) {
		age--
	}
	for i, lower := range []int{18, 25, 35, 45, 55, 65} {
		if age < lower {
			return AgeBands[i]
		}
	}
	return AgeBands[len(AgeBands)-1]
}
