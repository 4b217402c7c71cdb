package kafka

import (
	"fmt"
	"os"
	"os/user"
	"time"

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
		return err
	}
	msg, err := EventMessage(a)
	if err != nil {
		return err
	}
	if err := p.Publish(domain.TopicOperatorActions, msg); err != nil {
		return fmt.Errorf("record operator action %s: %w", action, err)
	}
	return nil
}
