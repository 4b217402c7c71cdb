package domain

import (
	"encoding/json"
	"fmt"
	"slices"
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

// StationOpened is the control event that opens stations on one partition
// of the votes topic (issue 24 §3): the stations register, by position. A
// vote through a station not opened before it in its partition, or stamped
// with another region than the station opened with, is unknown_station.
// Its publisher (the intake at start, for the stations of its tokens file,
// through its outbox before any vote; the simulator before its first vote)
// writes one to every partition. The first opening of a station in a
// partition fixes its region there.
type StationOpened struct {
	stations []Station
	openedAt time.Time
}

// NewStationOpened validates an opening of stations at at.
func NewStationOpened(at time.Time, stations ...Station) (StationOpened, error) {
	if len(stations) == 0 {
		return StationOpened{}, invalid("stations", "is required")
	}
	if len(stations) > MaxStationsPerMarker {
		return StationOpened{}, invalid("stations", "holds more than %d stations", MaxStationsPerMarker)
	}
	for i, s := range stations {
		if s == (Station{}) {
			return StationOpened{}, invalid(fmt.Sprintf("stations[%d]", i), "is required")
		}
	}
	if at.IsZero() {
		return StationOpened{}, invalid("opened_at", "is required")
	}
	return StationOpened{stations: slices.Clone(stations), openedAt: at.UTC().Truncate(time.Microsecond)}, nil
}

// Stations returns the opened stations.
func (e StationOpened) Stations() []Station { return slices.Clone(e.stations) }

// OpenedAt returns when the stations opened (for the record).
func (e StationOpened) OpenedAt() time.Time { return e.openedAt }

// Key returns the message key: written to chosen partitions.
func (e StationOpened) Key() string { return controlStationOpened }

const controlStationOpened = "station_opened"

type openedStationWire struct {
	StationID string `json:"station_id"`
	Region    string `json:"region"`
}

type stationOpenedWire struct {
	Control  string              `json:"control"`
	Stations []openedStationWire `json:"stations"`
	OpenedAt string              `json:"opened_at"`
}

// MarshalJSON encodes the marker as the contract gives it:
// {"control":"station_opened","stations":[{"station_id","region"}],"opened_at":RFC3339}.
func (e StationOpened) MarshalJSON() ([]byte, error) {
	w := stationOpenedWire{Control: controlStationOpened, OpenedAt: e.openedAt.Format(time.RFC3339Nano)}
	for _, s := range e.stations {
		w.Stations = append(w.Stations, openedStationWire{s.id, s.region.name})
	}
	return json.Marshal(w)
}

func decodeStationOpened(payload []byte) (StationOpened, error) {
	var w stationOpenedWire
	if err := decodeStrict(payload, &w); err != nil {
		return StationOpened{}, err
	}
	at, err := parseTimestamp("opened_at", w.OpenedAt)
	if err != nil {
		return StationOpened{}, err
	}
	stations := make([]Station, 0, len(w.Stations))
	for i, ws := range w.Stations {
		region, err := NewRegion(ws.Region)
		if err != nil {
			return StationOpened{}, invalid(fmt.Sprintf("stations[%d].region", i), "%v", err)
		}
		s, err := NewStation(ws.StationID, region)
		if err != nil {
			return StationOpened{}, invalid(fmt.Sprintf("stations[%d]", i), "%v", err)
		}
		stations = append(stations, s)
	}
	return NewStationOpened(at, stations...)
}

// StationClosed is the control event that binds stations' close on one
// partition of the votes topic (issue 24 §2): a vote through one of its
// stations found after it in that partition is after_station_close. Its
// publisher (the intake's close, through its outbox after every vote it
// accepted from the station; the simulator, for all its stations at once)
// writes one to every partition, beside the close reports on the stations
// topic that reporting shows. The rule reads positions, not clocks, so
// every reader of the log decides alike whatever order it read the topics
// in.
type StationClosed struct {
	stationIDs []string
	closedAt   time.Time
}

// MaxStationsPerMarker bounds the stations one opening or close marker names.
const MaxStationsPerMarker = 10_000

// NewStationClosed validates a close marker for the stations ids, closed
// at at.
func NewStationClosed(at time.Time, ids ...string) (StationClosed, error) {
	if len(ids) == 0 {
		return StationClosed{}, invalid("station_ids", "is required")
	}
	if len(ids) > MaxStationsPerMarker {
		return StationClosed{}, invalid("station_ids", "holds more than %d stations", MaxStationsPerMarker)
	}
	for i, id := range ids {
		if err := validID(fmt.Sprintf("station_ids[%d]", i), id); err != nil {
			return StationClosed{}, err
		}
	}
	if at.IsZero() {
		return StationClosed{}, invalid("closed_at", "is required")
	}
	return StationClosed{stationIDs: slices.Clone(ids), closedAt: at.UTC().Truncate(time.Microsecond)}, nil
}

// StationIDs returns the closed stations' ids.
func (e StationClosed) StationIDs() []string { return slices.Clone(e.stationIDs) }

// ClosedAt returns when the stations closed (for the record; the rule
// reads the marker's position).
func (e StationClosed) ClosedAt() time.Time { return e.closedAt }

// Key returns the message key. Close markers are written to chosen
// partitions, not partitioned by key.
func (e StationClosed) Key() string { return controlStationClosed }

const controlStationClosed = "station_closed"

type stationClosedWire struct {
	Control    string   `json:"control"`
	StationIDs []string `json:"station_ids"`
	ClosedAt   string   `json:"closed_at"`
}

// MarshalJSON encodes the marker as the contract gives it:
// {"control":"station_closed","station_ids":[...],"closed_at":RFC3339}.
func (e StationClosed) MarshalJSON() ([]byte, error) {
	return json.Marshal(stationClosedWire{controlStationClosed, e.stationIDs, e.closedAt.Format(time.RFC3339Nano)})
}

func decodeStationClosed(payload []byte) (StationClosed, error) {
	var w stationClosedWire
	if err := decodeStrict(payload, &w); err != nil {
		return StationClosed{}, err
	}
	at, err := parseTimestamp("closed_at", w.ClosedAt)
	if err != nil {
		return StationClosed{}, err
	}
	return NewStationClosed(at, w.StationIDs...)
}
