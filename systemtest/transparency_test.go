package systemtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/transparency"
)

// The projector publishes signed checkpoints to the checkpoints topic and
// keeps them to serve; an observer's saved checkpoint passes `audit
// --checkpoint`; replay reproduces the roots, and refuses to swap over
// trees it cannot reproduce unless told to, which is recorded.
func TestCheckpointsArePublishedAuditedAndReplayed(t *testing.T) {
	dir := t.TempDir()
	flags := app.TransparencyConfig{
		CheckpointKey: filepath.Join(dir, "checkpoint.key"), ElectionSecret: filepath.Join(dir, "election.secret"),
		Every: 100 * time.Millisecond, Election: "test",
	}
	p := startSystem(t, system{partitions: 4, projector: true, transparency: &flags})
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	ctx := context.Background()
	key, err := transparency.LoadKey(flags.CheckpointKey)
	if err != nil {
		t.Fatal(err)
	}

	// The last checkpoint covers every ballot.
	var note string
	testutil.Eventually(t, 30*time.Second, "a checkpoint of every decided vote", func() (bool, string) {
		var ballots, rejected int64
		if err := p.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM ballots), (SELECT count(*) FROM rejections)").Scan(&ballots, &rejected); err != nil {
			return false, err.Error()
		}
		if err := p.pool.QueryRow(ctx, "SELECT note FROM checkpoints ORDER BY id DESC LIMIT 1").Scan(&note); err != nil {
			return false, err.Error()
		}
		c, err := transparency.Open([]byte(note), key.Verifier)
		if err != nil {
			return false, err.Error()
		}
		return c.Counted == ballots && c.Rejected == rejected, note
	})
	if !strings.HasPrefix(note, "votewatch/test\n") {
		t.Errorf("the checkpoint's origin line: %q", strings.SplitN(note, "\n", 2)[0])
	}
	ends, err := p.klog.HighWatermarks(ctx, domain.TopicCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	published := 0
	err = kafka.ReadRange(ctx, p.kafka, domain.TopicCheckpoints, map[int32]int64{0: 0}, ends, func(recs []kafka.Record) error {
		for _, r := range recs {
			if _, err := transparency.Open(r.Value, key.Verifier); err != nil {
				t.Errorf("checkpoint at offset %d: %v", r.Offset, err)
			}
			published++
		}
		return nil
	})
	if err != nil || published == 0 {
		t.Fatalf("%d checkpoints published to the topic (%v)", published, err)
	}

	saved := filepath.Join(dir, "saved.note")
	if err := os.WriteFile(saved, []byte(note), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFlag := "--election-secret=" + flags.ElectionSecret
	code, out := p.cli(t, "audit", "--checkpoint", saved, "--verifier-key", key.Verifier, secretFlag)
	if code != 0 || !strings.Contains(out, "signature verified") || !strings.Contains(out, "prefixes of today's") || !strings.Contains(out, "roots recomputed from the log") {
		t.Fatalf("audit --checkpoint of an honest election = %d:\n%s", code, out)
	}
	forged := filepath.Join(dir, "forged.note")
	if err := os.WriteFile(forged, []byte(strings.Replace(note, "counted ", "counted 9", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := p.cli(t, "audit", "--checkpoint", forged, "--verifier-key", key.Verifier); code == 0 || !strings.Contains(out, "signature") {
		t.Errorf("audit of a forged checkpoint = %d, want a failure naming the signature:\n%s", code, out)
	}

	if code, out := p.cli(t, "replay", "--verify", secretFlag); code != 0 {
		t.Fatalf("replay --verify with the secret = %d:\n%s", code, out)
	}

	// The live trees rewritten: replay will not swap over them unless the
	// operator accepts the difference, and that is recorded.
	if _, err := p.pool.Exec(ctx, "UPDATE tree_hashes SET hash = sha256(hash) WHERE partition = (SELECT min(partition) FROM tree_heads WHERE size > 0)"); err != nil {
		t.Fatal(err)
	}
	if code, out := p.cli(t, "replay", secretFlag); code == 0 || !strings.Contains(out, "--accept-diff") {
		t.Fatalf("replay over rewritten trees = %d, want a refusal naming --accept-diff:\n%s", code, out)
	}
	if code, out := p.cli(t, "replay", secretFlag, "--accept-diff"); code != 0 {
		t.Fatalf("replay --accept-diff = %d:\n%s", code, out)
	}
	testutil.Eventually(t, 30*time.Second, "the accept_diff operator action", func() (bool, string) {
		var n int
		if err := p.pool.QueryRow(ctx, "SELECT count(*) FROM operator_actions WHERE action = $1", domain.ActionAcceptDiff).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 1, ""
	})
}
