package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/internal/openapitest"
	"github.com/votewatch/votewatch/transparency"
)

// proofAPI answers the read API's ballot, checkpoint key and tile routes
// from a transparency log of three votes (the second rejected), and
// extra more leaves, and a pending fourth vote, checkpointed and signed by
// key. fork changes the first extra leaf, as an operator showing another
// history would. edit may change a ballot answer before it is sent, as a
// lying API would.
func proofAPI(t *testing.T, key transparency.Key, extra int, fork bool, edit func(id string, answer map[string]any)) *httptest.Server {
	t.Helper()
	secret := transparency.Secret(bytes.Repeat([]byte{9}, 32))
	tree := &transparency.MemTree{}
	answers := map[string]map[string]any{}
	var leaves []transparency.Leaf
	var ids []string
	for i, decision := range []string{"counted", "rejected duplicate_voter", "counted"} {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		l := transparency.Leaf{Partition: 1, Offset: int64(i), Kind: transparency.KindVote, Vote: transparency.VoteRef(id), Decision: decision,
			Choice: secret.Commit(id, "default", "p-ada"), Event: strings.Repeat("0f", 32)}
		leaves = append(leaves, l)
		ids = append(ids, id)
	}
	for i := range extra {
		ev := strings.Repeat("1e", 32)
		if fork && i == 0 {
			ev = strings.Repeat("2d", 32)
		}
		leaves = append(leaves, transparency.Leaf{Partition: 2, Offset: int64(i), Kind: transparency.KindSchedule, Event: ev})
	}
	var bodies [][]byte
	for _, l := range leaves {
		if err := tree.Append(l); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, []byte(l.Body()))
	}
	head, err := tree.Head()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := key.Sign(transparency.Checkpoint{Origin: "votewatch/test", Time: time.Date(2026, 11, 3, 20, 0, 0, 0, time.UTC),
		Size: head.N, Root: head.Hash, Tallies: transparency.Counts{}.KeyedDigest(secret)})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		l := leaves[i]
		p, err := tree.Prove(int64(i), head.N, l.Body())
		if err != nil {
			t.Fatal(err)
		}
		status, reason, _ := strings.Cut(l.Decision, " ")
		a := map[string]any{"vote_id": id, "status": status, "checkpoint": string(signed), "proof": p}
		if reason != "" {
			a["reason"] = reason
		}
		answers[id] = a
	}
	pending := "00000000-0000-4000-8000-000000000004"
	answers[pending] = map[string]any{"vote_id": pending, "status": "pending"}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ballots/{vote_id}", func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.PathValue("vote_id")]
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"not found"}}`))
			return
		}
		if edit != nil {
			a = cloneAnswer(t, a)
			edit(r.PathValue("vote_id"), a)
		}
		_ = json.NewEncoder(w).Encode(a)
	})
	mux.HandleFunc("GET /api/v1/checkpoint/key", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, key.Verifier+"\n")
	})
	mux.HandleFunc("GET /log/tile/", func(w http.ResponseWriter, r *http.Request) {
		tile, err := torchwood.ParseTilePath(strings.TrimPrefix(r.URL.Path, "/log/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		var data []byte
		if tile.L < 0 {
			for _, b := range bodies[tile.N*256 : tile.N*256+int64(tile.W)] {
				data, _ = torchwood.AppendTileEntry(data, b)
			}
		} else if data, err = tlog.ReadTileData(tile, tree); err != nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(data)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// The answers are the API's contract's.
	client := openapitest.Load(t).Client()
	for _, path := range []string{"/api/v1/ballots/" + ids[0], "/api/v1/ballots/" + ids[1], "/api/v1/ballots/" + pending, "/api/v1/checkpoint/key"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
	}
	return srv
}

func cloneAnswer(t *testing.T, a map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// ballotCLI runs votewatch ballot; without --state-dir, with a state dir
// of its own (never the user's).
func ballotCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	if !slices.Contains(args, "--state-dir") {
		args = append(args, "--state-dir", t.TempDir())
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"--log-level", "warn", "ballot"}, args...), &out, &errOut)
	return code, out.String() + errOut.String()
}

// votewatch ballot --verify-proof checks the answer's proof against its
// signed checkpoint with a pinned key (text or file), or the API's own key
// with a warning, and says what it proves; a proof that does not verify,
// a checkpoint another key signed, a leaf that says other than the
// answer, or no proof at all exit 1.
func TestBallotVerifyProof(t *testing.T) {
	t.Parallel()
	key, err := transparency.CreateKey(filepath.Join(t.TempDir(), "key"), "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "verifier.key")
	if err := os.WriteFile(keyFile, []byte(key.Verifier+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	api := proofAPI(t, key, 0, false, nil).URL
	counted, rejected, pending := "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"

	for name, pin := range map[string][]string{"pinned key": {"--verifier-key", key.Verifier}, "key file": {"--verifier-key", keyFile}, "the API's key": nil} {
		code, out := ballotCLI(t, append([]string{counted, "--api", api, "--verify-proof"}, pin...)...)
		want := []string{"ballot " + counted + ": counted",
			"proof: your vote's leaf is in the signed tree at size 3 (leaf 2)",
			"checkpoint: votewatch/test at 2026-11-03T20:00:00Z, signed by votewatch-test", "the leaf says: counted"}
		if pin == nil {
			want = append(want, "no --verifier-key")
		}
		for _, w := range want {
			if code != 0 || !strings.Contains(out, w) {
				t.Errorf("%s: exit %d, want 0 and %q in:\n%s", name, code, w, out)
			}
		}
	}
	if code, out := ballotCLI(t, rejected, "--api", api, "--verify-proof", "--verifier-key", keyFile); code != 0 ||
		!strings.Contains(out, "the leaf says: rejected duplicate_voter") {
		t.Errorf("a rejected vote: exit %d:\n%s", code, out)
	}
	if code, out := ballotCLI(t, pending, "--api", api); code != 0 || !strings.Contains(out, "ballot "+pending+": pending") {
		t.Errorf("a pending vote without --verify-proof: exit %d:\n%s", code, out)
	}
	if code, out := ballotCLI(t, pending, "--api", api, "--verify-proof", "--verifier-key", keyFile); code != 1 || !strings.Contains(out, "no proof yet") {
		t.Errorf("a pending vote with --verify-proof: exit %d, want 1 and no proof yet:\n%s", code, out)
	}

	other, err := transparency.CreateKey(filepath.Join(t.TempDir(), "key"), "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	if code, out := ballotCLI(t, counted, "--api", api, "--verify-proof", "--verifier-key", other.Verifier); code != 1 || !strings.Contains(out, "signature") {
		t.Errorf("a checkpoint the pinned key did not sign: exit %d, want 1:\n%s", code, out)
	}
	if code, out := ballotCLI(t, counted, "--api", api, "--verify-proof", "--verifier-key", filepath.Join(t.TempDir(), "missing")); code != 1 {
		t.Errorf("a missing key file: exit %d, want 1:\n%s", code, out)
	}

	// A lying API: it says counted for the rejected vote, with the
	// rejected leaf edited to match; then the true leaf beside the lie.
	liar := proofAPI(t, key, 0, false, func(id string, a map[string]any) {
		if id != rejected {
			return
		}
		a["status"] = "counted"
		delete(a, "reason")
		p := a["proof"].(map[string]any)
		p["leaf"] = strings.Replace(p["leaf"].(string), "decision rejected duplicate_voter", "decision counted", 1)
	}).URL
	if code, out := ballotCLI(t, rejected, "--api", liar, "--verify-proof", "--verifier-key", keyFile); code != 1 || !strings.Contains(out, "does not verify") {
		t.Errorf("an edited leaf: exit %d, want 1 and does not verify:\n%s", code, out)
	}
	liar = proofAPI(t, key, 0, false, func(id string, a map[string]any) {
		if id == rejected {
			a["status"] = "counted"
			delete(a, "reason")
		}
	}).URL
	if code, out := ballotCLI(t, rejected, "--api", liar, "--verify-proof", "--verifier-key", keyFile); code != 1 || !strings.Contains(out, `the signed leaf says`) || !strings.Contains(out, "rejected duplicate_voter") {
		t.Errorf("a status the leaf contradicts: exit %d, want 1:\n%s", code, out)
	}
}

// votewatch ballot --verify-proof keeps the newest checkpoint it saw in
// its state dir: a later, larger tree that extends it passes (proved from
// the tiles, past a full tile); the earlier, smaller one shown again is a
// rollback; a fork of the same history (one leaf changed) is refused, at
// a larger size and at the same size; witness keys require their
// cosignatures.
func TestBallotVerifyProofKeepsTheNewestCheckpointAndRefusesAFork(t *testing.T) {
	t.Parallel()
	key, err := transparency.CreateKey(filepath.Join(t.TempDir(), "key"), "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	counted := "00000000-0000-4000-8000-000000000003"
	check := func(api string) (int, string) {
		t.Helper()
		return ballotCLI(t, counted, "--api", api, "--verify-proof", "--verifier-key", key.Verifier, "--state-dir", state)
	}
	small, large := proofAPI(t, key, 10, false, nil).URL, proofAPI(t, key, 300, false, nil).URL
	if code, out := check(small); code != 0 || !strings.Contains(out, "saved: the first checkpoint") {
		t.Fatalf("the first run: exit %d:\n%s", code, out)
	}
	if code, out := check(large); code != 0 || !strings.Contains(out, "consistent: the tree extends the checkpoint of 13 leaves") {
		t.Fatalf("a larger tree extending it: exit %d:\n%s", code, out)
	}
	if code, out := check(small); code != 1 || !strings.Contains(out, "after one of 303 was seen (a rollback)") {
		t.Fatalf("the smaller tree again: exit %d, want 1 and a rollback:\n%s", code, out)
	}
	if code, out := check(large); code != 0 || !strings.Contains(out, "the same tree") {
		t.Fatalf("the larger tree again: exit %d:\n%s", code, out)
	}
	for _, n := range []int{300, 400} {
		forked := proofAPI(t, key, n, true, nil).URL
		if code, out := check(forked); code != 1 || !strings.Contains(out, "not consistent") {
			t.Errorf("a fork of %d leaves: exit %d, want 1 and not consistent:\n%s", n+3, code, out)
		}
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := torchwood.NewCosignatureSigner("witness.example", priv)
	if err != nil {
		t.Fatal(err)
	}
	code, out := ballotCLI(t, counted, "--api", large, "--verify-proof", "--verifier-key", key.Verifier, "--witness-key", w.Verifier().String())
	if code != 1 || !strings.Contains(out, "quorum") {
		t.Errorf("a witness key and no cosignature: exit %d, want 1 and quorum:\n%s", code, out)
	}
}
