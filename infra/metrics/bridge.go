package metrics

import "github.com/prometheus/client_golang/prometheus"

// BridgeStats are a realtime_voting bridge's counters since its process
// started: messages translated per source topic, and dead-lettered.
type BridgeStats struct {
	Voters, Votes, DeadLettered int64
}

// Bridge exports the realtime_voting bridge's counters
// (votewatch_bridge_translated_total{topic}, votewatch_bridge_dead_lettered_total).
// Its dead letters are not in votewatch_projection_dead_lettered: they never
// reach the log the projection is built from.
func (m *Metrics) Bridge(stats func() BridgeStats) {
	translated := func(topic string, v func(BridgeStats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bridge", Name: "translated_total",
			Help:        "realtime_voting messages translated into votewatch's events, by source topic.",
			ConstLabels: prometheus.Labels{"topic": topic},
		}, func() float64 { return float64(v(stats())) })
	}
	m.reg.MustRegister(
		translated("voters_topic", func(s BridgeStats) int64 { return s.Voters }),
		translated("votes_topic", func(s BridgeStats) int64 { return s.Votes }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "bridge", Name: "dead_lettered_total",
			Help: "realtime_voting messages of neither shape, sent to <topic>.dlq.",
		}, func() float64 { return float64(stats().DeadLettered) }),
	)
}
