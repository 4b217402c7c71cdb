package handlers_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
)

// unusedPublisher stands where the bridge's publisher goes: these tests
// call the translations alone (the system test publishes for real).
type unusedPublisher struct{}

func (unusedPublisher) Publish(string, ...*message.Message) error {
	return errors.New("unused publisher: nothing is published here")
}

func (unusedPublisher) Close() error { return nil }

func rtvMessage(payload string, at time.Time, key string) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	msg.SetContext(handlers.ContextWithRecord(context.Background(), 3, 41, at, []byte(key)))
	return msg
}

// A translated vote is votewatch's contract, keyed by voter_id for the
// murmur2 publisher, and keeps its source's log time: the rule checks the
// cast time against it, and a backlog translated a week later must not be
// implausible.
func TestTheBridgeKeysAVoteByVoterAndKeepsItsLogTime(t *testing.T) {
	b, err := handlers.NewRealtimeVoting(slog.New(slog.DiscardHandler), unusedPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	loggedAt := time.Date(2026, 12, 7, 11, 44, 44, 123000000, time.UTC)
	out, err := b.Vote(rtvMessage(`{"voter_id": "v-1", "voter_name": "Ann", "candidate_id": "c-1", "candidate_name": "Richard",
		"voting_time": "2026-12-07 11:44:43", "vote": 1}`, loggedAt, "v-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d messages out, want 1", len(out))
	}
	if got := out[0].Metadata.Get("key"); got != "v-1" {
		t.Errorf("key = %q, want the voter_id", got)
	}
	if got, want := out[0].Metadata.Get("timestamp"), "2026-12-07T11:44:44.123Z"; got != want {
		t.Errorf("timestamp = %q, want the source's log time %q", got, want)
	}
	ev, err := domain.DecodeVoteCast(out[0].Payload)
	if err != nil {
		t.Fatalf("the translation is not a votewatch vote: %v: %s", err, out[0].Payload)
	}
	if ev.Vote.ID() != domain.RealtimeVotingVoteID("v-1", "c-1", time.Date(2026, 12, 7, 11, 44, 43, 0, time.UTC)) {
		t.Errorf("vote_id = %s, not the derived one", ev.Vote.ID())
	}
	if st := b.Stats(); st.Votes != 1 || st.DeadLettered != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// A message of neither shape is poison (the poison queue sends it to
// <topic>.dlq with the error) and keeps its key and log time there.
func TestTheBridgePoisonsAMessageOfNeitherShape(t *testing.T) {
	b, err := handlers.NewRealtimeVoting(slog.New(slog.DiscardHandler), unusedPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	loggedAt := time.Date(2026, 12, 7, 11, 0, 0, 0, time.UTC)
	msg := rtvMessage(`{"vote_id":"0193a1c2-7d4e-7f00-8000-000000000001","voter_id":"v-1","candidate_id":"c-1","cast_at":"2026-11-03T15:04:05Z"}`, loggedAt, "v-1")
	msg.Metadata.Set("timestamp", "not a time") // a source header of that name
	out, err := b.Vote(msg)
	if !errors.Is(err, handlers.ErrPoison) || !errors.Is(err, domain.ErrInvalid) || len(out) != 0 {
		t.Fatalf("Vote = %d messages, %v; want poison", len(out), err)
	}
	if got := msg.Metadata.Get("key"); got != "v-1" {
		t.Errorf("dead letter key = %q", got)
	}
	if got, want := msg.Metadata.Get("timestamp"), "2026-12-07T11:00:00Z"; got != want {
		t.Errorf("dead letter timestamp = %q, want %q", got, want)
	}
	if _, err := b.Voter(rtvMessage(`[1, 2]`, loggedAt, "v-2")); !errors.Is(err, handlers.ErrPoison) {
		t.Errorf("a voter that is no object: %v, want poison", err)
	}
	if st := b.Stats(); st.DeadLettered != 2 {
		t.Errorf("dead-lettered = %d, want 2", st.DeadLettered)
	}
}

// With the election's tally key, the bridge seals each translated vote's
// choice as a station would: votewatch's own log never holds the clear
// choice next to the voter (realtime_voting's votes_topic still does: it
// is theirs), and the tally key opens it to the same vote.
func TestTheBridgeSealsTheChoiceItTranslates(t *testing.T) {
	key, err := domain.GenerateTallyKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := handlers.NewRealtimeVoting(slog.New(slog.DiscardHandler), unusedPublisher{})
	if err != nil {
		t.Fatal(err)
	}
	b.SealTo(key.Public())
	out, err := b.Vote(rtvMessage(`{"voter_id": "v-1", "voter_name": "Ann", "candidate_id": "c-1", "candidate_name": "Richard",
		"voting_time": "2026-12-07 11:44:43", "vote": 1}`, time.Now(), "v-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d messages out, want 1", len(out))
	}
	if strings.Contains(string(out[0].Payload), "c-1") || strings.Contains(string(out[0].Payload), "candidate_id") {
		t.Errorf("the translation names the choice in clear: %s", out[0].Payload)
	}
	ev, err := domain.NewOpener(&key, true).DecodeVoteCast(out[0].Payload)
	if err != nil {
		t.Fatalf("the sealed translation does not open: %v: %s", err, out[0].Payload)
	}
	if ev.Vote.CandidateID() != "c-1" || ev.Vote.VoterID() != "v-1" {
		t.Errorf("opened %s for %s, want c-1 for v-1", ev.Vote.CandidateID(), ev.Vote.VoterID())
	}
}
