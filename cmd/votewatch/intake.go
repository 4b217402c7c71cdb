package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/outbox"
)

// IntakeFlags configure the polling stations' write API.
type IntakeFlags struct {
	StationTokens     []string `help:"Polling-station tokens as station=token, comma-separated; enables POST /api/v1/votes. Prefer the file: env vars show up in process listings." env:"VOTEWATCH_STATION_TOKENS" sep:","`
	StationTokensFile string   `help:"File of station tokens: one 'station token' per line, 'revoked' after the token to refuse a station with 403; # starts a comment." env:"VOTEWATCH_STATION_TOKENS_FILE" type:"existingfile"`
	StationRate       float64  `help:"Votes per second allowed per station (sustained)." default:"50" env:"VOTEWATCH_STATION_RATE"`
	StationBurst      int      `help:"Votes a station may send at once (a batch counts each)." default:"1000" env:"VOTEWATCH_STATION_BURST"`
}

// stations reads the configured station tokens (none: the intake is off).
func (f IntakeFlags) stations() ([]handlers.Station, error) {
	var out []handlers.Station
	for _, entry := range f.StationTokens {
		name, rest, ok := strings.Cut(strings.TrimSpace(entry), "=")
		token, regionName, hasRegion := strings.Cut(rest, "@")
		if !ok || !hasRegion || name == "" || token == "" {
			return nil, errors.New("VOTEWATCH_STATION_TOKENS: each entry must be station=token@region")
		}
		region, err := domain.NewRegion(regionName)
		if err != nil {
			return nil, fmt.Errorf("VOTEWATCH_STATION_TOKENS: station %s: %w", name, err)
		}
		out = append(out, handlers.Station{Name: name, Token: token, Region: region})
	}
	if f.StationTokensFile == "" {
		return out, nil
	}
	file, err := os.Open(f.StationTokensFile)
	if err != nil {
		return nil, fmt.Errorf("station tokens: %w", err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		revoked := fields[len(fields)-1] == "revoked"
		if revoked {
			fields = fields[:len(fields)-1]
		}
		if len(fields) < 3 {
			// Never echo the line: it holds a token.
			return nil, fmt.Errorf("%s:%d: want 'station token region' or 'station token region revoked'", f.StationTokensFile, line)
		}
		// A region may hold spaces: it is the rest of the line.
		region, err := domain.NewRegion(strings.Join(fields[2:], " "))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", f.StationTokensFile, line, err)
		}
		out = append(out, handlers.Station{Name: fields[0], Token: fields[1], Region: region, Revoked: revoked})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("station tokens: %w", err)
	}
	return out, nil
}

// intakeService is the write API and the relay that drains its outbox to
// Kafka.
type intakeService struct {
	api   *handlers.Intake
	relay func(ctx context.Context) error
}

// newIntake builds the intake when station tokens are configured (nil
// otherwise). Accepted votes go to the outbox in PostgreSQL; the relay,
// which must run alongside, forwards them to Kafka.
func newIntake(log *slog.Logger, pool *pgxpool.Pool, kcfg kafka.Config, f IntakeFlags, stations []handlers.Station, m *metrics.Metrics, cleanup *closers) (*intakeService, error) {
	if len(stations) == 0 {
		return nil, nil
	}
	if len(kcfg.Brokers) == 0 {
		return nil, errors.New("the intake API relays votes to Kafka: set KAFKA_BROKERS")
	}
	box, err := outbox.New(pool, watermillLogger(log, "outbox"))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(stations))
	for _, s := range stations {
		names = append(names, s.Name)
	}
	counts := m.Intake(names...)
	pub, err := kafka.NewPublisher(kcfg)
	if err != nil {
		return nil, err
	}
	cleanup.add(func() { _ = pub.Close() })
	// Station reports are not votes: no outbox; a station retries its
	// close if the broker is down (503).
	report := func(_ context.Context, r domain.StationReported) error {
		msg, err := kafka.EventMessage(r)
		if err != nil {
			return err
		}
		return pub.Publish(domain.TopicStations, msg)
	}
	api, err := handlers.NewIntake(box, handlers.IntakeConfig{Stations: stations, Rate: f.StationRate, Burst: f.StationBurst,
		ObserveRequest: counts.ObserveRequest, ObserveVotes: counts.ObserveVotes, Report: report}, log)
	if err != nil {
		return nil, err
	}
	if err := api.RegisterStations(context.Background()); err != nil {
		log.Warn("stations not registered for reporting progress (the broker may be down); they register at the next start", "err", err)
	}
	// A revoked token is an operator action: on record, with when the
	// intake began refusing it.
	for _, s := range stations {
		if s.Revoked {
			if err := kafka.RecordAction(pub, domain.ActionStationRevoked, "the intake started with station "+s.Name+"'s token revoked", "ok"); err != nil {
				log.Warn("revocation not recorded in the audit topic", "station", s.Name, "err", err)
			}
		}
	}
	relay, err := box.NewRelay(pub, outbox.RelayConfig{})
	if err != nil {
		return nil, err
	}
	m.Outbox(box.Backlog)
	return &intakeService{api: api, relay: func(ctx context.Context) error {
		if err := relay.Run(ctx); err != nil {
			return fmt.Errorf("outbox relay: %w", err)
		}
		return nil
	}}, nil
}

// newIntakeServer serves the intake API alone, with /healthz and /readyz.
func newIntakeServer(log *slog.Logger, addr string, pool *pgxpool.Pool, m *metrics.Metrics, intake *intakeService) (*httpServer, error) {
	if intake == nil {
		return nil, errors.New("new intake server: no intake")
	}
	ready, err := readiness(pool)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	intake.api.Register(mux)
	handlers.RegisterProbes(mux, ready, log)
	return listen(log, addr, m.InstrumentHTTP(mux), nil)
}

// demoStation makes a station token for the demo, so the intake API can be
// tried without configuring one.
// demoStation is the demo's own station, serving region.
func demoStation(region domain.Region) handlers.Station {
	return handlers.Station{Name: "demo-station", Token: "demo-" + rand.Text(), Region: region}
}
