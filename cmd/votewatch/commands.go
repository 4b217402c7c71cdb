package main

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/projections"
)

// Run applies the migrations to DATABASE_URL.
func (c *MigrateCmd) Run(ctx context.Context, env *Env) error {
	var cleanup closers
	defer cleanup.run()
	pool, _, err := openDatabase(ctx, env.Log, c.DatabaseFlags, "", &cleanup)
	if err != nil {
		return err
	}
	return migrate(ctx, env.Log, pool)
}

// Run projects events from KAFKA_BROKERS into DATABASE_URL until stopped.
// Several projector processes share the work as one consumer group.
func (c *ProjectCmd) Run(ctx context.Context, env *Env) error {
	if len(c.KafkaBrokers) == 0 {
		return errors.New("KAFKA_BROKERS is not set")
	}
	var cleanup closers
	defer cleanup.run()
	pool, _, err := openDatabase(ctx, env.Log, c.DatabaseFlags, "", &cleanup)
	if err != nil {
		return err
	}
	if err := migrate(ctx, env.Log, pool); err != nil {
		return err
	}
	kcfg, klog, err := openKafka(ctx, env.Log, c.KafkaFlags, c.KafkaBrokers, &cleanup)
	if err != nil {
		return err
	}
	m := metrics.New()
	proj, err := newProjectorService(env.Log, pool, kcfg, c.ProjectorFlags, klog, m)
	if err != nil {
		return err
	}
	results, err := projections.NewResults(pool)
	if err != nil {
		return err
	}
	m.Projection(projectionStatus(results, klog.HighWatermarks))
	g, ctx := errgroup.WithContext(ctx)
	if err := serveOps(ctx, g, env.Log, c.MetricsAddr, pool, m); err != nil {
		return err
	}
	env.Log.Info("projector running", "brokers", c.KafkaBrokers, "group", c.Group)
	g.Go(func() error { return proj.Run(ctx) })
	return g.Wait()
}

// Run serves the read API from DATABASE_URL until stopped.
func (c *ServeCmd) Run(ctx context.Context, env *Env) error {
	var cleanup closers
	defer cleanup.run()
	pool, _, err := openDatabase(ctx, env.Log, c.DatabaseFlags, "", &cleanup)
	if err != nil {
		return err
	}
	m := metrics.New()
	var stations []handlers.Station
	if c.Intake {
		if stations, err = c.stations(); err != nil {
			return err
		}
	}
	var kcfg kafka.Config
	var logEnds projections.HighWatermarksFunc
	if len(c.KafkaBrokers) > 0 {
		var klog *kafka.Log
		if kcfg, klog, err = openKafka(ctx, env.Log, c.KafkaFlags, c.KafkaBrokers, &cleanup); err != nil {
			return err
		}
		logEnds = klog.HighWatermarks
	}
	intake, err := newIntake(env.Log, pool, kcfg, c.IntakeFlags, stations, m, &cleanup)
	if err != nil {
		return err
	}
	srv, err := newHTTPServer(env.Log, c.HTTP, pool, logEnds, m, intake)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "votewatch API on http://%s/\n", srv.Addr())
	g, ctx := errgroup.WithContext(ctx)
	if err := serveOps(ctx, g, env.Log, c.MetricsAddr, pool, m); err != nil {
		return err
	}
	g.Go(func() error { return srv.Run(ctx) })
	if intake != nil {
		env.Log.Info("intake API enabled", "stations", len(stations))
		g.Go(func() error { return intake.relay(ctx) })
	}
	return g.Wait()
}

// Run serves the intake API and relays its outbox to KAFKA_BROKERS until
// stopped. It reads nothing of the projection, so its database login
// needs only votewatch_intake.
func (c *IntakeCmd) Run(ctx context.Context, env *Env) error {
	if len(c.KafkaBrokers) == 0 {
		return errors.New("KAFKA_BROKERS is not set")
	}
	stations, err := c.stations()
	if err != nil {
		return err
	}
	if len(stations) == 0 {
		return errors.New("no station tokens: set VOTEWATCH_STATION_TOKENS_FILE")
	}
	var cleanup closers
	defer cleanup.run()
	pool, _, err := openDatabase(ctx, env.Log, c.DatabaseFlags, "", &cleanup)
	if err != nil {
		return err
	}
	kcfg, _, err := openKafka(ctx, env.Log, c.KafkaFlags, c.KafkaBrokers, &cleanup)
	if err != nil {
		return err
	}
	m := metrics.New()
	intake, err := newIntake(env.Log, pool, kcfg, c.IntakeFlags, stations, m, &cleanup)
	if err != nil {
		return err
	}
	srv, err := newIntakeServer(env.Log, c.HTTP, pool, m, intake)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "votewatch intake API on http://%s/api/v1/votes\n", srv.Addr())
	env.Log.Info("intake API enabled", "stations", len(stations))
	g, ctx := errgroup.WithContext(ctx)
	if err := serveOps(ctx, g, env.Log, c.MetricsAddr, pool, m); err != nil {
		return err
	}
	g.Go(func() error { return srv.Run(ctx) })
	g.Go(func() error { return intake.relay(ctx) })
	return g.Wait()
}

// Run publishes a simulated election to KAFKA_BROKERS.
func (c *SimulateCmd) Run(ctx context.Context, env *Env) error {
	if len(c.KafkaBrokers) == 0 {
		return errors.New("KAFKA_BROKERS is not set")
	}
	var cleanup closers
	defer cleanup.run()
	kcfg, klog, err := openKafka(ctx, env.Log, c.KafkaFlags, c.KafkaBrokers, &cleanup)
	if err != nil {
		return err
	}
	sim, closeSim, err := newSimulator(env.Log, kcfg, c.SimulationFlags, klog)
	if err != nil {
		return err
	}
	defer closeSim()
	return sim.Run(ctx)
}

// Run serves the embedded broker on loopback until stopped.
func (c *BrokerCmd) Run(ctx context.Context, env *Env) error {
	broker, err := kafka.StartBroker(kafka.BrokerConfig{Port: c.Port, DataDir: c.DataDir}, env.Log)
	if err != nil {
		return err
	}
	defer broker.Close()
	fmt.Fprintf(env.Stdout, "KAFKA_BROKERS=%s\n", broker.Addr())
	<-ctx.Done()
	return nil
}
