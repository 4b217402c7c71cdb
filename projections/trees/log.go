package trees

import (
	"context"
	"fmt"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
)

// RecordedEpochs reads the epochs recorded in the checkpoints topic, in
// the order they were appended (an epoch may be there twice; a tree
// growing them skips the copy). The topic's other records, the signed
// checkpoints, are left out. A log without the topic has no epochs.
func RecordedEpochs(ctx context.Context, log projections.ReplayLog) ([]transparency.Epoch, error) {
	ends, err := log.HighWatermarks(ctx, domain.TopicCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints topic's ends: %w", err)
	}
	var out []transparency.Epoch
	from := map[int32]int64{}
	for p := range ends {
		from[p] = 0
	}
	err = log.ReadRange(ctx, domain.TopicCheckpoints, from, ends, func(recs []projections.LogRecord) error {
		for _, r := range recs {
			if !transparency.IsEpoch(r.Value) {
				continue
			}
			e, err := transparency.ParseEpoch(string(r.Value))
			if err != nil {
				return fmt.Errorf("checkpoints partition %d offset %d: %w", r.Partition, r.Offset, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints topic: %w", err)
	}
	return out, nil
}

// VotesReader reads the votes topic of log, for a Tree.
func VotesReader(log projections.ReplayLog) transparency.ReadFunc {
	return func(ctx context.Context, from, to map[int32]int64, fn func(int32, int64, []byte) error) error {
		return log.ReadRange(ctx, domain.TopicVotes, from, to, func(recs []projections.LogRecord) error {
			for _, r := range recs {
				if err := fn(r.Partition, r.Offset, r.Value); err != nil {
					return err
				}
			}
			return nil
		})
	}
}
