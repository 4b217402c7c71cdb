package domain

import (
	"encoding/json"
	"time"
)

// RegistrationClosed is the control event that closes registration on one
// partition of the candidates or voters topic (contract v1.1). Its closer
// writes one to every partition of both topics; each declares how many
// partitions it wrote to, so registration is closed once the projection
// has seen a marker on every declared partition. A registration that
// follows the marker in its partition is refused, whenever it is read.
//
// Markers are the stream processors' watermark: they make "registration
// is closed" a fact of the log, at a position, rather than of the moment a
// projector happened to read it (README, "How a vote is decided").
type RegistrationClosed struct {
	partitions int
	closedAt   time.Time
}

// MaxPartitions bounds the partition count a close marker may declare.
const MaxPartitions = 1 << 16

// NewRegistrationClosed validates a close marker for a topic of
// partitions partitions.
func NewRegistrationClosed(partitions int, closedAt time.Time) (RegistrationClosed, error) {
	if partitions < 1 || partitions > MaxPartitions {
		return RegistrationClosed{}, invalid("partitions", "must be between 1 and %d", MaxPartitions)
	}
	if closedAt.IsZero() {
		return RegistrationClosed{}, invalid("closed_at", "is required")
	}
	return RegistrationClosed{partitions: partitions, closedAt: closedAt.UTC()}, nil
}

// Partitions returns how many partitions the closer marked.
func (e RegistrationClosed) Partitions() int { return e.partitions }

// ClosedAt returns when the closer closed registration (informative: the
// marker's position, not this time, is what decides).
func (e RegistrationClosed) ClosedAt() time.Time { return e.closedAt }

// Key returns the message key. Markers are written to chosen partitions,
// not partitioned by key.
func (e RegistrationClosed) Key() string { return controlRegistrationClosed }

const controlRegistrationClosed = "registration_closed"

type controlWire struct {
	Control    string `json:"control"`
	Partitions int    `json:"partitions"`
	ClosedAt   string `json:"closed_at"`
}

// MarshalJSON encodes the marker as the contract gives it:
// {"control":"registration_closed","partitions":N,"closed_at":RFC3339}.
func (e RegistrationClosed) MarshalJSON() ([]byte, error) {
	return json.Marshal(controlWire{controlRegistrationClosed, e.partitions, e.closedAt.Format(time.RFC3339Nano)})
}

// DecodeRegistrationClosed reads a close marker. ok is false when payload
// is not a control event at all (a registration, or garbage for the
// registration decoder to refuse); a control event that is not a valid
// close marker is an error matching ErrInvalid.
func DecodeRegistrationClosed(payload []byte) (e RegistrationClosed, ok bool, err error) {
	if !isControl(payload) {
		return RegistrationClosed{}, false, nil
	}
	var w controlWire
	if err := decodeStrict(payload, &w); err != nil {
		return RegistrationClosed{}, true, err
	}
	if w.Control != controlRegistrationClosed {
		return RegistrationClosed{}, true, invalid("control", "unknown control event %q", w.Control)
	}
	at, err := parseTimestamp("closed_at", w.ClosedAt)
	if err != nil {
		return RegistrationClosed{}, true, err
	}
	e, err = NewRegistrationClosed(w.Partitions, at)
	return e, true, err
}
