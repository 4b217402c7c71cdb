package systemtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// Tests wait on what the system under test tells, never on a sleep (the
// model is river's testsignal): the two waits below turn "give it a second"
// into a condition.

// waitQuiet waits until the whole log is applied and acknowledged: the
// projection's offsets have reached the end of every partition (the
// operator's status), and so have the committed offsets of the projector's
// consumer groups (group.<topic>). After it no message is in flight or due
// for redelivery, so a test can check that something did not happen (a
// redelivery counted twice, a dry run that published) without sleeping.
func (p *pipeline) waitQuiet(t *testing.T, group string) {
	t.Helper()
	ctx := context.Background()
	status, err := read.NewResults(p.pool)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 60*time.Second, "the log applied and acknowledged", func() (bool, string) {
		// The partitions' offsets, as an operator reads them (the public
		// status has none).
		st, err := status.Status(ctx, p.klog.HighWatermarks)
		if err != nil {
			return false, err.Error()
		}
		if !st.LogReachable {
			return false, "the log's ends are unknown"
		}
		for _, x := range st.Partitions {
			if x.End < 0 || x.Applied < x.End {
				return false, fmt.Sprintf("%s/%d: applied up to %d of %d", x.Topic, x.Partition, x.Applied, x.End)
			}
		}
		for _, topic := range domain.EventTopics {
			ends, err := p.klog.HighWatermarks(ctx, topic)
			if err != nil {
				return false, err.Error()
			}
			committed, err := kafka.CommittedOffsets(ctx, p.kafka, group+"."+topic, topic)
			if err != nil {
				return false, err.Error()
			}
			for part, end := range ends {
				if committed[part] < end {
					return false, fmt.Sprintf("group %s.%s committed %d of %d on partition %d", group, topic, committed[part], end, part)
				}
			}
		}
		return true, ""
	})
}

// failedBatches returns how many batches the in-process projector has
// failed so far (its apply histogram's failed count, every batcher).
func (p *pipeline) failedBatches(t *testing.T) float64 {
	t.Helper()
	var n float64
	for k, v := range scrape(t, p.ops+"/metrics") {
		if strings.HasPrefix(k, "votewatch_projector_apply_seconds_count{") && strings.Contains(k, `outcome="failed"`) {
			n += v
		}
	}
	return n
}

// waitFailing waits until the projector has failed n batches more than
// before: a fault has met the projector, which must now recover from it.
func (p *pipeline) waitFailing(t *testing.T, before float64, n int, what string) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, what, func() (bool, string) {
		got := p.failedBatches(t)
		return got >= before+float64(n), fmt.Sprintf("%v batches failed, %v before", got, before)
	})
}

// waitForAction waits until the operator actions topic's projection holds n operator
// actions named action (GET /api/v1/audit).
func (p *pipeline) waitForAction(t *testing.T, action string, n int) {
	t.Helper()
	testutil.Eventually(t, 30*time.Second, "the "+action+" operator action", func() (bool, string) {
		var audit struct {
			Actions []struct {
				Action string `json:"action"`
			} `json:"actions"`
		}
		p.get(t, "/api/v1/audit", &audit)
		got := 0
		for _, a := range audit.Actions {
			if a.Action == action {
				got++
			}
		}
		return got >= n, fmt.Sprintf("%d of %d", got, n)
	})
}
