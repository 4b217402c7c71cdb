package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is one message read from a partition.
type Record struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Time      time.Time
}

// ReadRange reads topic's partitions directly (no consumer group, nothing
// committed) from from[p] up to, not including, to[p], handing records to
// fn in batches. Within a partition records arrive in log order. It is the
// bulk path: a replay reads the log as fast as the broker serves it.
func ReadRange(ctx context.Context, cfg Config, topic string, from, to map[int32]int64, fn func([]Record) error) error {
	cfg.setDefaults()
	start := map[int32]kgo.Offset{}
	remaining := 0
	for p, end := range to {
		if from[p] < end {
			start[p] = kgo.NewOffset().At(from[p])
			remaining++
		}
	}
	if remaining == 0 {
		return nil
	}
	client, err := kgo.NewClient(cfg.kgoOpts(
		kgo.ClientID(cfg.clientID()+"-replay"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchMaxBytes(8<<20),
		kgo.FetchMaxPartitionBytes(1<<20),
	)...)
	if err != nil {
		return fmt.Errorf("connect reader to %v: %w", cfg.Brokers, err)
	}
	defer client.Close()
	done := map[int32]bool{}
	batch := make([]Record, 0, 8192)
	for remaining > 0 {
		fetches := client.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("read %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		batch = batch[:0]
		fetches.EachRecord(func(r *kgo.Record) {
			end := to[r.Partition]
			if done[r.Partition] || r.Offset >= end {
				return
			}
			batch = append(batch, Record{Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Time: r.Timestamp})
			if r.Offset == end-1 {
				done[r.Partition] = true
				remaining--
			}
		})
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}
