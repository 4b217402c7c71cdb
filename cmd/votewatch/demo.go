package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
)

// Run starts the embedded broker (unless KAFKA_BROKERS is set), the
// database, the projector, the API and the simulator, and stops them all,
// in reverse order, on Ctrl-C.
func (c *DemoCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	log := env.Log
	if c.Fresh && (c.DatabaseURL != "" || len(c.KafkaBrokers) > 0) {
		return errors.New("--fresh discards the embedded broker's log and the private database; it does not touch DATABASE_URL or KAFKA_BROKERS")
	}
	dataDir, err := app.PrepareDataDir(log, c.DataDir, c.Fresh)
	if err != nil {
		return err
	}
	brokers := c.KafkaBrokers
	if len(brokers) == 0 {
		broker, err := a.StartBroker(kafka.BrokerConfig{
			Port: c.KafkaPort, DataDir: filepath.Join(dataDir, "kafka"), Partitions: int(c.Partitions),
		})
		if err != nil {
			return fmt.Errorf("%w (is another votewatch demo running? choose another --kafka-port)", err)
		}
		brokers = []string{broker.Addr()}
	}
	dbWhere, err := a.OpenDatabase(ctx, c.DatabaseFlags.config(filepath.Join(dataDir, "postgres")))
	if err != nil {
		return err
	}
	if err := a.Migrate(ctx); err != nil {
		return err
	}
	if err := c.openKafka(ctx, a, brokers); err != nil {
		return err
	}
	// The demo seals every vote the intake takes in, with a tally key it
	// keeps with its data (made on first start, like election.secret).
	sealing := app.SealingConfig{TallyKey: c.TallyKey, TallyPublicKey: c.TallyPublicKey, DigestKey: c.IntakeDigestKey, RequireSealed: c.RequireSealed}
	if err := a.UseSealing(sealing.DemoDefaults(dataDir), true); err != nil {
		return err
	}
	proj, err := c.ProjectorFlags.config()
	if err != nil {
		return err
	}
	proj.Transparency = proj.Transparency.DemoDefaults(dataDir)
	proj.MinCell = c.MinCell
	a.MinCell = c.MinCell
	if _, err := a.StartProjector(proj); err != nil {
		return err
	}
	if c.RealtimeVoting {
		if _, err := a.StartRealtimeVotingBridge(ctx, app.BridgeConfig{Group: c.Group, SessionTimeout: c.SessionTimeout}); err != nil {
			return err
		}
	}
	icfg, err := c.IntakeFlags.config(true)
	if err != nil {
		return err
	}
	// Configured tokens are secrets and are never printed; the demo's own
	// is, so the intake API can be tried at once.
	var shownToken string
	if icfg.Stations, shownToken, err = app.DemoStations(icfg.Stations, c.Config); err != nil {
		return err
	}
	if err := c.ProxyFlags.apply(a); err != nil {
		return err
	}
	intake, err := a.StartIntake(icfg)
	if err != nil {
		return err
	}
	srv, err := a.ServeAPI(c.HTTP, intake)
	if err != nil {
		return err
	}
	if _, err := a.ServeOps(c.MetricsAddr); err != nil {
		return err
	}
	if c.Simulate {
		if err := a.StartSimulator(c.SimulationFlags.config()); err != nil {
			return err
		}
	}

	app.PrintDemoBanner(env.Stdout, srv.Addr(), brokers, dbWhere, icfg.Stations[0], shownToken)
	if c.RealtimeVoting {
		fmt.Fprintf(env.Stdout, "realtime_voting: its main.py and voting.py work against %s (voters_topic, votes_topic); bring in its candidates with\n"+
			"  votewatch import --from-seed-db 'postgres://postgres:postgres@localhost:5432/voting'\n\n", brokers[0])
		if c.Simulate {
			// Its figures would mix with theirs, and its closing of
			// registration would refuse their voters.
			fmt.Fprint(env.Stdout, "  note: the simulator runs an election of its own here and closes registration for it;\n"+
				"  for realtime_voting's election alone: votewatch demo --simulate=false --fresh\n\n")
		}
	}
	err = a.Run(ctx)
	log.Info("stopping")
	return err
}
