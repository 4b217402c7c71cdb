package handlers

import (
	"net/http"
	"time"
)

// stationCanvassJSON is one station in the canvass.
type stationCanvassJSON struct {
	StationID string     `json:"station_id"`
	Region    string     `json:"region"`
	Closed    bool       `json:"closed"`
	ClosedAt  *time.Time `json:"closed_at,omitempty"`
	// ReportedBallots is what its close report said it cast; absent when
	// it said nothing (or is open).
	ReportedBallots *int64 `json:"reported_ballots,omitempty"`
	// CountedBallots is absent while the station is open: each move would
	// time a vote to it (domain.Disclosure.PublishesStationCount).
	CountedBallots *int64 `json:"counted_ballots,omitempty"`
	// Difference is counted minus reported, when reported; Flagged says it
	// is not zero: the canvass must account for it.
	Difference *int64 `json:"difference,omitempty"`
	Flagged    bool   `json:"flagged"`
}

// canvass serves every station's reported ballots beside the ballots
// counted from it, flagging each difference.
func (a *API) canvass(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	stations, err := a.results.Canvass(r.Context())
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := struct {
		Stations []stationCanvassJSON `json:"stations"`
		Flagged  int                  `json:"flagged"`
	}{Stations: make([]stationCanvassJSON, 0, len(stations))}
	for _, s := range stations {
		j := stationCanvassJSON{StationID: s.StationID, Region: s.Region, Closed: s.ClosedAt != nil, ClosedAt: s.ClosedAt,
			ReportedBallots: s.ReportedBallots, CountedBallots: s.CountedBallots}
		if d, ok := s.Difference(); ok {
			j.Difference = &d
			j.Flagged = d != 0
		}
		if j.Flagged {
			out.Flagged++
		}
		out.Stations = append(out.Stations, j)
	}
	writeJSON(w, r, a.log, out)
}
