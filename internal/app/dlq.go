package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
)

// ReplayDeadLetters re-publishes topic's dead letters whose payload now
// decodes, telling out about each. Progress is a consumer group's
// committed offsets, so running it again re-publishes nothing twice; and
// re-publishing is harmless anyway (applying is idempotent). A dry run
// publishes nothing and commits nothing.
func ReplayDeadLetters(ctx context.Context, kcfg kafka.Config, topic string, dryRun bool, out io.Writer) error {
	dlq := domain.DeadLetterTopic(topic)
	group := "votewatch-dlq-replay." + topic
	from, err := kafka.CommittedOffsets(ctx, kcfg, group, dlq)
	if err != nil {
		return err
	}
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		return err
	}
	defer klog.Close()
	to, err := klog.HighWatermarks(ctx, dlq)
	if err != nil {
		return err
	}
	decode := func(b []byte) error { _, err := domain.Decode(topic, b); return err }
	var pub *kafka.Publisher
	if !dryRun {
		if pub, err = kafka.NewPublisher(kcfg); err != nil {
			return err
		}
		defer pub.Close()
	}
	var fixed, still int
	err = kafka.ReadRange(ctx, kcfg, dlq, from, to, func(recs []kafka.Record) error {
		var msgs []*message.Message
		for _, r := range recs {
			if err := decode(r.Value); err != nil {
				still++
				fmt.Fprintf(out, "still invalid  %s/%d@%d: %v\n", dlq, r.Partition, r.Offset, err)
				continue
			}
			fixed++
			verb := "re-publish"
			if dryRun {
				verb = "would re-publish"
			}
			fmt.Fprintf(out, "%s  %s/%d@%d → %s (key %q)\n", verb, dlq, r.Partition, r.Offset, topic, r.Key)
			m := message.NewMessage(watermill.NewUUID(), slices.Clone(r.Value))
			m.Metadata.Set(kafka.KeyMetadata, string(r.Key))
			msgs = append(msgs, m)
		}
		if dryRun || len(msgs) == 0 {
			return nil
		}
		return pub.Publish(topic, msgs...)
	})
	if err != nil {
		return err
	}
	if !dryRun {
		if err := kafka.CommitOffsets(ctx, kcfg, group, dlq, to); err != nil {
			return err
		}
	}
	summary := fmt.Sprintf("%d dead letters decode now and %s; %d are still invalid and stay on %s", fixed,
		map[bool]string{true: "would be re-published (dry run)", false: "were re-published to " + topic}[dryRun], still, dlq)
	if !dryRun {
		if err := kafka.RecordAction(pub, domain.ActionDLQReplay, summary, "ok"); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, strings.TrimSpace(summary))
	return nil
}
