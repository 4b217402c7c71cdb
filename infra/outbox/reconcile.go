package outbox

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
)

// VotesLog reads the event log for Reconcile.
type VotesLog interface {
	LowWatermarks(ctx context.Context, topic string) (map[int32]int64, error)
	HighWatermarks(ctx context.Context, topic string) (map[int32]int64, error)
	// ReadRange hands fn, in batches, the records of each partition p of
	// topic from from[p] up to, not including, to[p].
	ReadRange(ctx context.Context, topic string, from, to map[int32]int64, fn func([]kafka.Record) error) error
}

// Reconciliation compares the votes the intake accepted with the log.
type Reconciliation struct {
	// Deployed is false when the database has no intake schema; nothing
	// else is set then.
	Deployed bool
	// Accepted counts the vote_ids in intake.votes, Pending those of them
	// still waiting in the outbox.
	Accepted, Pending int
	// Lost counts the accepted votes that are neither in the votes topic
	// nor pending; Examples names up to ten of them, in order.
	Lost     int
	Examples []string
	// Served counts the stations the intake serves. Once it serves any,
	// every vote in the log stamped with a station must be one it
	// accepted, with the same voter, contest, time and station (its keyed
	// digest, when Reconcile has the digest key). Unaccepted counts the
	// votes in the log that are not (a vote written past the intake, into
	// its outbox or the topic; a ghost station's); UnacceptedExamples
	// names up to ten.
	Served             int
	Unaccepted         int
	UnacceptedExamples []string
	// Unserved counts the stations' openings and closes in the log that
	// name a station the intake does not serve (a ghost station opened
	// past the intake, so that the rule would count its votes);
	// UnservedExamples names up to ten.
	Unserved         int
	UnservedExamples []string
}

// errAllFound stops reading the log early.
var errAllFound = errors.New("every accepted vote found")

// Reconcile checks the intake's promise: every vote it accepted (answered
// 202) is in the votes topic or still pending in the outbox. It reads the
// intake in one snapshot and then the log up to its end at that moment:
// the relay publishes a row before deleting it, so a vote missing from
// the snapshot's outbox is already below that end. The log is read only
// when there are votes to look for, and no further than needed; memory
// grows with the number of accepted votes (about 40 bytes each).
//
// The other way, once the intake serves a station, every station-stamped
// vote in the log must be one the intake accepted: then the whole votes
// topic is read, and digestKey (the intake's, when given) holds each to the
// keyed digest the intake kept of it (a vote with no digest kept is then
// unaccepted too), and every station opening or close in the log must name
// a station it serves.
func Reconcile(ctx context.Context, pool *pgxpool.Pool, log VotesLog, digestKey []byte) (Reconciliation, error) {
	var rec Reconciliation
	missing := map[[16]byte]struct{}{}
	macs := map[[16]byte][]byte{}
	served := map[string]bool{}
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, "SELECT to_regclass('intake.votes') IS NOT NULL AND to_regclass('intake.outbox') IS NOT NULL").Scan(&rec.Deployed)
		if err != nil || !rec.Deployed {
			return err
		}
		var hasStations bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass('intake.stations') IS NOT NULL").Scan(&hasStations); err != nil {
			return fmt.Errorf("read the stations served: %w", err)
		}
		if hasStations {
			rows, err := tx.Query(ctx, "SELECT station FROM intake.stations")
			if err != nil {
				return fmt.Errorf("read the stations served: %w", err)
			}
			var station string
			if _, err := pgx.ForEachRow(rows, []any{&station}, func() error { served[station] = true; return nil }); err != nil {
				return fmt.Errorf("read the stations served: %w", err)
			}
			rec.Served = len(served)
		}
		rows, err := tx.Query(ctx, "SELECT vote_id, mac FROM intake.votes")
		if err != nil {
			return fmt.Errorf("read intake votes: %w", err)
		}
		var id [16]byte
		var mac []byte
		_, err = pgx.ForEachRow(rows, []any{&id, &mac}, func() error {
			missing[id] = struct{}{}
			if rec.Served > 0 {
				macs[id] = slices.Clone(mac)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read intake votes: %w", err)
		}
		rec.Accepted = len(missing)
		if rows, err = tx.Query(ctx, `SELECT "offset", payload FROM intake.outbox`); err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		var offset int64
		var payload []byte
		_, err = pgx.ForEachRow(rows, []any{&offset, &payload}, func() error {
			// The row is Watermill's forwarder envelope around the message:
			// a vote, or what else the intake writes through its outbox
			// (stations' openings and closes, close reports, operator
			// actions), which names no vote.
			var envelope struct {
				Topic   string `json:"destination_topic"`
				Payload []byte `json:"payload"`
			}
			if err := json.Unmarshal(payload, &envelope); err != nil {
				return fmt.Errorf("outbox row %d: %w", offset, err)
			}
			if envelope.Topic != domain.TopicVotes {
				return nil
			}
			if _, control, _ := domain.DecodeVotesControl(envelope.Payload); control {
				return nil
			}
			id, ok := voteID(envelope.Payload)
			if !ok {
				return fmt.Errorf("outbox row %d: a vote with no vote_id", offset)
			}
			if _, ok := missing[id]; ok {
				delete(missing, id)
				rec.Pending++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read outbox: %w", err)
		}
		return nil
	})
	if err != nil {
		return Reconciliation{}, fmt.Errorf("reconcile intake: %w", err)
	}
	if len(missing) == 0 && rec.Served == 0 {
		return rec, nil
	}

	from, err := log.LowWatermarks(ctx, domain.TopicVotes)
	if err != nil {
		return Reconciliation{}, fmt.Errorf("reconcile intake: %w", err)
	}
	to, err := log.HighWatermarks(ctx, domain.TopicVotes)
	if err != nil {
		return Reconciliation{}, fmt.Errorf("reconcile intake: %w", err)
	}
	err = log.ReadRange(ctx, domain.TopicVotes, from, to, func(recs []kafka.Record) error {
		for _, r := range recs {
			// A record that does not decode is a dead letter, not one of
			// the intake's votes, which were valid when accepted.
			if id, ok := voteID(r.Value); ok {
				delete(missing, id)
			}
			if rec.Served == 0 {
				continue
			}
			if c, control, err := domain.DecodeVotesControl(r.Value); control {
				if err == nil {
					rec.unserved(c, served, r)
				}
				continue
			}
			ev, err := domain.DecodeVoteCast(r.Value)
			if err != nil || ev.Vote.Station() == (domain.Station{}) {
				continue // a dead letter, or no station's
			}
			id, _ := voteID(r.Value)
			mac, accepted := macs[id]
			// With the key, a vote with no digest kept is not one the
			// intake accepted under it: a row written past the intake.
			if !accepted || (len(digestKey) > 0 && (mac == nil || !hmac.Equal(mac, voteMAC(digestKey, ev.Vote)))) {
				rec.Unaccepted++
				if len(rec.UnacceptedExamples) < 10 {
					rec.UnacceptedExamples = append(rec.UnacceptedExamples, fmt.Sprintf("%s (station %s, %s/%d@%d)", ev.Vote.ID(), ev.Vote.Station().ID(), domain.TopicVotes, r.Partition, r.Offset))
				}
			}
		}
		if len(missing) == 0 && rec.Served == 0 {
			return errAllFound
		}
		return nil
	})
	if err != nil && !errors.Is(err, errAllFound) {
		return Reconciliation{}, fmt.Errorf("reconcile intake: read %s: %w", domain.TopicVotes, err)
	}
	rec.Lost = len(missing)
	for id := range missing {
		rec.Examples = append(rec.Examples, formatUUID(id))
	}
	slices.Sort(rec.Examples)
	rec.Examples = rec.Examples[:min(len(rec.Examples), 10)]
	return rec, nil
}

// unserved counts a station opening or close in the log that names a
// station the intake does not serve.
func (rec *Reconciliation) unserved(control any, served map[string]bool, r kafka.Record) {
	var ids []string
	switch c := control.(type) {
	case domain.StationOpened:
		for _, s := range c.Stations() {
			ids = append(ids, s.ID())
		}
	case domain.StationClosed:
		ids = c.StationIDs()
	}
	for _, id := range ids {
		if served[id] {
			continue
		}
		rec.Unserved++
		if len(rec.UnservedExamples) < 10 {
			rec.UnservedExamples = append(rec.UnservedExamples, fmt.Sprintf("station %s (%s/%d@%d)", id, domain.TopicVotes, r.Partition, r.Offset))
		}
	}
}

// voteID returns the vote_id of an encoded vote.
func voteID(payload []byte) ([16]byte, bool) {
	var v struct {
		VoteID string `json:"vote_id"`
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return [16]byte{}, false
	}
	var id [16]byte
	b := strings.ReplaceAll(v.VoteID, "-", "")
	if len(b) != 32 {
		return [16]byte{}, false
	}
	if _, err := hex.Decode(id[:], []byte(b)); err != nil {
		return [16]byte{}, false
	}
	return id, true
}

func formatUUID(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
