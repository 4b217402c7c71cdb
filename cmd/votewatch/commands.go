package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/votewatch/votewatch/infra/certs"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/bench"
)

// Run applies the migrations to DATABASE_URL.
func (c *MigrateCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	if _, err := a.OpenDatabase(ctx, c.DatabaseFlags.config("")); err != nil {
		return err
	}
	return a.Migrate(ctx)
}

// Run projects events from KAFKA_BROKERS into DATABASE_URL until stopped.
// Several projector processes share the work as one consumer group.
func (c *ProjectCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	if _, err := a.OpenDatabase(ctx, c.DatabaseFlags.config("")); err != nil {
		return err
	}
	if err := a.Migrate(ctx); err != nil {
		return err
	}
	if err := c.openKafka(ctx, a, c.KafkaBrokers); err != nil {
		return err
	}
	if err := a.UseSealing(c.OpenFlags.sealing(), false); err != nil {
		return err
	}
	proj, err := c.ProjectorFlags.config()
	if err != nil {
		return err
	}
	proj.MinCell = c.MinCell
	if _, err := a.StartProjector(proj); err != nil {
		return err
	}
	if c.RealtimeVoting {
		if _, err := a.StartRealtimeVotingBridge(ctx, app.BridgeConfig{Group: c.Group, SessionTimeout: c.SessionTimeout}); err != nil {
			return err
		}
	}
	if err := a.ObserveProjection(); err != nil {
		return err
	}
	if _, err := a.ServeOps(c.MetricsAddr); err != nil {
		return err
	}
	env.Log.Info("projector running", "brokers", c.KafkaBrokers, "group", c.Group)
	return a.Run(ctx)
}

// Run serves the read API from DATABASE_URL until stopped.
func (c *ServeCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	if _, err := a.OpenDatabase(ctx, c.DatabaseFlags.config("")); err != nil {
		return err
	}
	icfg, err := c.IntakeFlags.config(c.Intake)
	if err != nil {
		return err
	}
	icfg.RequireClientCert = c.RequireClientCert
	if a.TLS, err = c.TLSFlags.config(false); err != nil {
		return err
	}
	if len(c.KafkaBrokers) > 0 {
		if err := c.openKafka(ctx, a, c.KafkaBrokers); err != nil {
			return err
		}
	}
	if err := c.ProxyFlags.apply(a); err != nil {
		return err
	}
	if err := a.UseSealing(c.SealFlags.sealing(c.RequireSealed), false); err != nil {
		return err
	}
	intake, err := a.StartIntake(icfg)
	if err != nil {
		return err
	}
	a.MinCell = c.MinCell
	srv, err := a.ServeAPI(c.HTTP, intake)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "votewatch API on %s/\n", srv.URL())
	if _, err := a.ServeOps(c.MetricsAddr); err != nil {
		return err
	}
	if intake != nil {
		env.Log.Info("intake API enabled", "stations", len(icfg.Stations))
	}
	return a.Run(ctx)
}

// Run serves the intake API and relays its outbox to KAFKA_BROKERS until
// stopped. It reads nothing of the projection, so its database login
// needs only votewatch_intake.
func (c *IntakeCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	icfg, err := c.IntakeFlags.config(true)
	if err != nil {
		return err
	}
	if len(icfg.Stations) == 0 {
		return errors.New("no station tokens: set VOTEWATCH_STATION_TOKENS_FILE")
	}
	icfg.RequireClientCert = c.RequireClientCert
	if a.TLS, err = c.TLSFlags.config(true); err != nil {
		return err
	}
	if _, err := a.OpenDatabase(ctx, c.DatabaseFlags.config("")); err != nil {
		return err
	}
	if err := c.openKafka(ctx, a, c.KafkaBrokers); err != nil {
		return err
	}
	if err := c.ProxyFlags.apply(a); err != nil {
		return err
	}
	if err := a.UseSealing(c.SealFlags.sealing(c.RequireSealed), false); err != nil {
		return err
	}
	intake, err := a.StartIntake(icfg)
	if err != nil {
		return err
	}
	srv, err := a.ServeIntake(c.HTTP, intake)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "votewatch intake API on %s/api/v1/votes\n", srv.URL())
	env.Log.Info("intake API enabled", "stations", len(icfg.Stations))
	if _, err := a.ServeOps(c.MetricsAddr); err != nil {
		return err
	}
	return a.Run(ctx)
}

// Run publishes a simulated election to KAFKA_BROKERS.
func (c *SimulateCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	if err := c.openKafka(ctx, a, c.KafkaBrokers); err != nil {
		return err
	}
	if err := a.StartSimulator(c.SimulationFlags.config()); err != nil {
		return err
	}
	return a.Run(ctx)
}

// Run serves the embedded broker on loopback until stopped.
func (c *BrokerCmd) Run(ctx context.Context, env *Env, a *app.App) error {
	broker, err := a.StartBroker(kafka.BrokerConfig{Port: c.Port, DataDir: c.DataDir})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "KAFKA_BROKERS=%s\n", broker.Addr())
	<-ctx.Done()
	return nil
}

// Run measures throughput (internal/bench); its projector processes are
// this binary.
func (c *BenchCmd) Run(ctx context.Context, env *Env) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find own binary: %w", err)
	}
	return bench.Run(ctx, &bench.Env{Log: env.Log, Stdout: env.Stdout}, bench.Config{
		Votes: c.Votes, Quick: c.Quick, DatabaseURL: c.DatabaseURL, JSONOut: c.JSONOut, Partitions: c.Partitions,
		Live: c.Live, Writers: c.Writers, Linger: c.Linger, MemoryVotes: c.MemoryVotes, Processes: c.Processes,
		CPUProfile: c.CPUProfile, Sealing: c.Sealing, Binary: exe,
	})
}

// Run writes the certificates and says where they went.
func (c *CertsCmd) Run(ctx context.Context, env *Env) error {
	stations := append([]string(nil), c.Station...)
	if c.StationTokensFile != "" {
		configured, err := app.ReadStations(nil, c.StationTokensFile)
		if err != nil {
			return err
		}
		for _, s := range configured {
			if !s.Revoked {
				stations = append(stations, s.Name)
			}
		}
	}
	written, err := certs.Generate(c.Dir, certs.Options{Hosts: c.Host, Stations: stations, Validity: c.Validity})
	if err != nil {
		return err
	}
	for _, f := range written {
		fmt.Fprintln(env.Stdout, f)
	}
	fmt.Fprintf(env.Stdout, "serve with --tls-cert %s --tls-key %s; require stations' certificates with --client-ca %s --require-client-cert\n",
		filepath.Join(c.Dir, certs.ServerFile), filepath.Join(c.Dir, certs.ServerKeyFile), filepath.Join(c.Dir, certs.CAFile))
	return nil
}
