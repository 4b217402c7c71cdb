package kafka

import (
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
