package read

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/internal/db"
	"github.com/votewatch/votewatch/projections/internal/dbutil"
)

// PartitionStatus is how far the projection has got in one partition.
type PartitionStatus struct {
	Topic     string
	Partition int32
	// Applied is the next offset to apply; End the log's end (-1 unknown).
	Applied, End int64
	Lag          int64
	LastEventAt  time.Time
}

// Status is the state of the projection at a glance.
type Status struct {
	BuiltAt       time.Time
	BuiltBy       string
	Partitions    []PartitionStatus
	EventsApplied map[string]int64
	Lag           map[string]int64
	// NewestEvent is the newest event time applied; Staleness is now minus
	// it (zero when nothing is applied).
	NewestEvent  time.Time
	Staleness    time.Duration
	VotesCast    int64
	Rejected     map[string]int64
	DeadLettered int64
	UpdatedAt    time.Time
	// LogReachable is false when the log's ends could not be read, in which
	// case End and Lag are unknown.
	LogReachable bool
	Registration RegistrationStatus
	// Stations counts decided votes per station and outcome ("counted" or
	// a rejection reason), for votes that came through the intake.
	Stations map[string]map[string]int64
}

// RegistrationStatus is where registration stands (README, "How a vote is
// decided").
type RegistrationStatus struct {
	// Closed is true once every declared partition has its close marker;
	// ClosedPartitions counts the markers read so far.
	Closed           bool
	ClosedPartitions int64
	// HeldVotes wait for their voter's or candidate's registration, or for
	// registration to close.
	HeldVotes int64
	// Refused counts registrations that came after their partition closed.
	Refused int64
}

// Status reads the projection's state; ends (may be nil) gives the log's
// ends for lag.
func (r *Results) Status(ctx context.Context, ends projections.HighWatermarksFunc) (Status, error) {
	st := Status{EventsApplied: map[string]int64{}, Lag: map[string]int64{}, Rejected: map[string]int64{}, Stations: map[string]map[string]int64{}}
	var applied []db.ListAppliedOffsetsRow
	err := r.snapshot(ctx, func(q *db.Queries) error {
		meta, err := q.GetProjectionMeta(ctx)
		if err != nil {
			return err
		}
		st.BuiltAt, st.BuiltBy = meta.BuiltAt, meta.BuiltBy
		if applied, err = q.ListAppliedOffsets(ctx, domain.EventTopics); err != nil {
			return err
		}
		t, err := q.GetTotals(ctx)
		if err != nil {
			return err
		}
		st.VotesCast, st.DeadLettered, st.UpdatedAt = t.VotesCast, t.DeadLettered, t.UpdatedAt
		rows, err := q.ListRejectionTallies(ctx)
		if err != nil {
			return err
		}
		if st.Rejected, err = RejectionCounts(rows); err != nil {
			return err
		}
		reg, err := q.GetRegistrationState(ctx)
		if err != nil {
			return err
		}
		st.Registration = RegistrationStatus{HeldVotes: reg.HeldVotes, Refused: reg.RefusedRegistrations, ClosedPartitions: reg.ClosedPartitions}
		if st.Registration.Closed, err = q.RegistrationClosed(ctx); err != nil {
			return err
		}
		stations, err := q.ListStationTallies(ctx)
		for _, row := range stations {
			if st.Stations[row.StationID] == nil {
				st.Stations[row.StationID] = map[string]int64{}
			}
			st.Stations[row.StationID][row.Outcome] = row.Votes
		}
		return err
	})
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	type key struct {
		topic string
		p     int32
	}
	have := map[key]db.ListAppliedOffsetsRow{}
	for _, a := range applied {
		have[key{a.Topic, a.Partition}] = a
		st.EventsApplied[a.Topic] += a.NextOffset
		// Freshness is the votes': a registration or a station's report
		// applied now does not make the results any fresher.
		if a.Topic == domain.TopicVotes && a.LastEventAt != nil && a.LastEventAt.After(st.NewestEvent) {
			st.NewestEvent = *a.LastEventAt
		}
	}
	if !st.NewestEvent.IsZero() {
		st.Staleness = time.Since(st.NewestEvent)
	}
	st.LogReachable = ends != nil
	for _, topic := range domain.EventTopics {
		var hwm map[int32]int64
		if ends != nil {
			if hwm, err = ends(ctx, topic); err != nil {
				st.LogReachable = false
				hwm = nil
			}
		}
		parts := map[int32]bool{}
		for p := range hwm {
			parts[p] = true
		}
		for k := range have {
			if k.topic == topic {
				parts[k.p] = true
			}
		}
		for _, p := range slices.Sorted(maps.Keys(parts)) {
			a := have[key{topic, p}]
			ps := PartitionStatus{Topic: topic, Partition: p, Applied: a.NextOffset, End: -1, Lag: -1, LastEventAt: dbutil.TimeOrZero(a.LastEventAt)}
			if end, ok := hwm[p]; ok {
				ps.End, ps.Lag = end, max(0, end-a.NextOffset)
				st.Lag[topic] += ps.Lag
			}
			st.Partitions = append(st.Partitions, ps)
		}
	}
	return st, nil
}
