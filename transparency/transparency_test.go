package transparency_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"filippo.io/torchwood"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/transparency"
)

func TestALeafReadsBackExactly(t *testing.T) {
	secret := transparency.Secret(bytes.Repeat([]byte{1}, 32))
	l := transparency.Leaf{Partition: 3, Offset: 42, Kind: transparency.KindVote, Vote: transparency.VoteRef("0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b"),
		Decision: "rejected duplicate_voter", Choice: secret.Commit("0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "default", "c-ada"), Event: "00ff"}
	got, err := transparency.ParseLeaf(l.Body())
	if err != nil || got != l {
		t.Fatalf("ParseLeaf(Body) = %+v, %v; want %+v", got, err, l)
	}
	if _, err := transparency.ParseLeaf(strings.Replace(l.Body(), "kind vote", "kind  vote", 1)); err == nil {
		t.Error("a leaf not in canonical form was accepted")
	}
}

// The commitment binds the choice and the vote, and without the secret a
// guessed candidate does not match it.
func TestTheChoiceCommitmentNeedsTheSecret(t *testing.T) {
	secret := transparency.Secret(bytes.Repeat([]byte{1}, 32))
	other := transparency.Secret(bytes.Repeat([]byte{2}, 32))
	const id = "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b"
	c := secret.Commit(id, "default", "c-ada")
	for _, guess := range []string{"c-ada", "c-bob"} {
		if other.Commit(id, "default", guess) == c {
			t.Errorf("another secret's commitment to %s matches", guess)
		}
	}
	if secret.Commit(id, "default", "c-bob") == c || secret.Commit(id, "senate", "c-ada") == c {
		t.Error("the commitment does not bind the candidate and the contest")
	}
	if secret.Commit(id, "default", "c-ada") != c {
		t.Error("the commitment is not deterministic")
	}
}

// A checkpoint is a C2SP tlog-checkpoint: torchwood (another
// implementation of the format) reads it, with the same origin, size and
// root; it reads back exactly; malformed ones are refused.
func TestACheckpointIsAStandardCheckpointAndReadsBackExactly(t *testing.T) {
	c := transparency.Checkpoint{
		Origin: "votewatch/test", Size: 1234, Root: tlog.RecordHash([]byte("x")),
		Time: time.Date(2026, 11, 29, 21, 0, 0, 123e6, time.UTC), Tallies: "abc=",
	}
	got, err := transparency.ParseCheckpoint(c.Text())
	if err != nil || got != c {
		t.Fatalf("ParseCheckpoint(Text) = %+v, %v; want %+v", got, err, c)
	}
	tw, err := torchwood.ParseCheckpoint(c.Text())
	if err != nil || tw.Origin != c.Origin || tw.N != c.Size || tw.Hash != c.Root || tw.String() != c.Text() {
		t.Fatalf("torchwood reads %+v, %v", tw, err)
	}
	for _, bad := range []string{
		strings.Replace(c.Text(), "\n1234\n", "\n01234\n", 1),
		strings.Replace(c.Text(), "\n1234\n", "\n-1\n", 1),
		c.Text() + "\n",
		strings.TrimSuffix(c.Text(), "\n"),
		"votewatch/test\n12\n",
	} {
		if _, err := transparency.ParseCheckpoint(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// A signed checkpoint stays under 1 KB with its log signature and the
// cosignatures of five witnesses (names as long as witness.example.org/w1),
// at the largest size a tree can have.
func TestASignedCheckpointWithFiveCosignaturesIsUnderOneKilobyte(t *testing.T) {
	key, err := transparency.CreateKey(t.TempDir()+"/key", "votewatch-a-long-election-name-2026")
	if err != nil {
		t.Fatal(err)
	}
	c := transparency.Checkpoint{Origin: "votewatch/a-long-election-name-2026", Size: 1<<63 - 1, Root: tlog.RecordHash([]byte("x")),
		Time: time.Now(), Tallies: transparency.Counts{}.KeyedDigest(transparency.Secret(bytes.Repeat([]byte{1}, 32)))}
	signed, err := key.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	// A cosignature line: "— <name> <base64 of 4+8+64 bytes>\n".
	line := "— witness.example.org/w1 " + strings.Repeat("A", 104) + "\n"
	total := len(signed) + 5*len(line)
	if total >= transparency.MaxCheckpointSize {
		t.Errorf("a checkpoint with five cosignatures is %d bytes, want under %d:\n%s", total, transparency.MaxCheckpointSize, signed)
	}
}

// A key written by LoadOrCreateKey loads back with the same verifier, and
// the file is private.
func TestTheKeyIsKeptPrivateAndLoadsBack(t *testing.T) {
	path := t.TempDir() + "/key"
	k, err := transparency.CreateKey(path, "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	again, err := transparency.LoadKey(path)
	if err != nil || again.Verifier != k.Verifier {
		t.Fatalf("loaded %q, %v; made %q", again.Verifier, err, k.Verifier)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the key file's mode: %v, %v; want 0600", st.Mode(), err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := transparency.LoadKey(path); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a key file others may read: %v, want a refusal", err)
	}
	if strings.Contains(k.Verifier, "PRIVATE") {
		t.Error("the verifier key holds the private key")
	}
}

// A repeat or misrouted leaf commits to no choice: anyone who can produce
// to the votes topic and saw a vote_id could otherwise send a copy with a
// guessed candidate and compare its public leaf's commitment with the
// original's (review finding).
func TestARepeatLeafCommitsToNoChoice(t *testing.T) {
	secret := transparency.Secret(bytes.Repeat([]byte{1}, 32))
	const id = "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b"
	for _, status := range []string{transparency.Repeat, transparency.Misrouted} {
		var choices []string
		for _, guess := range []string{"c-ada", "c-bob"} {
			v, err := domain.NewVote(id, "v-1", guess, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			l, _, counts := secret.NewLeaf(transparency.Entry{Partition: 0, Offset: 7, Event: domain.VoteCast{Vote: v}}, transparency.Decision{Status: status})
			if counts {
				t.Errorf("a %s leaf adds to a count", status)
			}
			choices = append(choices, l.Choice)
		}
		if choices[0] != choices[1] || choices[0] == secret.Commit(id, domain.DefaultContest, "c-ada") {
			t.Errorf("a %s leaf's choice %q depends on the copy's candidate", status, choices)
		}
	}
}

// A served tree smaller than one a client saw before is a rollback: both
// the ballot client and the audit refuse it, before reading any tile
// (review finding: the audit's check took the smaller of the two trees
// as the older, and passed).
func TestATreeSmallerThanOneSeenBeforeIsARollback(t *testing.T) {
	older := tlog.Tree{N: 10, Hash: tlog.Hash{1}}
	newer := tlog.Tree{N: 9, Hash: tlog.Hash{2}}
	if err := transparency.CheckExtends(t.Context(), nil, older, newer); !errors.Is(err, transparency.ErrInconsistent) {
		t.Fatalf("CheckExtends(10 leaves, then 9) = %v, want ErrInconsistent", err)
	}
}
