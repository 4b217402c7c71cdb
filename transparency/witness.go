package transparency

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witness is one witness the log asks for cosignatures
// (c2sp.org/tlog-witness): its add-checkpoint URL's base and its
// cosignature verifier key.
type Witness struct {
	// URL is the witness's prefix: add-checkpoint is POSTed to
	// URL + "/add-checkpoint".
	URL string
	// Key is the witness's verifier key (c2sp.org/tlog-cosignature).
	Key      string
	verifier note.Verifier
}

// ParseWitness reads a --witness flag, "URL=VKEY".
func ParseWitness(s string) (Witness, error) {
	u, k, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(u, "http") {
		return Witness{}, fmt.Errorf("witness %q: want URL=VKEY", s)
	}
	v, err := NewWitnessVerifier(k)
	if err != nil {
		return Witness{}, err
	}
	return Witness{URL: strings.TrimSuffix(u, "/"), Key: k, verifier: v}, nil
}

// Name is the witness's key name, as its cosignature lines carry it.
func (w Witness) Name() string { return w.verifier.Name() }

// ErrConflict is returned by AddCheckpoint when the witness knows another
// size of the log than the request assumed; Size is the witness's.
type ErrConflict struct{ Size int64 }

func (e *ErrConflict) Error() string {
	return fmt.Sprintf("the witness knows the log at size %d", e.Size)
}

// ErrRefused is returned when a witness refuses a checkpoint for good: a
// bad signature, an unknown log, or a consistency proof that does not
// verify (a fork).
var ErrRefused = errors.New("the witness refused the checkpoint")

// AddCheckpoint sends the signed checkpoint to the witness with a
// consistency proof from old (the size the witness is believed to know)
// and returns the witness's cosignature line, checked. prove gives the
// proof from an older size to the checkpoint's.
func (w Witness) AddCheckpoint(ctx context.Context, hc *http.Client, signed []byte, old int64, proof tlog.TreeProof) (string, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	for _, h := range proof {
		fmt.Fprintf(&body, "%s\n", h)
	}
	body.WriteString("\n")
	body.Write(signed)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/add-checkpoint", &body)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("witness %s: %w", w.Name(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("witness %s: %w", w.Name(), err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusConflict:
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n < 0 {
			return "", fmt.Errorf("witness %s: 409 with %q, not a size", w.Name(), b)
		}
		return "", &ErrConflict{Size: n}
	case http.StatusForbidden, http.StatusUnprocessableEntity, http.StatusBadRequest:
		return "", fmt.Errorf("%w: witness %s: %s: %s", ErrRefused, w.Name(), resp.Status, strings.TrimSpace(string(b)))
	default:
		return "", fmt.Errorf("witness %s: %s: %s", w.Name(), resp.Status, strings.TrimSpace(string(b)))
	}
	// The answer is signature lines; keep the one of the witness's key
	// and check it.
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if !strings.HasPrefix(line, "— "+w.Name()+" ") || !strings.HasSuffix(line, "\n") {
			continue
		}
		n, err := note.Open(append(bytes.Clone(signed), line...), note.VerifierList(w.verifier))
		if err != nil || len(n.Sigs) != 1 {
			return "", fmt.Errorf("witness %s: its cosignature does not verify: %v", w.Name(), err)
		}
		return line, nil
	}
	return "", fmt.Errorf("witness %s: no cosignature by its key in %q", w.Name(), b)
}

// Backoff is how long to wait before asking a witness again after n
// failures in a row: doubling from one second, at most a minute.
func Backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return min(time.Second<<min(n-1, 6), time.Minute)
}
