package read

import (
	"context"
	"fmt"
	"time"

	"github.com/votewatch/votewatch/projections/internal/db"
)

// OperatorAction is one recorded operator action.
type OperatorAction struct {
	Action, Who, Host, Detail, Result string
	At                                time.Time
}

// OperatorActions returns the latest operator actions, newest first.
func (r *Results) OperatorActions(ctx context.Context, max int) ([]OperatorAction, error) {
	rows, err := db.New(r.pool).ListOperatorActions(ctx, int32(max))
	if err != nil {
		return nil, fmt.Errorf("operator actions: %w", err)
	}
	out := make([]OperatorAction, 0, len(rows))
	for _, x := range rows {
		out = append(out, OperatorAction{Action: x.Action, Who: x.Who, Host: x.Host, Detail: x.Detail, Result: x.Result, At: x.At})
	}
	return out, nil
}
