package read

import (
	"context"
	"fmt"
	"time"

	"github.com/votewatch/votewatch/projections/internal/db"
)

// StationCanvass is one polling station in the canvass: the ballots it
// reported casting when it closed, beside the ballots counted from it.
type StationCanvass struct {
	StationID string
	Region    string
	// ClosedAt is when the station reported closing; nil while it is open.
	ClosedAt *time.Time
	// ReportedBallots is the count on its close report; nil when it
	// reported none (or has not closed).
	ReportedBallots *int64
	// CountedBallots is how many voters' ballots were counted from it; a
	// public reader gives it only once the station has closed
	// (domain.Disclosure.PublishesStationCount), nil before.
	CountedBallots *int64
}

// Difference is counted minus reported ballots, and whether there is a
// reported count to compare with. A difference is what a canvass looks
// into: ballots counted from nowhere, or cast and never counted (lost,
// rejected, still in transit).
func (s StationCanvass) Difference() (int64, bool) {
	if s.ReportedBallots == nil || s.CountedBallots == nil {
		return 0, false
	}
	return *s.CountedBallots - *s.ReportedBallots, true
}

// Canvass returns every station's canvass, by station_id.
func (r *Results) Canvass(ctx context.Context) ([]StationCanvass, error) {
	var out []StationCanvass
	err := r.snapshot(ctx, func(q *db.Queries) error {
		rows, err := q.ListStationCanvass(ctx)
		if err != nil {
			return err
		}
		out = make([]StationCanvass, 0, len(rows))
		for _, row := range rows {
			s := StationCanvass{StationID: row.StationID, Region: row.Region, ClosedAt: row.ClosedAt}
			if !r.public || r.rule.PublishesStationCount(row.ClosedAt != nil) {
				n := row.CountedBallots
				s.CountedBallots = &n
			}
			if row.ReportedBallots.Valid {
				n := row.ReportedBallots.Int64
				s.ReportedBallots = &n
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the canvass: %w", err)
	}
	return out, nil
}
