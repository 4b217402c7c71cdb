package domain

import (
	"encoding/json"
	"time"
)

// TopicStations is the contract v1.2 topic of polling stations' reports,
// keyed by station_id: a station is registered with the region it serves,
// and reports when it has closed. Per region, closed over registered is
// how far the count has got ("precincts reporting").
const TopicStations = "stations"

// StationReported is a station's report: registered (opened) or closed.
// The first registration of a station fixes its region; a close counts
// once, at its first report. A close report may carry how many ballots
// the station cast (contract v1.3), which the canvass reconciles with the
// ballots counted from it.
type StationReported struct {
	station  Station
	closed   bool
	reported time.Time
	// ballots is the count reported with a close, when hasBallots.
	ballots    int64
	hasBallots bool
}

// MaxStationBallots bounds the ballots a close report may declare: more
// than any polling station casts, and an int32 for every reader.
const MaxStationBallots = 100_000_000

// NewStationReport validates a station's report.
func NewStationReport(s Station, closed bool, at time.Time) (StationReported, error) {
	if s == (Station{}) {
		return StationReported{}, invalid("station_id", "is required")
	}
	if at.IsZero() {
		return StationReported{}, invalid("reported_at", "is required")
	}
	return StationReported{station: s, closed: closed, reported: at.UTC()}, nil
}

// WithBallots returns the close report declaring that the station cast n
// ballots. Only a close report carries them; n is 0 to MaxStationBallots.
func (e StationReported) WithBallots(n int64) (StationReported, error) {
	if !e.closed {
		return StationReported{}, invalid("ballots", "only a close report carries them")
	}
	if n < 0 || n > MaxStationBallots {
		return StationReported{}, invalid("ballots", "must be between 0 and %d", MaxStationBallots)
	}
	e.ballots, e.hasBallots = n, true
	return e, nil
}

// Ballots returns the ballots the station reported casting, and whether
// it reported them (a close report may leave them out).
func (e StationReported) Ballots() (int64, bool) { return e.ballots, e.hasBallots }

// Station returns the reporting station.
func (e StationReported) Station() Station { return e.station }

// Closed reports whether the station reports closing (else registering).
func (e StationReported) Closed() bool { return e.closed }

// ReportedAt returns when the station reported.
func (e StationReported) ReportedAt() time.Time { return e.reported }

// Key returns the message key: the station_id.
func (e StationReported) Key() string { return e.station.id }

type stationWire struct {
	StationID  string `json:"station_id"`
	Region     string `json:"region"`
	Status     string `json:"status"`
	ReportedAt string `json:"reported_at"`
	// Contract v1.3: on a close report, the ballots the station cast.
	Ballots *int64 `json:"ballots,omitempty"`
}

// MarshalJSON encodes the report as the contract gives it:
// {"station_id","region","status":"open"|"closed","reported_at":RFC3339,
// "ballots"?:N}.
func (e StationReported) MarshalJSON() ([]byte, error) {
	status := "open"
	if e.closed {
		status = "closed"
	}
	w := stationWire{StationID: e.station.id, Region: e.station.region.name, Status: status, ReportedAt: e.reported.Format(time.RFC3339Nano)}
	if e.hasBallots {
		w.Ballots = &e.ballots
	}
	return json.Marshal(w)
}

// DecodeStationReported parses and validates a stations message.
func DecodeStationReported(payload []byte) (StationReported, error) {
	var w stationWire
	if err := decodeStrict(payload, &w); err != nil {
		return StationReported{}, err
	}
	region, err := NewRegion(w.Region)
	if err != nil {
		return StationReported{}, err
	}
	s, err := NewStation(w.StationID, region)
	if err != nil {
		return StationReported{}, err
	}
	if w.Status != "open" && w.Status != "closed" {
		return StationReported{}, invalid("status", "must be open or closed")
	}
	at, err := parseTimestamp("reported_at", w.ReportedAt)
	if err != nil {
		return StationReported{}, err
	}
	r, err := NewStationReport(s, w.Status == "closed", at)
	if err != nil || w.Ballots == nil {
		return r, err
	}
	return r.WithBallots(*w.Ballots)
}
