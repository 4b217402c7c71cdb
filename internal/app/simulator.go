package app

import (
	"context"
	"io"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/simulator"
)

// SimulationConfig describes the simulated election.
type SimulationConfig struct {
	// Config is the election's JSON file (empty: the built-in one).
	Config string
	Voters int
	Rate   float64
	Faults simulator.Faults
	// CloseRegistration publishes the close markers after the register.
	CloseRegistration bool
	// ClosePolls records the close_polls operator action once every voter
	// has voted, so the demo ends with exact figures.
	ClosePolls bool
}

// StartSimulator publishes a simulated election to Kafka in Run.
func (a *App) StartSimulator(cfg SimulationConfig) error {
	elCfg, err := simulator.LoadElection(cfg.Config)
	if err != nil {
		return err
	}
	election, err := simulator.Generate(elCfg, cfg.Voters, time.Now())
	if err != nil {
		return err
	}
	pub, err := a.OpenPublisher()
	if err != nil {
		return err
	}
	simCfg := simulator.Config{Election: election, Rate: cfg.Rate, TopicSize: a.KafkaLog.Size, Faults: cfg.Faults, SealTo: a.Sealing.Public}
	if cfg.CloseRegistration {
		// On record, as when an operator closes registration.
		simCfg.CloseRegistration = func(context.Context) error { return CloseRegistration(pub, io.Discard) }
	}
	simCfg.OpenStations = func(_ context.Context, at time.Time, stations []domain.Station) error {
		return kafka.OpenStations(pub, at, stations)
	}
	simCfg.CloseStations = func(_ context.Context, at time.Time, reports []domain.StationReported) error {
		return kafka.CloseStations(pub, at, reports)
	}
	if cfg.ClosePolls {
		simCfg.ClosePolls = func(context.Context) error { return ClosePolls(pub, io.Discard) }
	}
	sim, err := simulator.New(simCfg, pub, a.Log.With("component", "simulator"))
	if err != nil {
		return err
	}
	a.Go(sim.Run)
	return nil
}
