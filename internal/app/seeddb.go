package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/postgres"
)

// SeedRoll is a realtime_voting database's election, validated and
// translated into votewatch's registrations.
type SeedRoll struct {
	Candidates []domain.CandidateRegistered
	Voters     []domain.VoterRegistered
}

// ReadSeedRoll reads the realtime_voting database at dsn and validates
// every row before anything is published, as the CSV import does: every
// problem is listed to out, one per line, and any problem publishes
// nothing. A voter row without registered_date registers at now.
func ReadSeedRoll(ctx context.Context, dsn string, now time.Time, out io.Writer) (SeedRoll, error) {
	db, err := postgres.ReadSeedDB(ctx, dsn)
	if err != nil {
		return SeedRoll{}, err
	}
	var roll SeedRoll
	var problems []error
	for _, c := range db.Candidates {
		ev, err := domain.RealtimeVotingCandidate(c.CandidateID, c.CandidateName, c.PartyAffiliation, c.Biography, c.CampaignPlatform, c.PhotoURL)
		if err != nil {
			problems = append(problems, fmt.Errorf("candidates row %q: %w", c.CandidateID, err))
			continue
		}
		roll.Candidates = append(roll.Candidates, ev)
	}
	for _, v := range db.Voters {
		ev, err := seedVoter(v, now)
		if err != nil {
			problems = append(problems, fmt.Errorf("voters row %q: %w", v.VoterID, err))
			continue
		}
		roll.Voters = append(roll.Voters, ev)
	}
	if len(problems) > 0 {
		fmt.Fprintln(out, errors.Join(problems...))
		return SeedRoll{}, errors.New("the realtime_voting database has rows votewatch cannot register (listed above); nothing was published")
	}
	if len(roll.Candidates) == 0 {
		return SeedRoll{}, errors.New("the realtime_voting database has no candidates: run its main.py first")
	}
	voters := "no voters table"
	if db.HasVoters {
		voters = fmt.Sprintf("%d voters", len(roll.Voters))
	}
	fmt.Fprintf(out, "valid: %d candidates, %s\n", len(roll.Candidates), voters)
	return roll, nil
}

func seedVoter(v postgres.SeedVoter, now time.Time) (domain.VoterRegistered, error) {
	birth, err := domain.ParseRealtimeVotingBirthDate(v.DateOfBirth)
	if err != nil {
		return domain.VoterRegistered{}, err
	}
	registered := now
	if v.RegisteredDate != nil {
		registered = *v.RegisteredDate
	}
	return domain.RealtimeVotingVoter(v.VoterID, v.VoterName, v.Gender, birth, v.AddressState, v.AddressCity, registered)
}

// PublishSeedRoll publishes what of roll the log does not hold yet: a
// candidate not registered, or registered differently (the latest
// registration of a candidate wins), and a voter not registered (the
// first registration of a voter wins, so publishing one again would change
// nothing). Running it again therefore publishes nothing. It records the
// operator action, whatever it published.
func PublishSeedRoll(ctx context.Context, log *slog.Logger, pub *kafka.Publisher, kcfg kafka.Config, klog *kafka.Log, roll SeedRoll, out io.Writer) error {
	onLog, err := registeredOnLog(ctx, kcfg, klog)
	if err != nil {
		return err
	}
	var candidates []domain.CandidateRegistered
	for _, c := range roll.Candidates {
		body, err := c.MarshalJSON()
		if err != nil {
			return err
		}
		if prev, ok := onLog.candidates[c.Key()]; !ok || !bytes.Equal(prev, body) {
			candidates = append(candidates, c)
		}
	}
	var voters []domain.VoterRegistered
	for _, v := range roll.Voters {
		if !onLog.voters[v.Key()] {
			voters = append(voters, v)
		}
	}
	if err := PublishEvents(ctx, log, out, pub, domain.TopicCandidates, candidates); err != nil {
		return err
	}
	if err := PublishEvents(ctx, log, out, pub, domain.TopicVoters, voters); err != nil {
		return err
	}
	detail := fmt.Sprintf("from a realtime_voting database: %d candidates and %d voters published, %d and %d already on the log",
		len(candidates), len(voters), len(roll.Candidates)-len(candidates), len(roll.Voters)-len(voters))
	if err := kafka.RecordAction(pub, domain.ActionImportSeedDB, detail, "ok"); err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d candidates and %d voters (%d candidates and %d voters already on the log)\n",
		len(candidates), len(voters), len(roll.Candidates)-len(candidates), len(roll.Voters)-len(voters))
	return nil
}

// onLog is what the registration topics hold: each candidate's latest
// registration as the log carries it, and the voters registered.
type onLog struct {
	candidates map[string][]byte
	voters     map[string]bool
}

// registeredOnLog reads the candidates and voters topics to their ends.
// Messages that do not decode are skipped: they registered nobody.
func registeredOnLog(ctx context.Context, kcfg kafka.Config, klog *kafka.Log) (onLog, error) {
	seen := onLog{candidates: map[string][]byte{}, voters: map[string]bool{}}
	for _, topic := range []string{domain.TopicCandidates, domain.TopicVoters} {
		ends, err := klog.HighWatermarks(ctx, topic)
		if err != nil {
			return onLog{}, err
		}
		err = kafka.ReadRange(ctx, kcfg, topic, map[int32]int64{}, ends, func(records []kafka.Record) error {
			for _, r := range records {
				switch ev := decodeQuietly(topic, r.Value).(type) {
				case domain.CandidateRegistered:
					body, err := ev.MarshalJSON()
					if err != nil {
						return err
					}
					seen.candidates[ev.Key()] = body
				case domain.VoterRegistered:
					seen.voters[ev.Key()] = true
				}
			}
			return nil
		})
		if err != nil {
			return onLog{}, fmt.Errorf("read the %s topic: %w", topic, err)
		}
	}
	return seen, nil
}

func decodeQuietly(topic string, payload []byte) any {
	ev, err := domain.Decode(topic, payload)
	if err != nil {
		return nil
	}
	return ev
}
