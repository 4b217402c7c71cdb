package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/votewatch/votewatch/handlers"
	"github.com/votewatch/votewatch/infra/certs"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
)

// IntakeFlags configure the polling stations' write API.
type IntakeFlags struct {
	StationTokens     []string `help:"Polling-station tokens as station=token, comma-separated; enables POST /api/v1/votes. Prefer the file: env vars show up in process listings." env:"VOTEWATCH_STATION_TOKENS" sep:","`
	StationTokensFile string   `help:"File of station tokens: one 'station token' per line, 'revoked' after the token to refuse a station with 403; # starts a comment." env:"VOTEWATCH_STATION_TOKENS_FILE" type:"existingfile"`
	StationRate       float64  `help:"Votes per second allowed per station (sustained)." default:"50" env:"VOTEWATCH_STATION_RATE"`
	StationBurst      int      `help:"Votes a station may send at once (a batch counts each)." default:"1000" env:"VOTEWATCH_STATION_BURST"`
}

// ProxyFlags say which proxies stand in front of the HTTP listener.
type ProxyFlags struct {
	TrustedProxies []string `name:"trusted-proxy" help:"Addresses or CIDR prefixes of the proxies (load balancer, CDN) in front of this listener, comma-separated: the per-address limits (failed station logins, ballot lookups) then key a request by the client its X-Forwarded-For names. Never list a proxy that passes a client's own header on unchecked." env:"VOTEWATCH_TRUSTED_PROXIES" sep:","`
}

// apply gives a the trusted proxies.
func (f ProxyFlags) apply(a *app.App) error {
	proxies, err := handlers.ParseTrustedProxies(f.TrustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	a.TrustedProxies = proxies
	return nil
}

// OpenFlags say how the deciders (projector, replay, audit) open votes
// (README, "Secrecy"). Live, replay and audit must be given the same.
type OpenFlags struct {
	TallyKey      string `help:"File holding the election's tally private key (mode 0600): opens the sealed choices of contract v2 votes. Without it a sealed vote stops the projector until it is given. 'votewatch keys init' makes one (the demo keeps one in its data dir)." type:"path" env:"VOTEWATCH_TALLY_KEY"`
	RequireSealed bool   `help:"The election requires sealed votes: a clear vote (candidate_id in the message) is a dead letter. Give the same setting to the projector, replay and audit, or a replay decides differently." env:"VOTEWATCH_REQUIRE_SEALED"`
}

// SealFlags say what the intake seals votes to and keys its digests with.
type SealFlags struct {
	TallyPublicKey  string `help:"The election's tally public key, or a file holding it (tally.key.pub): the intake seals every choice to it before storing anything, and serves it at GET /api/v1/tally-key. Empty: votes are stored and logged in clear." env:"VOTEWATCH_TALLY_PUBLIC_KEY"`
	IntakeDigestKey string `help:"File holding the intake's digest key (64 hex digits, mode 0600): keys the MAC kept per accepted vote_id, so the database alone tells nothing. Empty: no MAC is kept (a reused vote_id is answered as a retry)." type:"path" env:"VOTEWATCH_INTAKE_DIGEST_KEY"`
}

func (f OpenFlags) sealing() app.SealingConfig {
	return app.SealingConfig{TallyKey: f.TallyKey, RequireSealed: f.RequireSealed}
}

func (f SealFlags) sealing(requireSealed bool) app.SealingConfig {
	return app.SealingConfig{TallyPublicKey: f.TallyPublicKey, DigestKey: f.IntakeDigestKey, RequireSealed: requireSealed}
}

// config reads the configured station tokens when enabled (none: the
// intake is off).
func (f IntakeFlags) config(enabled bool) (app.IntakeConfig, error) {
	cfg := app.IntakeConfig{Rate: f.StationRate, Burst: f.StationBurst}
	if !enabled {
		return cfg, nil
	}
	var err error
	cfg.Stations, err = app.ReadStations(f.StationTokens, f.StationTokensFile)
	return cfg, err
}

func (f DatabaseFlags) config(privateDir string) app.DatabaseConfig {
	return app.DatabaseConfig{URL: f.DatabaseURL, MaxConns: f.DBMaxConns, PrivateDir: privateDir}
}

func (f ProjectorFlags) config() (app.ProjectorConfig, error) {
	t, err := f.Transparency.config()
	return app.ProjectorConfig{Group: f.Group, BatchSize: f.BatchSize, Writers: f.Writers, Linger: f.Linger,
		SessionTimeout: f.SessionTimeout, Consumer: f.Consumer, Transparency: t}, err
}

func (f SimulationFlags) config() app.SimulationConfig {
	return app.SimulationConfig{Config: f.Config, Voters: f.Voters, Rate: f.Rate, CloseRegistration: f.CloseRegistration, ClosePolls: f.ClosePolls,
		Faults: simulator.Faults{
			Redeliveries: f.Redeliveries, DoubleVotes: f.DoubleVotes, UnknownVoters: f.UnknownVoters,
			UnknownCandidates: f.UnknownCandidates, Malformed: f.Malformed,
		}}
}

// kafkaConfig is how to reach brokers with these security settings.
func (f KafkaSecurityFlags) kafkaConfig(brokers []string, partitions int32) (kafka.Config, error) {
	return app.KafkaSecurity{TLS: f.KafkaTLS, TLSCAFile: f.KafkaTLSCAFile, SASLMechanism: f.KafkaSASLMechanism,
		SASLUsername: f.KafkaSASLUsername, SASLPassword: f.KafkaSASLPassword, SASLPasswordFile: f.KafkaSASLPasswordFile,
	}.Config(brokers, partitions)
}

// openKafka opens a's Kafka with these flags on brokers.
func (f KafkaFlags) openKafka(ctx context.Context, a *app.App, brokers []string) error {
	if len(brokers) == 0 {
		return errors.New("KAFKA_BROKERS is not set")
	}
	kcfg, err := f.kafkaConfig(brokers, f.Partitions)
	if err != nil {
		return err
	}
	return a.OpenKafka(ctx, kcfg)
}

// config is the public listener's TLS configuration (nil: plain HTTP).
// requireInHandshake refuses a client without a certificate before any
// request: right for the intake's own listener, not for one that also
// serves the dashboard (there the intake refuses such a station itself,
// with 403). --require-client-cert without --client-ca or without TLS is
// an error either way: it would refuse every station.
func (f TLSFlags) config(requireInHandshake bool) (*tls.Config, error) {
	cfg, err := certs.Server{CertFile: f.TLSCert, KeyFile: f.TLSKey, ClientCAFile: f.ClientCA,
		RequireClientCert: f.RequireClientCert}.Config()
	if err != nil || cfg == nil {
		return cfg, err
	}
	if f.RequireClientCert && !requireInHandshake {
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}
