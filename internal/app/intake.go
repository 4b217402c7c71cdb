package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/outbox"
)

// ReadStations reads the station tokens given as station=token@region
// entries and in file (empty: none). No stations: the intake is off.
func ReadStations(tokens []string, file string) ([]handlers.Station, error) {
	var out []handlers.Station
	for _, entry := range tokens {
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
	if file == "" {
		return out, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("station tokens: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
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
			return nil, fmt.Errorf("%s:%d: want 'station token region' or 'station token region revoked'", file, line)
		}
		// A region may hold spaces: it is the rest of the line.
		region, err := domain.NewRegion(strings.Join(fields[2:], " "))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", file, line, err)
		}
		out = append(out, handlers.Station{Name: fields[0], Token: fields[1], Region: region, Revoked: revoked})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("station tokens: %w", err)
	}
	return out, nil
}

// IntakeConfig configures the polling stations' write API.
type IntakeConfig struct {
	// Stations may send votes; none turns the intake off.
	Stations []handlers.Station
	// Rate is the votes per second allowed per station, Burst how many it
	// may send at once.
	Rate  float64
	Burst int
	// RequireClientCert refuses stations without a verified client
	// certificate issued to them (handlers.IntakeConfig).
	RequireClientCert bool
	// TrustedProxies: see handlers.IntakeConfig. StartIntake fills it
	// from App.TrustedProxies.
	TrustedProxies []netip.Prefix
	// DigestKey keys the MAC kept per accepted vote_id (none: no MAC is
	// kept; StartIntake uses the App's Sealing).
	DigestKey []byte
	// TallyKey seals every choice before it is stored (zero: clear v1
	// votes; StartIntake uses the App's Sealing).
	TallyKey domain.TallyPublicKey
	// RequireSealed is served with the key, so stations know clear votes
	// are refused.
	RequireSealed bool
}

// Intake is the write API and the relay that drains its outbox to Kafka.
type Intake struct {
	api *handlers.Intake
	// tallyKey is what stations seal to (GET /api/v1/tally-key).
	tallyKey      domain.TallyPublicKey
	requireSealed bool
	relay         func(ctx context.Context) error
	close         func()
}

// Relay forwards the outbox to Kafka until ctx ends.
func (in *Intake) Relay(ctx context.Context) error { return in.relay(ctx) }

// Close releases the intake's Kafka publisher.
func (in *Intake) Close() { in.close() }

// StartIntake builds the intake when cfg has stations (nil otherwise) and
// runs its relay in Run; serve its API with ServeAPI or ServeIntake.
func (a *App) StartIntake(cfg IntakeConfig) (*Intake, error) {
	if cfg.TrustedProxies == nil {
		cfg.TrustedProxies = a.TrustedProxies
	}
	if cfg.DigestKey == nil {
		cfg.DigestKey = a.Sealing.DigestKey
	}
	if cfg.TallyKey.IsZero() {
		cfg.TallyKey = a.Sealing.Public
		cfg.RequireSealed = a.Sealing.Opener.RequiresSealed()
	}
	in, err := NewIntake(a.Log, a.Pool, a.Kafka, cfg, a.Metrics)
	if err != nil || in == nil {
		return nil, err
	}
	a.OnClose(in.Close)
	a.Go(in.Relay)
	return in, nil
}

// NewIntake builds the intake when cfg has stations (nil otherwise).
// Accepted votes go to the outbox in PostgreSQL; the relay, which must run
// alongside, forwards them to Kafka. Close releases it.
func NewIntake(log *slog.Logger, pool *pgxpool.Pool, kcfg kafka.Config, cfg IntakeConfig, m *metrics.Metrics) (_ *Intake, err error) {
	stations := cfg.Stations
	if len(stations) == 0 {
		return nil, nil
	}
	if len(kcfg.Brokers) == 0 {
		return nil, errors.New("the intake API relays votes to Kafka: set KAFKA_BROKERS")
	}
	if cfg.DigestKey == nil {
		log.Warn("no intake digest key: a vote_id reused for another voter is answered as a retry (--intake-digest-key)")
	}
	if cfg.TallyKey.IsZero() {
		log.Warn("no tally key: the intake stores and publishes votes with their choice in clear (README, \"Secrecy\"); give it --tally-public-key")
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
	defer func() {
		if err != nil {
			_ = pub.Close()
		}
	}()
	box, err := outbox.New(pool, watermillLogger(log, "outbox"), outbox.Config{DigestKey: cfg.DigestKey, TallyKey: cfg.TallyKey,
		VotePartitions: func() (int, error) { return pub.Partitions(domain.TopicVotes) }})
	if err != nil {
		return nil, err
	}
	// A station's registration at start is not a vote: no outbox. Its
	// close goes through the outbox, after its votes (Outbox.CloseStation).
	report := StationReporter(pub)
	api, err := handlers.NewIntake(box, handlers.IntakeConfig{Stations: stations, Rate: cfg.Rate, Burst: cfg.Burst, TrustedProxies: cfg.TrustedProxies,
		ObserveRequest: counts.ObserveRequest, ObserveVotes: counts.ObserveVotes, Report: report,
		RequireClientCert: cfg.RequireClientCert}, log)
	if err != nil {
		return nil, err
	}
	// The stations open (the rule's register, by position) before the
	// intake takes a vote; a revoked one stays closed to votes.
	var serving []domain.Station
	for _, s := range stations {
		if s.Revoked {
			continue
		}
		st, err := domain.NewStation(s.Name, s.Region)
		if err != nil {
			return nil, err
		}
		serving = append(serving, st)
	}
	if err := box.Serve(context.Background(), serving); err != nil {
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
	return &Intake{api: api, tallyKey: cfg.TallyKey, requireSealed: cfg.RequireSealed, close: func() { _ = pub.Close() }, relay: func(ctx context.Context) error {
		if err := relay.Run(ctx); err != nil {
			return fmt.Errorf("outbox relay: %w", err)
		}
		return nil
	}}, nil
}

// registerTallyKey serves the key stations seal to, when there is one.
func (in *Intake) registerTallyKey(mux *http.ServeMux, log *slog.Logger) {
	if !in.tallyKey.IsZero() {
		handlers.RegisterTallyKey(mux, in.tallyKey, in.requireSealed, log)
	}
}

// NewIntakeServer serves the intake API alone, with /healthz and /readyz.
func NewIntakeServer(log *slog.Logger, addr string, pool *pgxpool.Pool, m *metrics.Metrics, intake *Intake) (*HTTPServer, error) {
	if intake == nil {
		return nil, errors.New("new intake server: no intake")
	}
	ready, err := readiness(pool)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	intake.api.Register(mux)
	intake.registerTallyKey(mux, log)
	handlers.RegisterProbes(mux, ready, log)
	return listen(log, addr, m.InstrumentHTTP(mux), nil)
}

// DemoStation is the demo's own station, serving region, so the intake
// API can be tried without configuring one.
func DemoStation(region domain.Region) handlers.Station {
	return handlers.Station{Name: "demo-station", Token: "demo-" + rand.Text(), Region: region}
}
