package domain

import (
	"encoding/json"
	"time"
)

// TopicOperatorActions is the topic of operator actions, the operator log:
// every action that changes what is published is appended here before or
// as it takes effect, and served at GET /api/v1/audit. The topic and the
// route keep the name "audit" they were published under; in the code,
// "audit" means the independent recount of the log (votewatch audit).
const TopicOperatorActions = "audit"

// OperatorActed records one operator action: who, from which host, when,
// what, and with what result.
type OperatorActed struct {
	action, who, host, detail, result string
	at                                time.Time
}

// The operator actions recorded.
const (
	ActionReplaySwap        = "replay_swap"
	ActionAcceptDiff        = "accept_diff"
	ActionDLQReplay         = "dlq_replay"
	ActionCloseRegistration = "close_registration"
	ActionSchedule          = "schedule"
	ActionStationRevoked    = "station_revoked"
	// ActionClosePolls closes the polls of an election without a
	// schedule: from then on every published figure is exact
	// (Disclosure.ReleaseDue). It is the only way the public figures of
	// such an election become exact.
	ActionClosePolls = "close_polls"
	// ActionImportRoll is an import of candidates and voters (votewatch
	// import).
	ActionImportRoll = "import_roll"
	// ActionStationClosed is a station's close report, recorded by the
	// intake that published it.
	ActionStationClosed = "station_closed"
)

// NewOperatorActed validates an operator action.
func NewOperatorActed(action, who, host, detail, result string, at time.Time) (OperatorActed, error) {
	if err := validID("action", action); err != nil {
		return OperatorActed{}, err
	}
	for _, f := range []struct{ name, value string }{{"who", who}, {"host", host}, {"result", result}} {
		if err := validText(f.name, f.value, maxNameLen, true); err != nil {
			return OperatorActed{}, err
		}
	}
	if err := validText("detail", detail, maxTextLen, false); err != nil {
		return OperatorActed{}, err
	}
	if at.IsZero() {
		return OperatorActed{}, invalid("at", "is required")
	}
	return OperatorActed{action: action, who: who, host: host, detail: detail, result: result, at: at.UTC()}, nil
}

// Action, Who, Host, Detail, Result and At describe the action.
func (e OperatorActed) Action() string { return e.action }

// Who returns the operator (the OS user who ran the command).
func (e OperatorActed) Who() string { return e.who }

// Host returns the host the command ran on.
func (e OperatorActed) Host() string { return e.host }

// Detail returns what was done, for people.
func (e OperatorActed) Detail() string { return e.detail }

// Result returns how it ended.
func (e OperatorActed) Result() string { return e.result }

// At returns when.
func (e OperatorActed) At() time.Time { return e.at }

// Key returns the message key: the action.
func (e OperatorActed) Key() string { return e.action }

type operatorWire struct {
	Action string `json:"action"`
	Who    string `json:"who"`
	Host   string `json:"host"`
	At     string `json:"at"`
	Detail string `json:"detail"`
	Result string `json:"result"`
}

// MarshalJSON encodes the action as the operator actions topic carries it.
func (e OperatorActed) MarshalJSON() ([]byte, error) {
	return json.Marshal(operatorWire{e.action, e.who, e.host, e.at.Format(time.RFC3339Nano), e.detail, e.result})
}

// DecodeOperatorActed parses and validates an audit message.
func DecodeOperatorActed(payload []byte) (OperatorActed, error) {
	var w operatorWire
	if err := decodeStrict(payload, &w); err != nil {
		return OperatorActed{}, err
	}
	at, err := parseTimestamp("at", w.At)
	if err != nil {
		return OperatorActed{}, err
	}
	return NewOperatorActed(w.Action, w.Who, w.Host, w.Detail, w.Result, at)
}
