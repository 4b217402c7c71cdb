package systemtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"filippo.io/torchwood"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/tallykey"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/transparency"
)

// transparencyConfig makes the log's key and secret in dir, as 'votewatch
// keys init' does (the projector makes neither), and returns the
// projector's configuration.
func transparencyConfig(t *testing.T, dir string) (app.TransparencyConfig, transparency.Key) {
	t.Helper()
	flags := app.TransparencyConfig{
		CheckpointKey: filepath.Join(dir, "checkpoint.key"), ElectionSecret: filepath.Join(dir, "election.secret"),
		Every: 100 * time.Millisecond, Election: "test",
	}
	tallyKey, digestKey := filepath.Join(dir, "tally.key"), filepath.Join(dir, "intake.key")
	if code, out := testutil.Run(t, "keys", "init", "--checkpoint-key", flags.CheckpointKey, "--election-secret", flags.ElectionSecret,
		"--tally-key", tallyKey, "--intake-digest-key", digestKey, "--election", "test"); code != 0 {
		t.Fatalf("keys init = %d:\n%s", code, out)
	}
	// keys init makes the secrecy keys too, private to their owner.
	for _, path := range []string{tallyKey, digestKey} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("keys init made %s: %v, %v; want a 0600 file", path, fi, err)
		}
	}
	if _, err := tallykey.LoadPrivate(tallyKey); err != nil {
		t.Fatalf("the tally key keys init made: %v", err)
	}
	if code, out := testutil.Run(t, "keys", "init", "--checkpoint-key", flags.CheckpointKey, "--election-secret", flags.ElectionSecret,
		"--tally-key", tallyKey, "--intake-digest-key", digestKey); code == 0 || !strings.Contains(out, "refusing") {
		t.Fatalf("keys init over existing files = %d, want a refusal:\n%s", code, out)
	}
	key, err := transparency.LoadKey(flags.CheckpointKey)
	if err != nil {
		t.Fatal(err)
	}
	return flags, key
}

// latestNote waits until the served checkpoint covers every decided vote
// and returns it.
func (p *pipeline) latestNote(t *testing.T, verify func(note []byte) (transparency.Checkpoint, error)) (string, transparency.Checkpoint) {
	t.Helper()
	ctx := context.Background()
	var note string
	var c transparency.Checkpoint
	testutil.Eventually(t, 60*time.Second, "a checkpoint of every decided vote", func() (bool, string) {
		var ballots, rejected, counted, rejectedInLog int64
		if err := p.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM ballots), (SELECT count(*) FROM rejections)").Scan(&ballots, &rejected); err != nil {
			return false, err.Error()
		}
		resp, err := http.Get(p.api + "/log/checkpoint")
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status
		}
		note = string(b)
		if c, err = verify(b); err != nil {
			return false, err.Error()
		}
		if err := p.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE body LIKE '%decision counted%'), count(*) FILTER (WHERE body LIKE '%decision rejected%')
			FROM log_leaves WHERE leaf < $1`, c.Size).Scan(&counted, &rejectedInLog); err != nil {
			return false, err.Error()
		}
		return counted == ballots && rejectedInLog == rejected, fmt.Sprintf("checkpoint of %d leaves: %d counted, %d rejected; projection %d, %d", c.Size, counted, rejectedInLog, ballots, rejected)
	})
	return note, c
}

// The projector publishes its epochs and signed checkpoints to the
// checkpoints topic and serves the newest; an observer's saved checkpoint
// passes `audit --checkpoint`; replay reproduces the tree from the log,
// and refuses to swap over a tree it cannot reproduce unless told to,
// which is recorded.
func TestCheckpointsArePublishedAuditedAndReplayed(t *testing.T) {
	dir := t.TempDir()
	flags, key := transparencyConfig(t, dir)
	p := startSystem(t, system{partitions: 4, projector: true, transparency: &flags})
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	ctx := context.Background()

	note, c := p.latestNote(t, func(b []byte) (transparency.Checkpoint, error) { return transparency.Open(b, key.Verifier) })
	if !strings.HasPrefix(note, "votewatch/test\n") || len(note) >= transparency.MaxCheckpointSize {
		t.Errorf("the checkpoint (%d bytes): %q", len(note), note)
	}
	ends, err := p.klog.HighWatermarks(ctx, domain.TopicCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	published, epochs := 0, 0
	err = kafka.ReadRange(ctx, p.kafka, domain.TopicCheckpoints, map[int32]int64{0: 0}, ends, func(recs []kafka.Record) error {
		for _, r := range recs {
			if transparency.IsEpoch(r.Value) {
				epochs++
				continue
			}
			if _, err := transparency.Open(r.Value, key.Verifier); err != nil {
				t.Errorf("checkpoint at offset %d: %v", r.Offset, err)
			}
			published++
		}
		return nil
	})
	if err != nil || published == 0 || epochs == 0 {
		t.Fatalf("%d checkpoints and %d epochs published to the topic (%v)", published, epochs, err)
	}

	saved := filepath.Join(dir, "saved.note")
	if err := os.WriteFile(saved, []byte(note), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFlag := "--election-secret=" + flags.ElectionSecret
	code, out := p.cli(t, "audit", "--checkpoint", saved, "--verifier-key", key.Verifier, secretFlag)
	if code != 0 || !strings.Contains(out, "signature verified") || !strings.Contains(out, "prefix of today's") || !strings.Contains(out, "roots recomputed from the log") {
		t.Fatalf("audit --checkpoint of an honest election = %d:\n%s", code, out)
	}
	forged := filepath.Join(dir, "forged.note")
	if err := os.WriteFile(forged, []byte(strings.Replace(note, fmt.Sprintf("\n%d\n", c.Size), fmt.Sprintf("\n%d\n", c.Size+1), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := p.cli(t, "audit", "--checkpoint", forged, "--verifier-key", key.Verifier); code == 0 || !strings.Contains(out, "signature") {
		t.Errorf("audit of a forged checkpoint = %d, want a failure naming the signature:\n%s", code, out)
	}

	if code, out := p.cli(t, "replay", "--verify", secretFlag); code != 0 {
		t.Fatalf("replay --verify with the secret = %d:\n%s", code, out)
	}

	// The live tree rewritten: replay will not swap over it unless the
	// operator accepts the difference, and that is recorded.
	if _, err := p.pool.Exec(ctx, "UPDATE log_hashes SET hash = sha256(hash)"); err != nil {
		t.Fatal(err)
	}
	if code, out := p.cli(t, "replay", secretFlag); code == 0 || !strings.Contains(out, "--accept-diff") {
		t.Fatalf("replay over a rewritten tree = %d, want a refusal naming --accept-diff:\n%s", code, out)
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

// litewitness runs a real witness (filippo.io/torchwood/cmd/litewitness,
// c2sp.org/tlog-witness) that knows the log origin with key vkey, with an
// ssh-agent holding its key, and returns its URL and verifier key.
func litewitness(t *testing.T, origin, vkey string) (string, string) {
	t.Helper()
	bin := func(name string) string {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
		gobin := filepath.Join(os.Getenv("HOME"), "go", "bin", name)
		if out, err := exec.Command("go", "env", "GOBIN").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			gobin = filepath.Join(strings.TrimSpace(string(out)), name)
		} else if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gobin = filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		}
		if _, err := os.Stat(gobin); err == nil {
			return gobin
		}
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("%s is not installed; .ci/run installs it (go install filippo.io/torchwood/cmd/%s@v0.6.1)", name, name)
		}
		t.Skipf("%s is not installed: go install filippo.io/torchwood/cmd/%s@v0.6.1", name, name)
		return ""
	}
	lw, ctl := bin("litewitness"), bin("witnessctl")
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
				t.Fatalf("%s is not installed; .ci/run installs openssh-client", tool)
			}
			t.Skipf("%s is not installed (openssh-client)", tool)
		}
	}
	// A short directory: a Unix socket's path is at most 108 bytes.
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	keyFile := filepath.Join(dir, "key")
	run(nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "witness", "-f", keyFile)
	fp := strings.Fields(run(nil, "ssh-keygen", "-l", "-f", keyFile+".pub"))[1]
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	testutil.Eventually(t, 10*time.Second, "the ssh-agent's socket", func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, fmt.Sprint(err)
	})
	run([]string{"SSH_AUTH_SOCK=" + sock}, "ssh-add", "-q", keyFile)
	db := filepath.Join(dir, "witness.db")
	run(nil, ctl, "add-log", "-db", db, "-origin", origin)
	run(nil, ctl, "add-key", "-db", db, "-origin", origin, "-key", vkey)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(lw, "-db", db, "-name", "witness.test/w1", "-key", fp, "-ssh-agent", sock, "-listen", addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGINT); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`vkey=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if testing.Verbose() {
				fmt.Fprintln(os.Stderr, "litewitness:", sc.Text())
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- strings.Trim(m[1], `"`):
				default:
				}
			}
		}
	}()
	var wkey string
	select {
	case wkey = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("litewitness did not log its verifier key")
	}
	testutil.Eventually(t, 30*time.Second, "litewitness listening", func() (bool, string) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil, fmt.Sprint(err)
	})
	return "http://" + addr, wkey
}

// A real witness (litewitness) cosigns the log's checkpoints: the served
// checkpoint carries its cosignature and reaches the quorum; torchwood's
// tiles client reads every entry back against the cosigned root; a
// ballot's inclusion proof verifies with transparency-dev/merkle against
// it; and the witness refuses a fork signed by the log's own key.
func TestAWitnessCosignsTheLogAndRefusesAFork(t *testing.T) {
	dir := t.TempDir()
	flags, key := transparencyConfig(t, dir)
	url, wkey := litewitness(t, "votewatch/test", key.Verifier)
	w, err := transparency.ParseWitness(url + "=" + wkey)
	if err != nil {
		t.Fatal(err)
	}
	flags.Witnesses, flags.Quorum = []transparency.Witness{w}, 1
	p := startSystem(t, system{partitions: 4, projector: true, transparency: &flags})
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	ctx := context.Background()

	note, c := p.latestNote(t, func(b []byte) (transparency.Checkpoint, error) {
		c, _, err := transparency.OpenWitnessed(b, key.Verifier, []string{wkey}, 1)
		return c, err
	})
	if len(note) >= transparency.MaxCheckpointSize || !strings.Contains(note, "— witness.test/w1 ") {
		t.Errorf("the cosigned checkpoint (%d bytes):\n%s", len(note), note)
	}
	// Every checkpoint recorded reached the quorum.
	var recorded, cosigned int
	if err := p.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM log_checkpoints), (SELECT count(DISTINCT size) FROM log_cosignatures)").Scan(&recorded, &cosigned); err != nil || recorded != cosigned {
		t.Errorf("%d checkpoints recorded, %d cosigned (%v)", recorded, cosigned, err)
	}

	fetcher, err := torchwood.NewTileFetcher(p.api + "/log/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := torchwood.NewClient(fetcher)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	refs := map[string]int64{}
	err = transparency.ReadEntries(ctx, client, c.Head(), func(i int64, entry []byte) error {
		l, err := transparency.ParseLeaf(string(entry))
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		if l.Kind == transparency.KindVote && l.Decision != transparency.Repeat {
			refs[l.Vote] = i
		}
		n++
		return nil
	})
	if err != nil || n != c.Size {
		t.Fatalf("read %d of %d entries through the tiles: %v", n, c.Size, err)
	}
	t.Logf("%d entries read through the tiles against the cosigned root; checkpoint of %d bytes", n, len(note))

	// A counted ballot's proof, checked by another RFC 6962 implementation.
	var voteID string
	if err := p.pool.QueryRow(ctx, "SELECT vote_id::text FROM ballots ORDER BY vote_id LIMIT 1").Scan(&voteID); err != nil {
		t.Fatal(err)
	}
	var ballot struct {
		Checkpoint string                       `json:"checkpoint"`
		Proof      *transparency.InclusionProof `json:"proof"`
	}
	if code := p.get(t, "/api/v1/ballots/"+voteID, &ballot); code != http.StatusOK || ballot.Proof == nil {
		t.Fatalf("ballot %s: %d, proof %v", voteID, code, ballot.Proof)
	}
	bc, _, err := transparency.OpenWitnessed([]byte(ballot.Checkpoint), key.Verifier, []string{wkey}, 1)
	if err != nil {
		t.Fatalf("the ballot's checkpoint: %v", err)
	}
	hashes := make([][]byte, len(ballot.Proof.Hashes))
	for i, h := range ballot.Proof.Hashes {
		x, err := tlog.ParseHash(h)
		if err != nil {
			t.Fatal(err)
		}
		hashes[i] = x[:]
	}
	leaf := rfc6962.DefaultHasher.HashLeaf([]byte(ballot.Proof.Leaf))
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(ballot.Proof.LeafIndex), uint64(bc.Size), leaf, hashes, bc.Root[:]); err != nil {
		t.Errorf("ballot %s's proof against the cosigned checkpoint: %v", voteID, err)
	}
	if refs[transparency.VoteRef(voteID)] != ballot.Proof.LeafIndex {
		t.Errorf("ballot %s: proof of leaf %d, the tiles have it at %d", voteID, ballot.Proof.LeafIndex, refs[transparency.VoteRef(voteID)])
	}

	// A fork: the log's key signs another tree of the same size, and one
	// a leaf larger whose root does not extend the witnessed one.
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, size := range []int64{c.Size, c.Size + 1} {
		forked := c
		forked.Size, forked.Root = size, tlog.RecordHash([]byte(fmt.Sprintf("fork %d", size)))
		signed, err := key.Sign(forked)
		if err != nil {
			t.Fatal(err)
		}
		var pr tlog.TreeProof
		if size > c.Size {
			pr = tlog.TreeProof{tlog.RecordHash([]byte("x"))}
		}
		_, err = w.AddCheckpoint(ctx, hc, signed, c.Size, pr)
		var conflict *transparency.ErrConflict
		if !errors.Is(err, transparency.ErrRefused) && !errors.As(err, &conflict) {
			t.Errorf("a fork of %d leaves: %v, want the witness to refuse it", size, err)
		}
	}
	// An observer's audit through the tiles: the cosignature, every entry
	// against the cosigned root, and their totals against the recount.
	secretFlag := "--election-secret=" + flags.ElectionSecret
	code, out := p.cli(t, "audit", "--log-url", p.api+"/log/", "--verifier-key", key.Verifier, "--witness-key", wkey, secretFlag)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("tiles: %d entries read", c.Size)) || !strings.Contains(out, "witness.test/w1") {
		t.Errorf("audit --log-url = %d:\n%s", code, out)
	}
	other, _ := torchwood.NewCosignatureSigner("witness.test/w2", ed25519.NewKeyFromSeed(make([]byte, 32)))
	if code, out := p.cli(t, "audit", "--log-url", p.api+"/log/", "--verifier-key", key.Verifier, "--witness-key", other.Verifier().String(), secretFlag); code == 0 || !strings.Contains(out, "quorum") {
		t.Errorf("audit --log-url requiring a witness that did not cosign = %d, want a failure naming the quorum:\n%s", code, out)
	}

	// The witness still knows the honest tree: the honest checkpoint
	// again is cosigned.
	if _, err := w.AddCheckpoint(ctx, hc, []byte(cutSignatures(note, 1)), c.Size, nil); err != nil {
		t.Errorf("the honest checkpoint again: %v", err)
	}

	var metrics bytes.Buffer
	resp, err := http.Get(p.ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(&metrics, resp.Body)
	resp.Body.Close()
	for _, want := range []string{`votewatch_log_witness_requests_total{outcome="ok",witness="witness.test/w1"}`, "votewatch_log_unwitnessed_seconds 0"} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// cutSignatures keeps the first n signature lines of a note.
func cutSignatures(note string, n int) string {
	text, sigs, _ := strings.Cut(note, "\n\n")
	lines := strings.SplitAfter(sigs, "\n")
	return text + "\n\n" + strings.Join(lines[:n], "")
}
