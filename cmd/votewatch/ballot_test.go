package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/internal/openapitest"
	"github.com/votewatch/votewatch/transparency"
)

// proofAPI answers the read API's ballot and checkpoint key routes from a
// transparency log of three votes in partition 1 (the second rejected)
// and a pending fourth, checkpointed and signed by key. edit may change a
// ballot answer before it is sent, as a lying API would.
func proofAPI(t *testing.T, key transparency.Key, edit func(id string, answer map[string]any)) *httptest.Server {
	t.Helper()
	secret := transparency.Secret(bytes.Repeat([]byte{9}, 32))
	tree := &transparency.MemTree{}
	answers := map[string]map[string]any{}
	var leaves []transparency.Leaf
	for i, decision := range []string{"counted", "rejected duplicate_voter", "counted"} {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		l := transparency.Leaf{Partition: 1, Offset: int64(i), Kind: transparency.KindVote, VoteID: id, Decision: decision,
			Choice: secret.Commit(id, "default", "p-ada"), Event: strings.Repeat("0f", 32)}
		if err := tree.Append(l); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, l)
	}
	head, err := tree.Head()
	if err != nil {
		t.Fatal(err)
	}
	signed, err := key.Sign(transparency.Checkpoint{Origin: "votewatch/test", Time: time.Date(2026, 11, 3, 20, 0, 0, 0, time.UTC),
		Trees: map[int32]transparency.Head{0: {}, 1: head}, Applied: map[string]map[int32]int64{"votes": {0: 0, 1: 4}},
		Tallies: transparency.Counts{}.Digest(), Counted: 2, Rejected: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range leaves {
		p, err := tree.Prove(1, int64(i), head.Size, l.Body())
		if err != nil {
			t.Fatal(err)
		}
		status, reason, _ := strings.Cut(l.Decision, " ")
		a := map[string]any{"vote_id": l.VoteID, "status": status, "checkpoint": string(signed), "proof": p}
		if reason != "" {
			a["reason"] = reason
		}
		answers[l.VoteID] = a
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
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	// The answers are the API's contract's.
	client := openapitest.Load(t).Client()
	for _, path := range []string{"/api/v1/ballots/" + leaves[0].VoteID, "/api/v1/ballots/" + leaves[1].VoteID, "/api/v1/ballots/" + pending, "/api/v1/checkpoint/key"} {
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

func ballotCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
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
	key, err := transparency.LoadOrCreateKey(filepath.Join(t.TempDir(), "key"), "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "verifier.key")
	if err := os.WriteFile(keyFile, []byte(key.Verifier+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	api := proofAPI(t, key, nil).URL
	counted, rejected, pending := "00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000002", "00000000-0000-4000-8000-000000000004"

	for name, pin := range map[string][]string{"pinned key": {"--verifier-key", key.Verifier}, "key file": {"--verifier-key", keyFile}, "the API's key": nil} {
		code, out := ballotCLI(t, append([]string{counted, "--api", api, "--verify-proof"}, pin...)...)
		want := []string{"ballot " + counted + ": counted",
			"proof: your vote's leaf is in the signed tree of partition 1 at size 3 (leaf 2)",
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

	other, err := transparency.LoadOrCreateKey(filepath.Join(t.TempDir(), "key"), "votewatch-test")
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
	liar := proofAPI(t, key, func(id string, a map[string]any) {
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
	liar = proofAPI(t, key, func(id string, a map[string]any) {
		if id == rejected {
			a["status"] = "counted"
			delete(a, "reason")
		}
	}).URL
	if code, out := ballotCLI(t, rejected, "--api", liar, "--verify-proof", "--verifier-key", keyFile); code != 1 || !strings.Contains(out, `the signed leaf says`) || !strings.Contains(out, "rejected duplicate_voter") {
		t.Errorf("a status the leaf contradicts: exit %d, want 1:\n%s", code, out)
	}
}
