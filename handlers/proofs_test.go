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

	"filippo.io/torchwood"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/trees"
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
	results, err := read.NewResults(pool)
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
	tree, err := trees.NewTree(e.pool, proofSecret, read)
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := trees.NewCheckpointer(trees.CheckpointerConfig{Tree: tree, Key: key, Origin: "votewatch/test",
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

// The checkpoint routes serve the latest note byte for byte (as
// /log/checkpoint, c2sp.org/tlog-tiles, and its alias /api/v1/checkpoint)
// and the log's verifier key; 404 before the first. The archive
// /api/v1/checkpoints is retired (410). torchwood's tiles client reads
// every entry back through /log/tile/ against the checkpoint's root.
func TestCheckpointRoutesServeTheNoteAsSignedAndTheTiles(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	srv := e.readerAPI()
	for _, path := range []string{"/log/checkpoint", "/api/v1/checkpoint", "/api/v1/checkpoint/key", "/log/tile/entries/000.p/1"} {
		code, _, raw := getText(t, srv.URL+path)
		if code != http.StatusNotFound || !strings.Contains(raw, `"not_found"`) {
			t.Errorf("%s before any checkpoint: %d %s, want a JSON 404", path, code, raw)
		}
	}
	key := newKey(t)
	e.vote("n-1", domain.DefaultContest, "p-ada")
	e.checkpoint(key)
	e.vote("n-2", domain.DefaultContest, "p-bob")
	e.vote("n-3", domain.DefaultContest, "p-bob")
	second := e.checkpoint(key)

	for _, path := range []string{"/log/checkpoint", "/api/v1/checkpoint"} {
		code, ctype, raw := getText(t, srv.URL+path)
		if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || raw != string(second) {
			t.Fatalf("%s: %d %q\n%s\nwant the second note as signed:\n%s", path, code, ctype, raw, second)
		}
	}
	code, ctype, vkey := getText(t, srv.URL+"/api/v1/checkpoint/key")
	if code != http.StatusOK || ctype != "text/plain; charset=utf-8" || strings.TrimSpace(vkey) != key.Verifier {
		t.Fatalf("key: %d %q %q, want %q", code, ctype, vkey, key.Verifier)
	}
	cp, err := transparency.Open(second, vkey)
	if err != nil {
		t.Fatalf("the served note does not open with the served key: %v", err)
	}
	if code, _, raw := fetch(t, http.MethodGet, srv.URL+"/api/v1/checkpoints"); code != http.StatusGone {
		t.Errorf("the retired archive: %d %s, want 410", code, raw)
	}

	fetcher, err := torchwood.NewTileFetcher(srv.URL + "/log/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := torchwood.NewClient(fetcher)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for i, entry := range client.Entries(context.Background(), cp.Head(), 0) {
		if i != n {
			t.Fatalf("entry %d after %d", i, n)
		}
		if _, err := transparency.ParseLeaf(string(entry)); err != nil {
			t.Errorf("entry %d is not a leaf: %v", i, err)
		}
		n++
	}
	if err := client.Err(); err != nil || n != cp.Size {
		t.Fatalf("read %d of %d entries through the tiles: %v", n, cp.Size, err)
	}
	// The contract's router cannot match a tile index holding a slash
	// (openapi_test.go, tileDocs): a plain client.
	resp, err := http.Get(srv.URL + fmt.Sprintf("/log/tile/0/000.p/%d", cp.Size))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=5") {
		t.Errorf("a partial tile: %d %q, want 200 and a short cache", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	for _, path := range []string{fmt.Sprintf("/log/tile/0/000.p/%d", cp.Size+1), "/log/tile/0/000", "/log/tile/entries/001", "/log/tile/x"} {
		if code, _, raw := getText(t, srv.URL+path); code != http.StatusNotFound {
			t.Errorf("%s beyond the tree: %d %s, want 404", path, code, raw)
		}
	}
}

// newKey makes a checkpoint signing key in a temporary directory.
func newKey(t *testing.T) transparency.Key {
	t.Helper()
	key, err := transparency.CreateKey(t.TempDir()+"/key", "votewatch-test")
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
		root, err := tlog.ParseHash(a.Proof.Root)
		if err != nil || root != cp.Root || a.Proof.TreeSize != cp.Size {
			t.Errorf("ballot %d: proof against %d/%s, the checkpoint says %d/%s", i+1, a.Proof.TreeSize, a.Proof.Root, cp.Size, cp.Root)
		}
		var hashes tlog.RecordProof
		for _, h := range a.Proof.Hashes {
			x, err := tlog.ParseHash(h)
			if err != nil {
				t.Fatal(err)
			}
			hashes = append(hashes, x)
		}
		if err := tlog.CheckRecord(hashes, cp.Size, cp.Root, a.Proof.LeafIndex, tlog.RecordHash([]byte(a.Proof.Leaf))); err != nil {
			t.Errorf("ballot %d: the proof does not verify against the signed checkpoint: %v", i+1, err)
		}
		leaf, err := transparency.ParseLeaf(a.Proof.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		wantDecision := strings.TrimSpace(c.status + " " + c.reason)
		if leaf.Vote != transparency.VoteRef(id) || leaf.Decision != wantDecision {
			t.Errorf("ballot %d: leaf says %s %q, want %s %q", i+1, leaf.Vote, leaf.Decision, transparency.VoteRef(id), wantDecision)
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

// Past 256 leaves the first tiles are full: immutable, cacheable forever,
// and read back with the partial ones by torchwood's tiles client against
// the checkpoint's root.
func TestFullTilesAreCacheableForeverAndReadBack(t *testing.T) {
	t.Parallel()
	e := newContestElection(t)
	srv := e.readerAPI()
	key := newKey(t)
	// One counted vote, then its voter again and again: every copy is a
	// leaf (rejected duplicate_voter).
	for range 300 {
		e.vote("n-1", domain.DefaultContest, "p-ada")
	}
	signed := e.checkpoint(key)
	cp, err := transparency.Open(signed, key.Verifier)
	if err != nil || cp.Size != 300 {
		t.Fatalf("checkpoint of %d leaves: %v", cp.Size, err)
	}
	for _, path := range []string{"/log/tile/0/000", "/log/tile/entries/000"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		if path == "/log/tile/0/000" && len(body) != 256*32 {
			t.Errorf("a full hash tile of %d bytes, want %d", len(body), 256*32)
		}
	}
	fetcher, err := torchwood.NewTileFetcher(srv.URL + "/log/")
	if err != nil {
		t.Fatal(err)
	}
	client, err := torchwood.NewClient(fetcher)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	err = transparency.ReadEntries(context.Background(), client, cp.Head(), func(int64, []byte) error { n++; return nil })
	if err != nil || n != 300 {
		t.Fatalf("read %d of 300 entries: %v", n, err)
	}
}
