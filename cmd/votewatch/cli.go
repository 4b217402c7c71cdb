package main

import "time"

// CLI is the command line: global flags and one struct per subcommand.
// Every flag can also come from the environment variable it names.
type CLI struct {
	LogLevel  string `help:"Log level: debug, info, warn, error." default:"info" env:"VOTEWATCH_LOG_LEVEL"`
	LogFormat string `help:"Log format: text or json." enum:"text,json" default:"text" env:"VOTEWATCH_LOG_FORMAT"`

	Demo     DemoCmd        `cmd:"" help:"Run everything in one process: embedded Kafka, private Postgres, simulator, projector and API."`
	Migrate  MigrateCmd     `cmd:"" help:"Apply the database migrations."`
	Project  ProjectCmd     `cmd:"" help:"Run the projector: consume events and maintain the tallies."`
	Serve    ServeCmd       `cmd:"" help:"Serve the read API and dashboard, and the polling stations' intake API when station tokens are set (unless --intake=false)."`
	Intake   IntakeCmd      `cmd:"" help:"Serve the polling stations' intake API alone, with its outbox relay to Kafka (its own process and database login)."`
	Simulate SimulateCmd    `cmd:"" help:"Publish a simulated election to Kafka."`
	Broker   BrokerCmd      `cmd:"" help:"Run the embedded Kafka broker as a standalone process on loopback."`
	Import   ImportCmd      `cmd:"" help:"Publish an election's candidates and voter roll from CSV files (validated completely first)."`
	Close    CloseCmd       `cmd:"" name:"close-registration" help:"Close registration: publish a close marker to every partition of the contests, candidates and voters topics."`
	Polls    ClosePollsCmd  `cmd:"" name:"close-polls" help:"Close the polls of an election without a schedule (an operator action on the audit topic): from then on every published figure is exact."`
	Schedule ScheduleCmd    `cmd:"" help:"Set the polls' window: publish a schedule to every partition of the votes topic (votes cast outside it are rejected as outside_polls)."`
	Certs    CertsCmd       `cmd:"" help:"Make TLS certificates: a deployment CA, a server certificate for the API and the intake, and a client certificate per polling station."`
	Health   HealthcheckCmd `cmd:"" name:"healthcheck" help:"Exit 0 if a votewatch endpoint answers 200 (container healthchecks)."`
	Keys     KeysCmd        `cmd:"" help:"Make the transparency log's signing key and the election secret."`
	Replay   ReplayCmd      `cmd:"" help:"Rebuild every projection from the event log into a fresh schema, then swap it in (or --verify)."`
	Verify   VerifyCmd      `cmd:"" help:"Check that the projection agrees with itself (no rebuild), and that every vote the intake accepted is in the log or pending (reads the votes topic only if the intake has votes)."`
	Ballot   BallotCmd      `cmd:"" help:"Track a ballot: what became of the vote with this vote_id (counted, rejected and why, or pending), from the read API; --verify-proof checks it is in the signed log."`
	Audit    AuditCmd       `cmd:"" help:"Recount the election from the log with the rules' Go specification (no SQL) and compare every table; exit 1 on any difference."`
	Status   StatusCmd      `cmd:"" help:"Show the state of the projection: build, lag per partition, staleness, counts."`
	DLQ      DLQCmd         `cmd:"" name:"dlq" help:"Work with dead-lettered messages."`
	Bench    BenchCmd       `cmd:"" help:"Measure, in one run on this machine: COPY ceiling, naive baseline, live path, freshness, read API, replay (see BENCHMARKS.md)."`
}

// BenchCmd measures throughput on an embedded broker and a private (or
// DATABASE_URL) PostgreSQL.
type BenchCmd struct {
	Votes       int           `help:"Votes in the benchmark election." default:"500000"`
	Quick       bool          `help:"A small run (50,000 votes) for CI smoke tests."`
	DatabaseURL string        `help:"PostgreSQL to use (default: a private cluster in a temporary directory)." env:"DATABASE_URL"`
	JSONOut     string        `help:"Also write the results as JSON to this file." name:"json-out"`
	Partitions  int32         `help:"Partitions of the benchmark topics." default:"256"`
	Live        bool          `help:"Also measure the live projector (Kafka → Watermill → group commit) on the same votes." default:"true" negatable:""`
	Writers     int           `help:"Live projector: vote batches in flight." default:"2"`
	Linger      time.Duration `help:"Live projector: how long a vote batch waits to fill." default:"3ms"`
	MemoryVotes int           `help:"Also run the projector as its own process over a fresh election of this many votes and read its peak RSS after 1M and after all (0 skips; BENCHMARKS.md uses 5000000)." name:"memory-votes"`
	Processes   int           `help:"Run the live phase's projector as this many separate processes in one consumer group (0: in the benchmark's own process)."`
	Sealing     bool          `help:"Also measure live and replay with clear and with sealed votes (the cost of contract v2's sealing), on half as many votes, twice each." default:"true" negatable:""`
	CPUProfile  string        `help:"Write a CPU profile of this process during the live phase (with --no-live, the replay) to this file (go tool pprof)." name:"cpu-profile"`
}

// AdminFlags locate the database and Kafka for the maintenance commands;
// without DATABASE_URL or KAFKA_BROKERS they attach to a running demo.
type AdminFlags struct {
	DatabaseURL  string   `help:"PostgreSQL URL (default: the running demo's private cluster)." env:"DATABASE_URL"`
	KafkaBrokers []string `help:"Kafka bootstrap addresses (default: the demo's broker)." env:"KAFKA_BROKERS" sep:"," default:"127.0.0.1:9092"`
	DataDir      string   `help:"The demo's data dir, to find its private cluster (default: user cache dir)." env:"VOTEWATCH_DATA_DIR"`
	KafkaSecurityFlags
}

// ReplayCmd rebuilds the projection from the log.
type ReplayCmd struct {
	AdminFlags
	Verify            bool   `help:"Rebuild and compare with the live projection table by table; swap nothing. Exits 1 if they differ."`
	KeepRetired       bool   `help:"After a swap, keep the replaced projection as <schema>_retired_<time>."`
	KeepRebuilt       bool   `help:"With --verify, keep the rebuilt schema for inspection."`
	AllowTruncatedLog bool   `help:"Rebuild even if a topic no longer starts at offset 0 (retention or compaction removed events); the result misses them." name:"allow-truncated-log"`
	ElectionSecret    string `help:"The election secret (see 'project --election-secret'): rebuild the transparency trees and compare their roots (default: the demo's, when there is one)." type:"path" env:"VOTEWATCH_ELECTION_SECRET"`
	OpenFlags
	AcceptDiff bool `help:"Swap even if the rebuilt trees' roots differ from the live ones' (the published history changes); recorded as an operator action." name:"accept-diff"`
}

// BallotCmd tracks one ballot through the read API.
type BallotCmd struct {
	VoteID      string   `arg:"" name:"vote_id" help:"The vote's receipt (its vote_id)."`
	API         string   `help:"The read API's address." default:"http://127.0.0.1:8080" env:"VOTEWATCH_API"`
	VerifyProof bool     `help:"Check the answer's inclusion proof against its signed checkpoint (exit 1 if it does not verify or there is none yet)." name:"verify-proof"`
	VerifierKey string   `help:"With --verify-proof: the checkpoint verifier key (sumdb/note text) or a file holding it, pinned from another channel. Without it the API's own key is used, which proves less." name:"verifier-key" env:"VOTEWATCH_VERIFIER_KEY"`
	StateDir    string   `help:"With --verify-proof: where the newest checkpoint seen is kept; every later one must be consistent with it (proved from the log's tiles). Empty: keep none." default:"${state_dir}" type:"path" env:"VOTEWATCH_STATE_DIR"`
	WitnessKey  []string `help:"With --verify-proof: a witness's cosignature verifier key (c2sp.org/tlog-cosignature); repeatable. The checkpoint must carry --witness-quorum of their cosignatures." name:"witness-key" sep:"none" env:"VOTEWATCH_WITNESS_KEY"`
	Quorum      int      `help:"With --witness-key: how many of them must have cosigned (0: all)." name:"witness-quorum" default:"0"`
}

// AuditCmd recounts the election from the log, independently of the SQL.
type AuditCmd struct {
	AdminFlags
	AllowTruncatedLog bool     `help:"Recount even if a topic no longer starts at offset 0; the recount then misses the lost events." name:"allow-truncated-log"`
	Checkpoint        string   `help:"A signed checkpoint saved earlier (GET /log/checkpoint): verify its signature, that its tree is a prefix of today's (a consistency proof) and that its tallies digest equals the recount's at its size." type:"existingfile"`
	AllowLag          bool     `help:"Audit even when the projection has not applied the whole log (the recount then covers only what it applied)." name:"allow-lag"`
	LogURL            string   `help:"The log's tiles (https://host/log/): check the served checkpoint's cosignatures and its consistency with --checkpoint from the tiles, and read every entry back against its root (no database login needed for this part)." name:"log-url"`
	WitnessKey        []string `help:"A witness's cosignature verifier key; repeatable. With --log-url the served checkpoint must carry --witness-quorum of their cosignatures." name:"witness-key" sep:"none"`
	Quorum            int      `help:"With --witness-key: how many must have cosigned (0: all)." name:"witness-quorum" default:"0"`
	VerifierKey       string   `help:"The verifier key to check --checkpoint with (sumdb/note text, or a file holding it). Pin the one published before the election; default: the one the projection serves." name:"verifier-key"`
	ElectionSecret    string   `help:"The election secret: also rebuild every leaf from the log and compare the tree's root (default: the demo's, when there is one)." type:"path" env:"VOTEWATCH_ELECTION_SECRET"`
	OpenFlags
}

// VerifyCmd self-checks the projection and reconciles the intake with the log.
type VerifyCmd struct {
	AdminFlags
	IntakeDigestKey string `help:"File holding the intake's digest key: every station-stamped vote in the log is then held to the keyed digest the intake kept of it (a vote altered on its way is named). Without it, only its vote_id is checked." type:"path" env:"VOTEWATCH_INTAKE_DIGEST_KEY"`
}

// StatusCmd shows the projection's state.
type StatusCmd struct {
	AdminFlags
	JSON bool `help:"Print JSON (as GET /api/v1/status)." name:"json"`
}

// DLQCmd groups dead-letter commands.
type DLQCmd struct {
	Replay DLQReplayCmd `cmd:"" help:"Re-publish dead-lettered messages to their topic (after a fix); messages still invalid are reported, not re-published."`
}

// DLQReplayCmd re-publishes dead letters.
type DLQReplayCmd struct {
	AdminFlags
	Topic  string `help:"Topic whose dead letters to re-publish." enum:"votes,voters,candidates,contests" default:"votes"`
	DryRun bool   `help:"Show what would be re-published; publish nothing."`
}

// DatabaseFlags locate PostgreSQL.
type DatabaseFlags struct {
	DatabaseURL string `help:"PostgreSQL URL; empty starts a private cluster from the installed server binaries (demo only)." env:"DATABASE_URL"`
	DBMaxConns  int32  `help:"Maximum database connections." default:"8" env:"VOTEWATCH_DB_MAX_CONNS"`
}

// KafkaFlags locate Kafka.
type KafkaFlags struct {
	KafkaBrokers []string `help:"Kafka bootstrap addresses (comma-separated)." env:"KAFKA_BROKERS" sep:","`
	Partitions   int32    `help:"Partitions of the event topics when votewatch creates them." default:"256" env:"VOTEWATCH_PARTITIONS"`
	KafkaSecurityFlags
}

// KafkaSecurityFlags reach a managed Kafka over TLS with SASL.
type KafkaSecurityFlags struct {
	KafkaTLS              bool   `help:"Connect to Kafka over TLS." env:"KAFKA_TLS"`
	KafkaTLSCAFile        string `help:"PEM file of the CA that signed the brokers' certificates (default: the system's CAs)." env:"KAFKA_TLS_CA_FILE" type:"existingfile"`
	KafkaSASLMechanism    string `help:"SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: no SASL)." env:"KAFKA_SASL_MECHANISM" enum:",PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" default:""`
	KafkaSASLUsername     string `help:"SASL username." env:"KAFKA_SASL_USERNAME"`
	KafkaSASLPassword     string `help:"SASL password (prefer --kafka-sasl-password-file: flags and env show up in process listings)." env:"KAFKA_SASL_PASSWORD"`
	KafkaSASLPasswordFile string `help:"File holding the SASL password." env:"KAFKA_SASL_PASSWORD_FILE" type:"existingfile"`
}

// ProjectorFlags tune the projector.
type ProjectorFlags struct {
	Group          string            `help:"Consumer group prefix; each topic gets <group>.<topic>." default:"votewatch-projector" env:"VOTEWATCH_GROUP"`
	BatchSize      int               `help:"Most votes applied in one transaction." default:"1000" env:"VOTEWATCH_BATCH_SIZE"`
	Writers        int               `help:"Vote batches in flight at once." default:"2" env:"VOTEWATCH_WRITERS"`
	Linger         time.Duration     `help:"How long a vote batch waits to fill after its first vote." default:"3ms" env:"VOTEWATCH_LINGER"`
	SessionTimeout time.Duration     `help:"Consumer group session timeout." default:"10s" env:"VOTEWATCH_SESSION_TIMEOUT"`
	Transparency   TransparencyFlags `embed:""`
	OpenFlags
	Consumer string `help:"Kafka consumer: pipelined (many messages per partition in flight, never two with the same key) or watermill-kafka (one per partition)." enum:"pipelined,watermill-kafka" default:"pipelined" env:"VOTEWATCH_CONSUMER"`
}

// SimulationFlags describe the simulated election.
type SimulationFlags struct {
	Config            string  `help:"Election config (JSON); empty uses the built-in 50 states + DC." type:"existingfile" env:"VOTEWATCH_ELECTION"`
	Voters            int     `help:"Registered voters." default:"100000" env:"VOTEWATCH_VOTERS"`
	Rate              float64 `help:"Votes per second." default:"500" env:"VOTEWATCH_RATE"`
	Redeliveries      float64 `help:"Share of votes published twice (same vote_id)." default:"0.01"`
	DoubleVotes       float64 `help:"Share of voters who try to vote twice." default:"0.005"`
	UnknownVoters     float64 `help:"Share of votes followed by one from an unregistered voter." default:"0.002"`
	UnknownCandidates float64 `help:"Share of votes followed by one for a candidate who does not stand." default:"0.002"`
	Malformed         float64 `help:"Share of votes followed by a malformed message." default:"0.001"`
	CloseRegistration bool    `help:"Close registration (publish the close markers) after the register, before the first vote. --close-registration=false leaves it open, as a contract v1 producer does." default:"true" negatable:""`
	ClosePolls        bool    `help:"Close the polls (the close_polls operator action, as 'votewatch close-polls') once every voter has voted: the published figures become exact." default:"true" negatable:""`
}

// DemoCmd runs the whole system in one process.
type DemoCmd struct {
	HTTP      string `help:"Address of the dashboard and API." default:"127.0.0.1:8080" env:"VOTEWATCH_HTTP"`
	KafkaPort int    `help:"Port of the embedded Kafka broker on 127.0.0.1 (ignored with KAFKA_BROKERS)." default:"9092"`
	DataDir   string `help:"Where the embedded broker's log and the private Postgres live (default: user cache dir)." env:"VOTEWATCH_DATA_DIR"`
	Simulate  bool   `help:"Run the simulator (--simulate=false lets an external producer drive it)." default:"true" negatable:""`
	Fresh     bool   `help:"Discard the stored election (broker log and database) and start a new one."`
	// On in the demo: realtime_voting's scripts run against it unchanged.
	RealtimeVoting bool `help:"Also read realtime_voting's voters_topic and votes_topic (its main.py and voting.py, unchanged) and translate them onto voters and votes; the topics are created (--realtime-voting=false: votewatch's own topics only)." default:"true" negatable:"" env:"VOTEWATCH_REALTIME_VOTING"`
	MetricsFlags
	DatabaseFlags
	KafkaFlags
	ProjectorFlags
	SimulationFlags
	IntakeFlags
	DisclosureFlags
	ProxyFlags
	SealFlags
}

// MigrateCmd applies migrations.
type MigrateCmd struct {
	DatabaseFlags
}

// MetricsFlags put /metrics on a listener of its own: never on the public
// one, where anyone could read the process's internals.
type MetricsFlags struct {
	MetricsAddr string `help:"Serve /metrics, /healthz and /readyz on this address, apart from the public listener (empty: no /metrics)." env:"VOTEWATCH_METRICS_ADDR"`
}

// ProjectCmd runs the projector against external Kafka and Postgres.
type ProjectCmd struct {
	// Off in production: a cluster's voters_topic may be anybody's.
	RealtimeVoting bool `help:"Also run the realtime_voting bridge: read voters_topic and votes_topic (created if missing) and translate them onto voters and votes (every projector process with it shares their partitions)." env:"VOTEWATCH_REALTIME_VOTING"`
	MetricsFlags
	DatabaseFlags
	KafkaFlags
	ProjectorFlags
	DisclosureFlags
}

// TLSFlags serve a public listener over TLS (the ops listener of
// MetricsFlags stays plain: keep it on the operators' network).
type TLSFlags struct {
	TLSCert           string `help:"PEM certificate (chain) to serve HTTPS with, with --tls-key ('votewatch certs' makes both). Empty: plain HTTP, for 127.0.0.1 only." name:"tls-cert" env:"VOTEWATCH_TLS_CERT" type:"existingfile"`
	TLSKey            string `help:"PEM private key of --tls-cert." name:"tls-key" env:"VOTEWATCH_TLS_KEY" type:"existingfile"`
	ClientCA          string `help:"PEM bundle of the CA that issues the polling stations' client certificates: a certificate a station presents is verified against it." name:"client-ca" env:"VOTEWATCH_CLIENT_CA" type:"existingfile"`
	RequireClientCert bool   `help:"The intake refuses a station that does not present the client certificate issued to it (common name = station name), even with a good token. Needs --client-ca." name:"require-client-cert" env:"VOTEWATCH_REQUIRE_CLIENT_CERT"`
}

// ServeCmd serves the read API.
type ServeCmd struct {
	HTTP   string `help:"Listen address." default:"127.0.0.1:8080" env:"VOTEWATCH_HTTP"`
	Intake bool   `help:"Also serve the intake API when station tokens are set (--intake=false: the read API only, for a login that may only read; run 'votewatch intake' apart)." default:"true" negatable:"" env:"VOTEWATCH_INTAKE"`
	TLSFlags
	MetricsFlags
	DatabaseFlags
	KafkaFlags
	IntakeFlags
	DisclosureFlags
	ProxyFlags
	SealFlags
	RequireSealed bool `help:"The election requires sealed votes (served at GET /api/v1/tally-key, so stations know); needs --tally-public-key." env:"VOTEWATCH_REQUIRE_SEALED"`
}

// IntakeCmd serves the polling stations' intake API on its own.
type IntakeCmd struct {
	HTTP string `help:"Listen address." default:"127.0.0.1:8081" env:"VOTEWATCH_HTTP"`
	TLSFlags
	MetricsFlags
	DatabaseFlags
	KafkaFlags
	IntakeFlags
	ProxyFlags
	SealFlags
	RequireSealed bool `help:"The election requires sealed votes (served at GET /api/v1/tally-key, so stations know); needs --tally-public-key." env:"VOTEWATCH_REQUIRE_SEALED"`
}

// SimulateCmd publishes a simulated election.
type SimulateCmd struct {
	KafkaFlags
	SimulationFlags
}

// CloseCmd closes registration.
type CloseCmd struct {
	KafkaFlags
}

// ClosePollsCmd closes the polls: the published figures become exact.
type ClosePollsCmd struct {
	KafkaFlags
}

// DisclosureFlags set what may be published (README, "What is
// published"). The projector's releaser and the read API must agree.
type DisclosureFlags struct {
	MinCell int `help:"Minimum cell size k: no published region, gender or age band of a contest holds fewer than k votes, and while the polls are open published figures move only in steps of at least k votes. Projector and read API must use the same k." default:"10" env:"VOTEWATCH_MIN_CELL" name:"min-cell"`
}

// ScheduleCmd publishes the election's schedule.
type ScheduleCmd struct {
	PollsOpen  time.Time `help:"When the polls open (RFC 3339)." required:"" format:"2006-01-02T15:04:05Z07:00"`
	PollsClose time.Time `help:"When the polls close (RFC 3339); a vote cast at or after it is too late." required:"" format:"2006-01-02T15:04:05Z07:00"`
	KafkaFlags
}

// CertsCmd makes a deployment's TLS certificates (infra/certs).
type CertsCmd struct {
	Dir               string        `help:"Directory to write into (made 0700; a CA already there is used again, so stations' certificates stay valid)." default:"tls" env:"VOTEWATCH_CERTS_DIR"`
	Host              []string      `help:"DNS names and IP addresses the server certificate is valid for (comma-separated)." default:"localhost,127.0.0.1" sep:"," env:"VOTEWATCH_CERTS_HOSTS"`
	Station           []string      `help:"Polling stations to make client certificates for (comma-separated)." sep:","`
	StationTokensFile string        `help:"Also make a client certificate for every station named in this station tokens file." env:"VOTEWATCH_STATION_TOKENS_FILE" type:"existingfile"`
	Validity          time.Duration `help:"How long the server and station certificates are valid (the CA: five times as long)." default:"8760h"`
}

// BrokerCmd runs the embedded broker standalone.
type BrokerCmd struct {
	Port    int    `help:"Port on 127.0.0.1." default:"9092"`
	DataDir string `help:"Keep the log here (empty: in memory)." env:"VOTEWATCH_BROKER_DATA_DIR"`
}
