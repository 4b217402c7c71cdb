package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/votewatch/votewatch/transparency"
)

// BallotQuery asks the read API at API what became of the vote VoteID;
// with VerifyProof it checks the answer's inclusion proof against its
// signed checkpoint, with VerifierKey (the key's text or a file holding
// it) when given, and the checkpoint's cosignatures by Quorum of
// Witnesses (their verifier keys). It keeps the newest checkpoint it has
// seen in StateDir and proves, from the log's tiles, that every
// checkpoint it is shown is consistent with it.
type BallotQuery struct {
	API, VoteID, VerifierKey string
	VerifyProof              bool
	StateDir                 string
	Witnesses                []string
	Quorum                   int
}

// Ballot asks and says so on out.
func Ballot(ctx context.Context, c BallotQuery, log *slog.Logger, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.API, "/")+"/api/v1/ballots/"+url.PathEscape(c.VoteID), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask %s: %w", c.API, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status     string                       `json:"status"`
		Reason     string                       `json:"reason"`
		Checkpoint string                       `json:"checkpoint"`
		Proof      *transparency.InclusionProof `json:"proof"`
		Error      *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if body.Error != nil {
			msg = body.Error.Message
		}
		return fmt.Errorf("ballot %s: %s", c.VoteID, msg)
	}
	line := "ballot " + c.VoteID + ": " + body.Status
	if body.Reason != "" {
		line += " (" + body.Reason + ")"
	}
	fmt.Fprintln(out, line)
	if c.VerifyProof {
		return c.verifyProof(ctx, log, out, body.Status, body.Reason, body.Checkpoint, body.Proof)
	}
	return nil
}

// verifyProof checks the ballot's inclusion proof against the checkpoint
// the API answered with, and says what it proves. The checkpoint's
// signature is checked with the pinned key when given: a key fetched from
// the same API only shows that the API agrees with itself.
func (c BallotQuery) verifyProof(ctx context.Context, log *slog.Logger, out io.Writer, status, reason, checkpoint string, proof *transparency.InclusionProof) error {
	if proof == nil || checkpoint == "" {
		return fmt.Errorf("ballot %s: no proof yet: its leaf is not in the latest signed checkpoint (decided since it, or behind a pending vote in its partition, or pending itself); try again later", c.VoteID)
	}
	vkey, err := c.verifierKey(ctx, log)
	if err != nil {
		return err
	}
	cp, cosigners, err := transparency.OpenWitnessed([]byte(checkpoint), vkey, c.Witnesses, c.Quorum)
	if err != nil {
		return fmt.Errorf("ballot %s: %w", c.VoteID, err)
	}
	leaf, err := proof.Check(cp)
	if err != nil {
		return fmt.Errorf("ballot %s: %w", c.VoteID, err)
	}
	seen, err := c.checkSaved(ctx, cp, vkey, []byte(checkpoint))
	if err != nil {
		return fmt.Errorf("ballot %s: %w", c.VoteID, err)
	}
	if leaf.Kind != transparency.KindVote || leaf.Vote != transparency.VoteRef(strings.ToLower(c.VoteID)) {
		return fmt.Errorf("ballot %s: %w: the proven leaf is another vote's (%s)", c.VoteID, transparency.ErrBadProof, leaf.Vote)
	}
	says := strings.TrimSpace(status + " " + reason)
	if leaf.Decision != says {
		return fmt.Errorf("ballot %s: the API says %q, the signed leaf says %q", c.VoteID, says, leaf.Decision)
	}
	name, _, _ := strings.Cut(vkey, "+")
	fmt.Fprintf(out, "proof: your vote's leaf is in the signed tree at size %d (leaf %d)\n", proof.TreeSize, proof.LeafIndex)
	fmt.Fprintf(out, "checkpoint: %s at %s, signed by %s\n", cp.Origin, cp.Time.Format(time.RFC3339), name)
	if len(cosigners) > 0 {
		fmt.Fprintf(out, "cosigned by: %s\n", strings.Join(cosigners, ", "))
	}
	if seen != "" {
		fmt.Fprintln(out, seen)
	}
	fmt.Fprintf(out, "the leaf says: %s\n", leaf.Decision)
	return nil
}

// checkSaved proves cp consistent with the checkpoint saved in the state
// dir (from the log's tiles) and saves cp when it is newer. It says what
// it proved.
func (c BallotQuery) checkSaved(ctx context.Context, cp transparency.Checkpoint, vkey string, signed []byte) (string, error) {
	if c.StateDir == "" {
		return "", nil
	}
	path := transparency.StateFile(c.StateDir, cp.Origin)
	saved, ok, err := transparency.SavedCheckpoint(path, vkey)
	if err != nil {
		return "", err
	}
	msg := "saved: the first checkpoint seen of " + cp.Origin + ", kept in " + path
	if ok {
		tr, err := transparency.TileReader(strings.TrimRight(c.API, "/")+"/log/", nil)
		if err != nil {
			return "", err
		}
		// The API serves tiles up to its newest checkpoint only: one
		// smaller than it served before is a rollback of the log.
		if err := transparency.CheckExtends(ctx, tr, saved.Head(), cp.Head()); err != nil {
			return "", fmt.Errorf("the checkpoint of %d leaves against the one saved earlier of %d (%s): %w", cp.Size, saved.Size, path, err)
		}
		msg = fmt.Sprintf("consistent: the tree extends the checkpoint of %d leaves saved earlier", saved.Size)
		if saved.Size == cp.Size {
			return "consistent: the same tree as the checkpoint saved earlier", nil
		}
	}
	if err := transparency.SaveCheckpoint(path, signed); err != nil {
		return "", err
	}
	return msg, nil
}

// verifierKey is --verifier-key (the key's text, or a file holding it),
// or else the API's GET /api/v1/checkpoint/key.
func (c BallotQuery) verifierKey(ctx context.Context, log *slog.Logger) (string, error) {
	if c.VerifierKey != "" {
		if b, err := os.ReadFile(c.VerifierKey); err == nil {
			return strings.TrimSpace(string(b)), nil
		} else if !errors.Is(err, os.ErrNotExist) || !strings.Contains(c.VerifierKey, "+") {
			return "", fmt.Errorf("--verifier-key: neither a readable file nor a key: %w", err)
		}
		return strings.TrimSpace(c.VerifierKey), nil
	}
	log.Warn("no --verifier-key: checking the checkpoint with the key the same API serves, which proves only that the API agrees with itself; pin the key from another channel")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.API, "/")+"/api/v1/checkpoint/key", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask %s for the verifier key: %w", c.API, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("read the verifier key: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ask %s for the verifier key: %s", c.API, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}
