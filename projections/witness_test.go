package projections_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/votewatch/votewatch/projections/trees"
	"github.com/votewatch/votewatch/transparency"
)

// A witness that knows the log at another size answers 409 with it; the
// checkpointer asks again with a consistency proof from that size, and
// records the checkpoint once the witness cosigned. A witness that keeps
// failing holds the checkpoint back (quorum 1): nothing is recorded.
func TestTheCheckpointerAsksAgainFromTheSizeAWitnessKnows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	key := testKey(t, "votewatch-test")
	log, pool, _, _ := checkpointed(t, key)
	if _, err := pool.Exec(ctx, "DELETE FROM log_checkpoints"); err != nil {
		t.Fatal(err)
	}
	tree, err := trees.NewTree(pool, testSecret, trees.VotesReader(memLog{log}))
	if err != nil {
		t.Fatal(err)
	}
	head, err := tree.Head(ctx)
	if err != nil || head.N < 2 {
		t.Fatalf("head %+v, %v", head, err)
	}
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := torchwood.NewCosignatureSigner("witness.test/w", priv)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var olds []string
	known := head.N - 1 // the witness saw a smaller tree before
	down := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		first, rest, _ := strings.Cut(string(body), "\n")
		olds = append(olds, first)
		if down {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		if first != fmt.Sprintf("old %d", known) {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprintf(w, "%d\n", known)
			return
		}
		_, signed, _ := strings.Cut(rest, "\n\n")
		text, _, _ := strings.Cut(signed, "\n\n")
		n, err := note.Sign(&note.Note{Text: text + "\n"}, signer)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, sigs, _ := bytes.Cut(n, []byte("\n\n"))
		_, _ = w.Write(sigs)
	}))
	t.Cleanup(srv.Close)
	witness, err := transparency.ParseWitness(srv.URL + "=" + signer.Verifier().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := trees.NewCheckpointer(trees.CheckpointerConfig{Tree: tree, Key: key, Origin: "votewatch/test",
		Witnesses: []transparency.Witness{witness}, Quorum: 1,
		Publish: func(context.Context, []byte) error { return nil }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	served, err := c.Checkpoint(ctx)
	if err != nil || served == nil {
		t.Fatalf("checkpoint: %q, %v (requests %q)", served, err, olds)
	}
	if want := []string{"old 0", fmt.Sprintf("old %d", known)}; strings.Join(olds, ",") != strings.Join(want, ",") {
		t.Errorf("requests %q, want %q", olds, want)
	}
	if _, names, err := transparency.OpenWitnessed(served, key.Verifier, []string{signer.Verifier().String()}, 1); err != nil || len(names) != 1 {
		t.Errorf("the recorded checkpoint: %v, %v", names, err)
	}
	if got := c.Stats().WitnessRequests; got[[2]string{"witness.test/w", "conflict"}] != 1 || got[[2]string{"witness.test/w", "ok"}] != 1 {
		t.Errorf("witness requests %v", got)
	}
	// The tree grows no more, so nothing new: no request either.
	if again, err := c.Checkpoint(ctx); err != nil || again != nil {
		t.Errorf("nothing new: %q, %v", again, err)
	}

	// The witness goes down: a new tree (the recorded checkpoint removed,
	// as if older) is signed and held back, and the stats say since when.
	mu.Lock()
	down = true
	mu.Unlock()
	if _, err := pool.Exec(ctx, "DELETE FROM log_cosignatures; DELETE FROM log_checkpoints"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Checkpoint(ctx); err != nil || got != nil {
		t.Errorf("without the witness: %q, %v; want nothing recorded", got, err)
	}
	var recorded int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM log_checkpoints").Scan(&recorded); err != nil || recorded != 0 {
		t.Errorf("%d checkpoints recorded without the quorum (%v)", recorded, err)
	}
	if c.Stats().PendingSince.IsZero() {
		t.Error("a checkpoint waits for its quorum and the stats do not say since when")
	}
}
