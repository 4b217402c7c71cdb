package domain

// StationMarkers are the stations' opening and close markers read on the
// votes partitions, by position (rules 6 and 7): a station is open to a
// vote from its first opening before the vote in the vote's partition, in
// that opening's region, and closed from its first close marker before
// it. Every decider keeps them here: the replay's Ledger, and the live
// projection's facts, loaded per batch. Not safe for concurrent use.
type StationMarkers struct {
	opens  map[stationPartition]openedAt
	closes map[stationPartition]int64
}

type stationPartition struct {
	station   string
	partition int32
}

type openedAt struct {
	offset int64
	region Region
}

// NewStationMarkers returns markers with none read.
func NewStationMarkers() *StationMarkers {
	return &StationMarkers{opens: map[stationPartition]openedAt{}, closes: map[stationPartition]int64{}}
}

// StationOpened implements Facts: the region station opened with before
// offset in partition, and whether it did.
func (m *StationMarkers) StationOpened(station string, partition int32, offset int64) (Region, bool) {
	at, ok := m.opens[stationPartition{station, partition}]
	if !ok || at.offset >= offset {
		return Region{}, false
	}
	return at.region, true
}

// StationClosed implements Facts: whether a close marker of station lies
// before offset in partition.
func (m *StationMarkers) StationClosed(station string, partition int32, offset int64) bool {
	at, ok := m.closes[stationPartition{station, partition}]
	return ok && at < offset
}

// AddStationOpen records an opening read at a votes partition's offset.
func (m *StationMarkers) AddStationOpen(partition int32, offset int64, o StationOpened) {
	for _, s := range o.stations {
		m.AddOpening(partition, offset, s)
	}
}

// AddOpening records that station s opened at a votes partition's
// offset; the first opening of a station in a partition counts.
func (m *StationMarkers) AddOpening(partition int32, offset int64, s Station) {
	key := stationPartition{s.id, partition}
	if at, ok := m.opens[key]; !ok || offset < at.offset {
		m.opens[key] = openedAt{offset, s.region}
	}
}

// AddStationClose records a close marker read at a votes partition's
// offset.
func (m *StationMarkers) AddStationClose(partition int32, offset int64, c StationClosed) {
	for _, id := range c.stationIDs {
		m.AddClosing(partition, offset, id)
	}
}

// AddClosing records that station closed at a votes partition's offset;
// the first close of a station in a partition counts.
func (m *StationMarkers) AddClosing(partition int32, offset int64, station string) {
	key := stationPartition{station, partition}
	if at, ok := m.closes[key]; !ok || offset < at {
		m.closes[key] = offset
	}
}
