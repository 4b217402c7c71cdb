package kafka

import "github.com/votewatch/votewatch/domain"

// RealtimeVotingTopics are realtime_voting's topics (voters_topic,
// votes_topic) and their dead-letter topics, created like the contract's
// so that the project's own scripts find them on the embedded broker
// (confluent-kafka reports UNKNOWN_TOPIC_OR_PART for a topic that does not
// exist, and its consumer stops: "Subscribed topic not available"). Their
// producers partition with CRC32, so their partition count only spreads
// the bridge's work: it re-keys every message with murmur2.
func RealtimeVotingTopics(partitions int32) map[string]int32 {
	if partitions <= 0 {
		partitions = 256
	}
	return map[string]int32{
		domain.TopicRealtimeVoters:                         partitions,
		domain.TopicRealtimeVotes:                          partitions,
		domain.DeadLetterTopic(domain.TopicRealtimeVoters): 1,
		domain.DeadLetterTopic(domain.TopicRealtimeVotes):  1,
	}
}
