package kafka

import (
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/votewatch/votewatch/domain"
)

// CloseRegistration writes a registration close marker to every partition
// of the registration topics (domain.RegistrationClosed).
// Registrations published after it are refused; votes for voters or
// candidates still unregistered are rejected once every marker is read.
// Writing it again changes nothing: the first marker of a partition counts.
func CloseRegistration(p *Publisher, at time.Time) error {
	for _, topic := range domain.RegistrationTopics {
		if _, err := p.PublishToEveryPartition(topic, func(n int) ([]byte, error) {
			marker, err := domain.NewRegistrationClosed(n, at)
			if err != nil {
				return nil, err
			}
			return marker.MarshalJSON()
		}); err != nil {
			return err
		}
	}
	return nil
}

// RecordAction appends an operator action to the operator actions topic: who (the OS
// user), from which host, now, what and with what result.
func RecordAction(p *Publisher, action, detail, result string) error {
	msg, err := ActionMessage(action, detail, result)
	if err != nil {
		return err
	}
	if err := p.Publish(domain.TopicOperatorActions, msg); err != nil {
		return fmt.Errorf("record operator action %s: %w", action, err)
	}
	return nil
}

// ActionMessage is an operator action's message for the operator actions topic: who
// (the OS user), from which host, now, what and with what result.
func ActionMessage(action, detail, result string) (*message.Message, error) {
	who := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		who = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	a, err := domain.NewOperatorActed(action, who, host, detail, result, time.Now())
	if err != nil {
		return nil, err
	}
	return EventMessage(a)
}

// OpenStations opens stations (issue 24 §3), all at at: one opening naming
// them on every partition of the votes topic, the rule's stations register
// (rule 7). A publisher calls it before it sends any vote of the stations
// (the simulator); the intake opens its stations through its outbox.
func OpenStations(p *Publisher, at time.Time, stations []domain.Station) error {
	if len(stations) == 0 {
		return nil
	}
	opening, err := domain.NewStationOpened(at, stations...)
	if err != nil {
		return err
	}
	if _, err := p.PublishToEveryPartition(domain.TopicVotes, func(int) ([]byte, error) { return opening.MarshalJSON() }); err != nil {
		return fmt.Errorf("open stations: %w", err)
	}
	return nil
}

// CloseStations closes stations (issue 24 §2), all at at: one close
// marker naming them on every partition of the votes topic, which binds
// (rule 6), then their close reports on the stations topic, which
// reporting shows. Only a publisher that sent every vote of the stations
// before may call it (the simulator); the intake closes through its
// outbox.
func CloseStations(p *Publisher, at time.Time, reports []domain.StationReported) error {
	if len(reports) == 0 {
		return nil
	}
	ids := make([]string, len(reports))
	msgs := make([]*message.Message, len(reports))
	for i, r := range reports {
		if !r.Closed() {
			return fmt.Errorf("close station %s: not a close report", r.Station().ID())
		}
		ids[i] = r.Station().ID()
		msg, err := EventMessage(r)
		if err != nil {
			return err
		}
		msgs[i] = msg
	}
	marker, err := domain.NewStationClosed(at, ids...)
	if err != nil {
		return err
	}
	if _, err := p.PublishToEveryPartition(domain.TopicVotes, func(int) ([]byte, error) { return marker.MarshalJSON() }); err != nil {
		return fmt.Errorf("close stations: %w", err)
	}
	if err := p.Publish(domain.TopicStations, msgs...); err != nil {
		return fmt.Errorf("close stations: %w", err)
	}
	return nil
}
