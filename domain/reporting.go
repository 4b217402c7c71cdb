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
// once, at its first report.
type StationReported struct {
	station  Station
	closed   bool
	reported time.Time
}

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
}

// MarshalJSON encodes the report as the contract gives it:
// {"station_id","region","status":"open"|"closed","reported_at":RFC3339}.
func (e StationReported) MarshalJSON() ([]byte, error) {
	status := "open"
	if e.closed {
		status = "closed"
	}
	return json.Marshal(stationWire{e.station.id, e.station.region.name, status, e.reported.Format(time.RFC3339Nano)})
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
	return NewStationReport(s, w.Status == "closed", at)
}
