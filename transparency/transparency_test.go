package transparency_test

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/transparency"
)

func TestALeafReadsBackExactly(t *testing.T) {
	secret := transparency.Secret(bytes.Repeat([]byte{1}, 32))
	l := transparency.Leaf{Partition: 3, Offset: 42, Kind: transparency.KindVote, VoteID: "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b",
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

func TestACheckpointReadsBackExactly(t *testing.T) {
	c := transparency.Checkpoint{
		Origin: "votewatch/test", Time: time.Date(2026, 11, 29, 21, 0, 0, 123e6, time.UTC),
		Trees:   map[int32]transparency.Head{0: {Size: 2, Root: tlog.RecordHash([]byte("x")), NextOffset: 5}, 1: {}},
		Applied: map[string]map[int32]int64{"votes": {0: 5, 1: 0}, "voters": {0: 9}},
		Tallies: "abc=", Counted: 1, Rejected: 1,
	}
	got, err := transparency.ParseCheckpoint(c.Text())
	if err != nil || got.Text() != c.Text() {
		t.Fatalf("ParseCheckpoint(Text) = %v, %v", got.Text(), err)
	}
	for _, bad := range []string{
		strings.Replace(c.Text(), "votewatch checkpoint v1", "votewatch checkpoint v2", 1),
		strings.Replace(c.Text(), "tree 0 2", "tree 0 02", 1),
		c.Text() + "extra line\n",
		strings.Replace(c.Text(), "tree 0 2 ", "tree 0 -1 ", 1),
		strings.Replace(c.Text(), "counted 1", "counted -1", 1),
	} {
		if _, err := transparency.ParseCheckpoint(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// A key written by LoadOrCreateKey loads back with the same verifier, and
// the file is private.
func TestTheKeyIsKeptPrivateAndLoadsBack(t *testing.T) {
	path := t.TempDir() + "/key"
	k, err := transparency.LoadOrCreateKey(path, "votewatch-test")
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
