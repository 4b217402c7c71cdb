package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
)

func mustTallyKey(t testing.TB) domain.TallyPrivateKey {
	t.Helper()
	k, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustVote(t testing.TB, id, voter, candidate string) domain.Vote {
	t.Helper()
	v, err := domain.NewVote(id, voter, candidate, time.Date(2026, 11, 3, 14, 5, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sealPayload(t testing.TB, s *domain.Sealer, v domain.Vote) []byte {
	t.Helper()
	sv, err := s.Seal(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(domain.VoteCast{Vote: sv})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealedVoteOpensToItsChoiceAndHoldsNoClearChoice(t *testing.T) {
	key := mustTallyKey(t)
	s, err := domain.NewSealer(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-alice").InContest("mayor")
	if err != nil {
		t.Fatal(err)
	}
	payload := sealPayload(t, s, v)
	if bytes.Contains(payload, []byte("c-alice")) || bytes.Contains(payload, []byte("candidate_id")) {
		t.Fatalf("sealed payload holds the choice: %s", payload)
	}
	// A consumer without the key decodes it, sealed: no choice.
	plain, err := domain.DecodeVoteCast(payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Vote.Sealed(); !ok || plain.Vote.CandidateID() != "" {
		t.Fatalf("decoded without a key: sealed %v, candidate %q", ok, plain.Vote.CandidateID())
	}
	got, err := domain.NewOpener(&key, true).DecodeVoteCast(payload)
	if err != nil {
		t.Fatal(err)
	}
	if got.Vote.CandidateID() != "c-alice" || got.Vote.ContestID() != "mayor" || got.Vote.VoterID() != "v-1" {
		t.Fatalf("opened %+v", got.Vote)
	}
	if _, ok := got.Vote.Sealed(); ok {
		t.Fatal("an opened vote is still sealed")
	}
}

func TestSealedChoiceLengthDoesNotDependOnTheCandidate(t *testing.T) {
	key := mustTallyKey(t)
	s, err := domain.NewSealer(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	short := sealPayload(t, s, mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c"))
	long := sealPayload(t, s, mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6c", "v-1", strings.Repeat("c", 64)))
	if len(short) != len(long) {
		t.Fatalf("payload lengths %d and %d differ with the candidate", len(short), len(long))
	}
}

func TestOneEncapsulationPerBatch(t *testing.T) {
	key := mustTallyKey(t)
	s, err := domain.NewSealer(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Seal(mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a"))
	b, _ := s.Seal(mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6c", "v-2", "c-a"))
	sa, _ := a.Sealed()
	sb, _ := b.Sealed()
	if !bytes.Equal(sa.Enc, sb.Enc) {
		t.Fatal("two votes of one batch have different encapsulations")
	}
	if bytes.Equal(sa.Nonce, sb.Nonce) || bytes.Equal(sa.Ciphertext, sb.Ciphertext) {
		t.Fatal("two votes for the same candidate share a nonce or ciphertext")
	}
}

func TestSealedChoiceMovedToAnotherVoteDoesNotOpen(t *testing.T) {
	key := mustTallyKey(t)
	s, err := domain.NewSealer(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	payload := sealPayload(t, s, mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a"))
	for name, edit := range map[string][2]string{
		"another vote_id": {"0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6c"},
		"another voter":   {`"voter_id":"v-1"`, `"voter_id":"v-2"`},
		"another contest": {`"cast_at"`, `"contest_id":"other","cast_at"`},
	} {
		t.Run(name, func(t *testing.T) {
			moved := bytes.Replace(payload, []byte(edit[0]), []byte(edit[1]), 1)
			_, err := domain.NewOpener(&key, false).DecodeVoteCast(moved)
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestOpenerWithoutTheKeyStopsInsteadOfDeadLettering(t *testing.T) {
	key, other := mustTallyKey(t), mustTallyKey(t)
	s, err := domain.NewSealer(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	payload := sealPayload(t, s, mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a"))
	for name, o := range map[string]*domain.Opener{"nil opener": nil, "no key": domain.NewOpener(nil, false), "another key": domain.NewOpener(&other, false)} {
		_, err := o.DecodeVoteCast(payload)
		if !errors.Is(err, domain.ErrTallyKey) || errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrTallyKey and not ErrInvalid", name, err)
		}
	}
}

func TestRequireSealedRefusesClearVotes(t *testing.T) {
	key := mustTallyKey(t)
	if _, err := domain.NewOpener(&key, false).DecodeVoteCast([]byte(goodVote)); err != nil {
		t.Fatalf("a clear v1 vote without --require-sealed: %v", err)
	}
	_, err := domain.NewOpener(&key, true).DecodeVoteCast([]byte(goodVote))
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Field != "candidate_id" {
		t.Fatalf("err = %v, want a candidate_id validation error (a dead letter)", err)
	}
}

func TestSealedVoteWithACandidateIDIsInvalid(t *testing.T) {
	key := mustTallyKey(t)
	s, _ := domain.NewSealer(key.Public())
	payload := sealPayload(t, s, mustVote(t, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a"))
	both := bytes.Replace(payload, []byte(`"cast_at"`), []byte(`"candidate_id":"c-b","cast_at"`), 1)
	if _, err := domain.DecodeVoteCast(both); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestTallyKeyTextRoundTrips(t *testing.T) {
	key := mustTallyKey(t)
	text, err := key.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	back, err := domain.ParseTallyPrivateKey(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if back.Public().ID() != key.Public().ID() {
		t.Fatal("the private key's text does not round-trip")
	}
	pub, err := domain.ParseTallyPublicKey(key.Public().String())
	if err != nil || pub.ID() != key.Public().ID() {
		t.Fatalf("public key: %v, id %s", err, pub.ID())
	}
	if _, err := domain.ParseTallyPrivateKey("nonsense"); !errors.Is(err, domain.ErrInvalid) || strings.Contains(err.Error(), "nonsense") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkOpenSealedVote(b *testing.B) {
	key := mustTallyKey(b)
	s, _ := domain.NewSealer(key.Public())
	payload := sealPayload(b, s, mustVote(b, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a"))
	o := domain.NewOpener(&key, true)
	for b.Loop() {
		if _, err := o.DecodeVoteCast(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClearVote(b *testing.B) {
	for b.Loop() {
		if _, err := domain.DecodeVoteCast([]byte(goodVote)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealBatch is the intake's cost per request of 1,000 votes: one
// encapsulation and 1,000 seals.
func BenchmarkSealBatch(b *testing.B) {
	key := mustTallyKey(b)
	votes := make([]domain.Vote, 1000)
	for i := range votes {
		votes[i] = mustVote(b, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a")
	}
	for b.Loop() {
		s, err := domain.NewSealer(key.Public())
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range votes {
			if _, err := s.Seal(v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkOpenFreshBatch is opening the first vote of a batch: one
// decapsulation (then cached for the rest of the batch).
func BenchmarkOpenFreshBatch(b *testing.B) {
	key := mustTallyKey(b)
	v := mustVote(b, "0190d5f2-7c1e-7b3a-9f00-1c2d3e4f5a6b", "v-1", "c-a")
	for b.Loop() {
		b.StopTimer()
		s, _ := domain.NewSealer(key.Public())
		payload := sealPayload(b, s, v)
		o := domain.NewOpener(&key, false)
		b.StartTimer()
		if _, err := o.DecodeVoteCast(payload); err != nil {
			b.Fatal(err)
		}
	}
}
