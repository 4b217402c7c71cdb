package outbox_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
)

var secrecyCastAt = time.Date(2026, 11, 3, 15, 4, 5, 0, time.UTC)

// regionRoll is what an attacker is assumed to know: the region's voter
// list and the candidates, and (generously) when the votes were cast.
func regionRoll() (voters, candidates []string) {
	for i := range 25 {
		voters = append(voters, fmt.Sprintf("voter-%05d", i))
	}
	return voters, []string{"c-ada", "c-bob", "c-cy"}
}

func secretVote(t *testing.T, i int, voter, candidate string) domain.VoteCast {
	t.Helper()
	v, err := domain.NewVote(fmt.Sprintf("01900000-0000-7000-8000-%012d", i+1), voter, candidate, secrecyCastAt)
	if err != nil {
		t.Fatal(err)
	}
	st, err := domain.NewStation("north-1", mustRegion(t, "CA"))
	if err != nil {
		t.Fatal(err)
	}
	return domain.VoteCast{Vote: v.WithStation(st)}
}

func mustRegion(t *testing.T, name string) domain.Region {
	t.Helper()
	r, err := domain.NewRegion(name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestIntakeTablesDoNotGiveAwayTheChoice is the review's attack on the
// intake's tables, as any login that may read them (or a backup): for
// every row, try each voter of the region and each candidate, hash the
// vote as the intake would publish it, and compare with every bytea value
// stored; and look for a clear candidate_id in the outbox. It recovered
// 25 of 25 votes from an unsalted digest.
func TestIntakeTablesDoNotGiveAwayTheChoice(t *testing.T) {
	r := newRig(t, kafka.Config{})
	ctx := context.Background()
	voters, candidates := regionRoll()
	var votes []domain.VoteCast
	for i, voter := range voters {
		votes = append(votes, secretVote(t, i, voter, candidates[i%len(candidates)]))
	}
	if _, err := r.box.Accept(ctx, "north-1", votes); err != nil {
		t.Fatal(err)
	}

	rows, err := r.pool.Query(ctx, "SELECT * FROM intake.votes")
	if err != nil {
		t.Fatal(err)
	}
	recovered := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		var stored [][]byte
		voteID := ""
		for _, v := range vals {
			switch x := v.(type) {
			case []byte:
				stored = append(stored, x)
			case [16]byte:
				voteID = fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
			}
		}
		found := false
		for i, voter := range voters {
			for _, c := range candidates {
				guess := secretVote(t, i, voter, c)
				if guess.Vote.ID() != voteID {
					continue
				}
				b, _ := json.Marshal(guess)
				sum := sha256.Sum256(b)
				for _, s := range stored {
					if bytes.Equal(s, sum[:]) {
						found = true
					}
				}
			}
		}
		if found {
			recovered++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if recovered > 0 {
		t.Errorf("recovered %d of %d votes' choices from intake.votes with the voter list", recovered, len(votes))
	}
	for _, payload := range r.column(t, `SELECT convert_from(decode(payload->>'payload', 'base64'), 'UTF8') FROM intake.outbox`) {
		for _, c := range candidates {
			if bytes.Contains([]byte(payload), []byte(c)) {
				t.Fatalf("the outbox holds a clear choice: %s", payload)
			}
		}
	}
}

// TestReusedVoteIDAnswersTheSameWhateverTheChoice is the station's
// oracle: re-posting a receipt's vote_id with a guessed choice must get
// the same answer whether the guess is right or wrong.
func TestReusedVoteIDAnswersTheSameWhateverTheChoice(t *testing.T) {
	r := newRig(t, kafka.Config{})
	ctx := context.Background()
	if _, err := r.box.Accept(ctx, "north-1", []domain.VoteCast{secretVote(t, 0, "voter-00000", "c-bob")}); err != nil {
		t.Fatal(err)
	}
	answer := func(candidate string) string {
		n, err := r.box.Accept(ctx, "north-1", []domain.VoteCast{secretVote(t, 0, "voter-00000", candidate)})
		return fmt.Sprintf("new %d, reused %v, err %v", n, errors.Is(err, domain.ErrVoteIDReused), err != nil)
	}
	right := answer("c-bob")
	for _, guess := range []string{"c-ada", "c-cy"} {
		if got := answer(guess); got != right {
			t.Errorf("a guess of %s answers %q, the right choice %q: the intake is an oracle", guess, got, right)
		}
	}
	// What the station does know stays checked: another voter on the
	// same vote_id is a conflict.
	if _, err := r.box.Accept(ctx, "north-1", []domain.VoteCast{secretVote(t, 0, "voter-00001", "c-bob")}); !errors.Is(err, domain.ErrVoteIDReused) {
		t.Errorf("another voter on a used vote_id: err = %v, want ErrVoteIDReused", err)
	}
}
