package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func admin(cfg Config) (*kadm.Client, *kgo.Client, error) {
	cl, err := kgo.NewClient(cfg.kgoOpts()...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to kafka %v: %w", cfg.Brokers, err)
	}
	return kadm.NewClient(cl), cl, nil
}

// CommittedOffsets returns group's committed offsets in topic (partitions
// without a commit are absent, i.e. start at 0).
func CommittedOffsets(ctx context.Context, cfg Config, group, topic string) (map[int32]int64, error) {
	adm, cl, err := admin(cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	resp, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}, nil // never committed: start at the beginning
	}
	if err != nil {
		return nil, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		if o.Err == nil {
			out[p] = o.At
		}
	}
	return out, nil
}

// CommitOffsets records group's position in topic.
func CommitOffsets(ctx context.Context, cfg Config, group, topic string, offsets map[int32]int64) error {
	adm, cl, err := admin(cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	var os kadm.Offsets
	for p, at := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, group, os)
	if err != nil {
		return fmt.Errorf("commit offsets of %s: %w", group, err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("commit offsets of %s: %w", group, err)
	}
	return nil
}

// GroupAssignment returns, for each member of a consumer group, the
// partitions of topic it was assigned (members with none are listed with
// none: more members than partitions leaves some idle).
func GroupAssignment(ctx context.Context, cfg Config, group, topic string) (map[string][]int32, error) {
	adm, cl, err := admin(cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	g, ok := described[group]
	if !ok {
		return nil, fmt.Errorf("describe group %s: not in the answer", group)
	}
	if g.Err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, g.Err)
	}
	out := make(map[string][]int32, len(g.Members))
	for _, m := range g.Members {
		out[m.MemberID] = nil
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range a.Topics {
			if t.Topic == topic {
				out[m.MemberID] = append(out[m.MemberID], t.Partitions...)
			}
		}
	}
	return out, nil
}

// RetentionProblems describes, for each of topics that exists, a setting
// that lets the broker delete events: a finite retention.ms or
// retention.bytes, or compaction. The log is the election's source of
// truth, so each is worth a loud warning.
func RetentionProblems(ctx context.Context, cfg Config, topics []string) ([]string, error) {
	adm, cl, err := admin(cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	described, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("describe topic configs: %w", err)
	}
	var problems []string
	for _, rc := range described {
		if rc.Err != nil {
			continue // a topic not created yet
		}
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			v := *c.Value
			switch {
			case c.Key == "retention.ms" && v != "-1":
				problems = append(problems, fmt.Sprintf("%s: retention.ms=%s deletes events older than that", rc.Name, v))
			case c.Key == "retention.bytes" && v != "-1":
				problems = append(problems, fmt.Sprintf("%s: retention.bytes=%s deletes the oldest events past that size", rc.Name, v))
			case c.Key == "cleanup.policy" && strings.Contains(v, "compact"):
				problems = append(problems, fmt.Sprintf("%s: cleanup.policy=%s drops events that share a key", rc.Name, v))
			}
		}
	}
	return problems, nil
}
