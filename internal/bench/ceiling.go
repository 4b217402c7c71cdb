package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/projections/write"
)

// measureApplyCeiling feeds the votes in the log, decoded beforehand, to
// the batch apply directly (write.Store.ApplyVotes: load the batch's
// facts, domain.Decide, write the decisions and tallies): the live
// path's batches and writers with no Kafka consumer, no router and no
// batcher in front. It is the ceiling the live path's consumer can reach
// at the same batch size, into a schema of its own with the register
// copied in, as the consumer phases start.
func (c *Bench) measureApplyCeiling(ctx context.Context, env *Env, dsn string, live *pgxpool.Pool, kcfg kafka.Config, klog *kafka.Log) (benchResult, error) {
	pool, err := registered(ctx, env, dsn, live, "bench_apply", 16)
	if err != nil {
		return benchResult{}, err
	}
	defer pool.Close()
	store, err := write.NewStore(pool)
	if err != nil {
		return benchResult{}, err
	}
	ends, err := klog.HighWatermarks(ctx, domain.TopicVotes)
	if err != nil {
		return benchResult{}, err
	}
	// As the live projector does: rule 0 checks each vote's partition.
	store.SetVotePartitions(len(ends))
	from := map[int32]int64{}
	for p := range ends {
		from[p] = 0
	}
	var votes []projections.Envelope[domain.VoteCast]
	err = kafka.ReadRange(ctx, kcfg, domain.TopicVotes, from, ends, func(recs []kafka.Record) error {
		for _, r := range recs {
			v, err := domain.DecodeVoteCast(r.Value)
			if err != nil {
				continue // schedules and malformed messages: not votes
			}
			votes = append(votes, projections.Envelope[domain.VoteCast]{Event: v,
				Position: projections.Position{Topic: domain.TopicVotes, Partition: r.Partition, Offset: r.Offset, Time: r.Time}})
		}
		return nil
	})
	if err != nil {
		return benchResult{}, err
	}
	batch := c.liveFlags().BatchSize
	fmt.Fprintf(env.Stdout, "apply ceiling: %d votes in batches of %d, %d writers…\n", len(votes), batch, c.Writers)
	batches := make(chan []projections.Envelope[domain.VoteCast])
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		for i := 0; i < len(votes); i += batch {
			select {
			case batches <- votes[i:min(i+batch, len(votes))]:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	start := time.Now()
	for range max(1, c.Writers) {
		g.Go(func() error {
			for b := range batches {
				if _, err := store.ApplyVotes(gctx, b); err != nil {
					return fmt.Errorf("apply a batch: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return benchResult{}, err
	}
	el := time.Since(start)
	return benchResult{Name: "apply_ceiling", Count: int64(len(votes)), Seconds: el.Seconds(), PerSec: float64(len(votes)) / el.Seconds(),
		Note: fmt.Sprintf("the log's votes fed to the batch apply directly: batches of %d, %d writers, no consumer in front", batch, c.Writers)}, nil
}
