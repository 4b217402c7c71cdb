package transparency_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/transparency"
)

// witness makes a cosigner with torchwood (the witness implementation
// litewitness runs) and returns it with its verifier key.
func witness(t *testing.T, name string) (*torchwood.CosignatureSigner, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Verifier().String()
}

// cosign appends w's cosignature line to signed.
func cosign(t *testing.T, signed []byte, w note.Signer) []byte {
	t.Helper()
	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	n, err := note.Sign(&note.Note{Text: string(text) + "\n"}, w)
	if err != nil {
		t.Fatal(err)
	}
	_, sig, _ := bytes.Cut(n, []byte("\n\n"))
	return append(bytes.Clone(signed), sig...)
}

// Cosignatures made by torchwood's witness signer verify, count towards
// the quorum, and a forged one is refused.
func TestWitnessCosignaturesCountTowardsTheQuorum(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	_, _, signed := signedTree(t, key, 5)
	w1, k1 := witness(t, "w1.example.org")
	w2, k2 := witness(t, "w2.example.org")
	both := cosign(t, cosign(t, signed, w1), w2)
	if len(both) >= transparency.MaxCheckpointSize {
		t.Errorf("a checkpoint with two cosignatures is %d bytes", len(both))
	}
	c, names, err := transparency.OpenWitnessed(both, key.Verifier, []string{k1, k2}, 2)
	if err != nil || c.Size != 5 || strings.Join(names, ",") != "w1.example.org,w2.example.org" {
		t.Fatalf("two cosignatures: %v, %v, %v", c, names, err)
	}
	if _, _, err := transparency.OpenWitnessed(cosign(t, signed, w1), key.Verifier, []string{k1, k2}, 2); !errors.Is(err, transparency.ErrNoQuorum) {
		t.Errorf("one cosignature of two needed: %v, want ErrNoQuorum", err)
	}
	// A cosignature over another checkpoint, moved onto this one.
	_, _, other := signedTree(t, key, 6)
	moved := append(bytes.Clone(signed), cosign(t, other, w1)[len(other):]...)
	if _, _, err := transparency.OpenWitnessed(moved, key.Verifier, []string{k1}, 1); !errors.Is(err, transparency.ErrBadSignature) {
		t.Errorf("a cosignature of another checkpoint: %v, want ErrBadSignature", err)
	}
	if _, err := transparency.NewWitnessVerifier(strings.Replace(k1, "w1.", "w9.", 1)); err == nil {
		t.Error("a witness key whose hash does not match its name was accepted")
	}
}

func TestAnEpochReadsBackExactly(t *testing.T) {
	e := transparency.Epoch{From: 10, Size: 25, Root: tlog.RecordHash([]byte("r")), Ends: map[int32]int64{0: 7, 3: 12}}
	got, err := transparency.ParseEpoch(e.Text())
	if err != nil || got.Text() != e.Text() || !transparency.IsEpoch([]byte(e.Text())) {
		t.Fatalf("ParseEpoch(Text) = %+v, %v", got, err)
	}
	for _, bad := range []string{
		strings.Replace(e.Text(), "from 10", "from 25", 1),
		strings.Replace(e.Text(), "end 0 7\nend 3 12\n", "end 3 12\nend 0 7\n", 1),
		strings.Replace(e.Text(), "end 3 12", "end 3 -1", 1),
	} {
		if _, err := transparency.ParseEpoch(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
