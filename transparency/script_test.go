package transparency_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docs/verify-checkpoint.sh, which knows only the signed-note format and
// openssl, accepts a checkpoint as signed and refuses it with one
// character of its text changed, signed by another key, or with its
// signature edited.
func TestTheShellScriptVerifiesACheckpointWithOpensslAlone(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal("openssl is not installed; .ci/run installs it")
		}
		t.Skip("openssl is not installed")
	}
	script, err := filepath.Abs("../docs/verify-checkpoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	_, _, signed := signedTree(t, key, 7)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte(key.Verifier+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	verify := func(key string, note []byte) (bool, string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "checkpoint")
		if err := os.WriteFile(path, note, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sh", script, key, path).CombinedOutput()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatal(err)
		}
		return err == nil && string(out) == "OK\n", string(out)
	}
	if ok, out := verify(key.Verifier, signed); !ok {
		t.Fatalf("the checkpoint as signed, the key as text:\n%s\n%s", signed, out)
	}
	if ok, out := verify(keyFile, signed); !ok {
		t.Fatalf("the checkpoint as signed, the key in a file:\n%s", out)
	}
	// As served: a witness's cosignature line after the log's.
	w, _ := witness(t, "witness.example.org")
	if ok, out := verify(key.Verifier, cosign(t, signed, w)); !ok {
		t.Fatalf("the checkpoint with a cosignature:\n%s", out)
	}

	text, _, _ := bytes.Cut(signed, []byte("\n\n"))
	at := bytes.Index(text, []byte("votewatch-time ")) + len("votewatch-time ")
	flipped := bytes.Clone(signed)
	flipped[at] ^= 1
	if ok, out := verify(key.Verifier, flipped); ok {
		t.Errorf("one character of the text changed (%q): %s", flipped[:len(text)], out)
	}
	if ok, out := verify(key.Verifier, bytes.Replace(signed, []byte("\n\n"), []byte("\n"), 1)); ok {
		t.Errorf("a note without its blank line: %s", out)
	}

	// A line appended after the signatures is not signed: a reader of
	// the file could take it for the checkpoint's.
	if ok, out := verify(key.Verifier, append(bytes.Clone(signed), []byte("votewatch-tallies forged=\n")...)); ok {
		t.Errorf("a line appended after the signature: %s", out)
	}

	_, _, forged := signedTree(t, newKey(t), 7)
	if ok, out := verify(key.Verifier, forged); ok {
		t.Errorf("signed by another key of the same name: %s", out)
	}

	sigAt := bytes.LastIndexByte(signed[:len(signed)-1], ' ') + 1
	edited := bytes.Clone(signed)
	if edited[sigAt+10] == 'A' {
		edited[sigAt+10] = 'B'
	} else {
		edited[sigAt+10] = 'A'
	}
	if ok, out := verify(key.Verifier, edited); ok {
		t.Errorf("the signature edited: %s", out)
	}
	if ok, _ := verify(strings.Replace(key.Verifier, "votewatch-test", "votewatch-tesT", 1), signed); ok {
		t.Error("a key of another name")
	}
}
