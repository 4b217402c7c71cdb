package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/projections"
	"github.com/votewatch/votewatch/transparency"
)

var proofSecret = transparency.Secret(bytes.Repeat([]byte{0x5e}, 32))

// readerAPI serves e's projection through the read API's role,
// votewatch_reader, which may read the trees and checkpoints and never
// the ballots.
func (e *contestElection) readerAPI() *httptest.Server {
	e.t.Helper()
	cfg := e.pool.Config().Copy()
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE votewatch_reader")
		return err
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(pool.Close)
	results, err := projections.NewResults(pool)
	if err != nil {
		e.t.Fatal(err)
	}
	api, err := handlers.NewAPI(results, func(context.Context) error { return nil }, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	e.t.Cleanup(srv.Close)
	return srv
}

// checkpoint grows the election's trees over what it has decided and
// records a signed checkpoint of them, as the checkpointer does.
func (e *contestElection) checkpoint(key transparency.Key) []byte {
	e.t.Helper()
	read := func(_ context.Context, from, to map[int32]int64, fn func(int32, int64, []byte) error) error {
		for p, end := range to {
			if p != 0 {
				continue
			}
			for o := from[p]; o < end; o++ {
				if b, ok := e.payloads[o]; ok {
					if err := fn(p, o, b); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	trees, err := projections.NewTrees(e.pool, proofSecret, read)
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := projections.NewCheckpointer(projections.CheckpointerConfig{Trees: trees, Key: key, Origin: "votewatch/test",
		Publish: func(context.Context, []byte) error { return nil }}, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	signed, err := cp.Checkpoint(context.Background())
	if err != nil || signed == nil {
		e.t.Fatalf("checkpoint: %q, %v", signed, err)
	}
	return signed
}

type ballotAnswer struct {
	Code       int
	Raw        string
	Status     string  `json:"status"`
	Reason     string  `json:"reason"`
	Checkpoint *string `json:"checkpoint"`
	Proof      *struct {
		Partition int32    `json:"partition"`
		LeafIndex int64    `json:"leaf_index"`
		Leaf      string   `json:"leaf"`
		TreeSize  int64    `json:"tree_size"`
		Root      string   `json:"root"`
		Hashes    []string `json:"hashes"`
	} `json:"proof"`
}

func getBallot(t *testing.T, srv *httptest.Server, id string) ballotAnswer {
	t.Helper()
	resp, err := contractClient(t).Get(srv.URL + "/api/v1/ballots/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := ballotAnswer{Code: resp.StatusCode, Raw: string(raw)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func getText(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := contractClient(t).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
}

// The checkpoint routes serve the latest note byte for byte, its verifier
// key, and the list since a time; 404 before the first, 400 for a bad
// since.
func TestCheckpointRoutesServeTheNoteAsSigned(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	srv := e.readerAPI()
	for _, path := range []string{"/api/v1/checkpoint", "/api/v1/checkpoint/key"} {
		code, _, raw := getText(t, srv.URL+path)
		if code != http.StatusNotFound || !strings.Contains(raw, `"not_found"`) {
			t.Errorf("%s before any checkpoint: %d %s, want a JSON 404", path, code, raw)
		}
	}
	key := newKey(t)
	e.vote("n-1", domain.DefaultContest, "p-ada")
	first := e.checkpoint(key)
	e.vote("n-2", domain.DefaultContest, "p-bob")
	second := e.checkpoint(key)

	code, ctype, raw := getText(t, srv.URL+"/api/v1/checkpoint")
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || raw != string(second) {
		t.Fatalf("latest checkpoint: %d %q\n%s\nwant the second note as signed:\n%s", code, ctype, raw, second)
	}
	code, ctype, vkey := getText(t, srv.URL+"/api/v1/checkpoint/key")
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || strings.TrimSpace(vkey) != key.Verifier {
		t.Fatalf("key: %d %q %q, want %q", code, ctype, vkey, key.Verifier)
	}
	if _, err := transparency.Open([]byte(raw), vkey); err != nil {
		t.Errorf("the served note does not open with the served key: %v", err)
	}

	var list struct {
		Checkpoints []struct {
			ID        int64  `json:"id"`
			CreatedAt string `json:"created_at"`
			Note      string `json:"note"`
		} `json:"checkpoints"`
	}
	code, _, rawList := fetch(t, http.MethodGet, srv.URL+"/api/v1/checkpoints?since=2000-01-01T00:00:00Z")
	if err := json.Unmarshal([]byte(rawList), &list); err != nil || code != http.StatusOK || len(list.Checkpoints) != 2 ||
		list.Checkpoints[0].Note != string(first) || list.Checkpoints[1].Note != string(second) {
		t.Fatalf("checkpoints since 2000: %d %s", code, rawList)
	}
	code, _, rawList = fetch(t, http.MethodGet, srv.URL+"/api/v1/checkpoints?since="+list.Checkpoints[0].CreatedAt)
	if err := json.Unmarshal([]byte(rawList), &list); err != nil || code != http.StatusOK || len(list.Checkpoints) != 1 || list.Checkpoints[0].Note != string(second) {
		t.Errorf("checkpoints since the first's time: %d %s, want the second alone", code, rawList)
	}
	for _, bad := range []string{"yesterday", "2026-11-03", "2026-11-03T08:00:00"} {
		code, body, raw := fetch(t, http.MethodGet, srv.URL+"/api/v1/checkpoints?since="+bad)
		errBody, _ := body["error"].(map[string]any)
		if code != http.StatusBadRequest || errBody["field"] != "since" {
			t.Errorf("since=%s: %d %s, want 400 naming since", bad, code, raw)
		}
	}
	if code, _, raw := fetch(t, http.MethodGet, srv.URL+"/api/v1/checkpoints?after=x"); code != http.StatusBadRequest {
		t.Errorf("an unknown parameter: %d %s, want 400", code, raw)
	}
}

// newKey makes a checkpoint signing key in a temporary directory.
func newKey(t *testing.T) transparency.Key {
	t.Helper()
	key, err := transparency.LoadOrCreateKey(t.TempDir()+"/key", "votewatch-test")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// A receipt holder gets the status and, once checkpointed, an inclusion
// proof that verifies against the signed checkpoint. No answer names the
// candidate, the voter, the region or the contest, and trying every
// registered candidate of every contest against the leaf's choice
// commitment, with any salt the answer offers, matches none; only the
// election secret matches the right one.
func TestBallotProofVerifiesAndNeverTellsTheChoice(t *testing.T) {
	t.Parallel()
	e := openContestElection(t)
	srv := e.readerAPI()
	key := newKey(t)
	type cast struct{ voter, contest, candidate, status, reason string }
	casts := []cast{
		{"n-1", domain.DefaultContest, "p-ada", "counted", ""},
		{"n-2", domain.DefaultContest, "p-bob", "counted", ""},
		{"n-1", "senate-north", "s-cy", "counted", ""},
		{"n-3", "senate-north", "s-di", "counted", ""},
		{"s-1", "measure-1", "m-yes", "counted", ""},
		{"s-2", "measure-1", "m-no", "counted", ""},
		{"n-1", domain.DefaultContest, "p-bob", "rejected", "duplicate_voter"},
		{"s-1", "senate-north", "s-cy", "rejected", "not_eligible"},
	}
	for _, c := range casts {
		e.vote(c.voter, c.contest, c.candidate)
	}
	e.checkpoint(key)
	// Decided after the checkpoint: a status, no proof yet.
	e.vote("n-4", domain.DefaultContest, "p-ada")
	casts = append(casts, cast{"n-4", domain.DefaultContest, "p-ada", "counted", ""})
	// Held for a registration still open: pending, and every vote after
	// it in its partition waits for it before joining the tree.
	e.vote("n-9-unregistered", domain.DefaultContest, "p-ada")
	casts = append(casts, cast{"n-9-unregistered", domain.DefaultContest, "p-ada", "pending", ""})
	e.vote("n-2", "measure-1", "m-yes")
	casts = append(casts, cast{"n-2", "measure-1", "m-yes", "counted", ""})
	e.checkpoint(key)
	_, _, latest := getText(t, srv.URL+"/api/v1/checkpoint")

	contests := map[string][]string{
		domain.DefaultContest: {"p-ada", "p-bob"}, "senate-north": {"s-cy", "s-di"}, "measure-1": {"m-yes", "m-no"},
	}
	leaks := []string{"p-ada", "p-bob", "s-cy", "s-di", "m-yes", "m-no", "Name ", "n-1", "n-2", "n-3", "n-4", "n-9", "s-1", "s-2",
		"North", "South", "senate", "measure", "default", "Civic"}
	proved := 0
	for i, c := range casts {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		a := getBallot(t, srv, id)
		if a.Code != http.StatusOK || a.Status != c.status || a.Reason != c.reason {
			t.Errorf("ballot %d (%+v): %d %s", i+1, c, a.Code, a.Raw)
			continue
		}
		for _, leak := range leaks {
			if strings.Contains(a.Raw, leak) || strings.Contains(strings.ToLower(a.Raw), strings.ToLower(leak)) {
				t.Errorf("ballot %d's answer names %q: %s", i+1, leak, a.Raw)
			}
		}
		// Votes 1-8 are in the latest checkpoint's tree; vote 9 came after
		// the first checkpoint and is behind none, so the second has it;
		// the pending vote and the one after it are in no tree.
		wantProof := i+1 <= 9
		if (a.Proof != nil) != wantProof || (a.Checkpoint != nil) != wantProof {
			t.Errorf("ballot %d (%s): proof %v, checkpoint %v; want both %v", i+1, c.status, a.Proof != nil, a.Checkpoint != nil, wantProof)
		}
		if a.Proof == nil {
			continue
		}
		proved++
		if *a.Checkpoint != latest {
			t.Errorf("ballot %d: the proof's checkpoint is not the latest", i+1)
		}
		cp, err := transparency.Open([]byte(*a.Checkpoint), key.Verifier)
		if err != nil {
			t.Fatalf("ballot %d's checkpoint: %v", i+1, err)
		}
		head := cp.Trees[a.Proof.Partition]
		root, err := tlog.ParseHash(a.Proof.Root)
		if err != nil || root != head.Root || a.Proof.TreeSize != head.Size {
			t.Errorf("ballot %d: proof against %d/%s, the checkpoint says %d/%s", i+1, a.Proof.TreeSize, a.Proof.Root, head.Size, head.Root)
		}
		var hashes tlog.RecordProof
		for _, h := range a.Proof.Hashes {
			x, err := tlog.ParseHash(h)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, x)
		}
		if err := tlog.CheckRecord(hashes, head.Size, head.Root, a.Proof.LeafIndex, tlog.RecordHash([]byte(a.Proof.Leaf))); err != nil {
			t.Errorf("ballot %d: the proof does not verify against the signed checkpoint: %v", i+1, err)
		}
		leaf, err := transparency.ParseLeaf(a.Proof.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		wantDecision := strings.TrimSpace(c.status + " " + c.reason)
		if leaf.VoteID != id || leaf.Decision != wantDecision {
			t.Errorf("ballot %d: leaf says %s %q, want %s %q", i+1, leaf.VoteID, leaf.Decision, id, wantDecision)
		}

		// Everything the answer offers as a salt.
		salts := [][]byte{nil, []byte(id), []byte(leaf.Event), []byte(a.Proof.Root), root[:], []byte(*a.Checkpoint), []byte(a.Raw)}
		if ev, err := hex.DecodeString(leaf.Event); err == nil {
			salts = append(salts, ev)
		}
		for _, h := range hashes {
			salts = append(salts, h[:], []byte(h.String()))
		}
		var guesses, matches int
		for contest, cands := range contests {
			for _, cand := range cands {
				tries := []string{
					sha(cand), sha(contest + "\x00" + cand), sha(contest + "\x00" + cand + "\x00" + id),
					sha(contest + "\x00" + cand + "\x00"), sha("votewatch choice v1\x00" + contest + "\x00" + cand + "\x00"),
				}
				for _, s := range salts {
					tries = append(tries, sha(contest+"\x00"+cand+"\x00"+string(s)), sha(cand+string(s)), sha(string(s)+cand),
						sha("votewatch choice v1\x00"+contest+"\x00"+cand+"\x00"+string(s)),
						transparency.Secret(s).Commit(id, contest, cand))
				}
				for _, try := range tries {
					guesses++
					if try == leaf.Choice {
						t.Errorf("ballot %d: the guess %s/%s matches the leaf's choice without the secret", i+1, contest, cand)
					}
				}
				if proofSecret.Commit(id, contest, cand) == leaf.Choice {
					matches++
					if contest != c.contest || cand != c.candidate {
						t.Errorf("ballot %d: the secret matches %s/%s, the vote was %s/%s", i+1, contest, cand, c.contest, c.candidate)
					}
				}
			}
		}
		if matches != 1 || guesses < 100 {
			t.Errorf("ballot %d: the secret matches %d candidates (want exactly 1) after %d guesses", i+1, matches, guesses)
		}
	}
	if proved != 9 {
		t.Errorf("%d ballots proved, want 9", proved)
	}
	if a := getBallot(t, srv, "00000000-0000-4000-8000-000000000099"); a.Code != http.StatusNotFound {
		t.Errorf("a vote_id never seen: %d %s, want 404", a.Code, a.Raw)
	}

	// Two counted votes in one contest, for different candidates, answer
	// alike but for where their leaves are.
	shape := func(n int) string {
		a := getBallot(t, srv, fmt.Sprintf("00000000-0000-4000-8000-%012d", n))
		leaf, _ := transparency.ParseLeaf(a.Proof.Leaf)
		return fmt.Sprintf("%s %s %v %d %s %d", a.Status, a.Reason, *a.Checkpoint == latest, a.Proof.TreeSize, leaf.Decision, len(leaf.Choice))
	}
	if a, b := shape(1), shape(2); a != b {
		t.Errorf("votes for p-ada and p-bob answer differently: %q vs %q", a, b)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
