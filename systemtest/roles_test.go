package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
	"github.com/votewatch/votewatch/projections/read"
)

// loginAs creates a login role in group and returns a pool connected as it
// to the test's database.
func (p *pipeline) loginAs(t *testing.T, group string) *pgxpool.Pool {
	t.Helper()
	pool, err := postgres.Connect(context.Background(), p.loginDSN(t, group), 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// loginDSN creates a login role in group and returns its database URL.
func (p *pipeline) loginDSN(t *testing.T, group string) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("%s_%d", group, time.Now().UnixNano())
	if _, err := p.pool.Exec(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD 'pw-%s' IN ROLE %s`, name, name, group)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = p.pool.Exec(context.Background(), "DROP OWNED BY "+name+"; DROP ROLE "+name)
	})
	u, err := url.Parse(p.dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, "pw-"+name)
	return u.String()
}

func wantDenied(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: %v, want permission denied (42501)", sql, err)
	}
}

// The read API works as votewatch_reader, which can read the projection and
// change nothing; the projector works as votewatch_projector, which can
// write rows but create, alter or drop nothing; and the grants survive a
// replay's schema swap.
func TestLeastPrivilegeRoles(t *testing.T) {
	p := startSystem(t, system{partitions: 4})
	reader := p.loginAs(t, "votewatch_reader")
	writer := p.loginAs(t, "votewatch_projector")

	// The projector, connected as votewatch_projector, with the
	// transparency log on: it writes the trees and checkpoints through its
	// INSERT-only grants and the tree functions (00025).
	keys := t.TempDir()
	proj, err := app.NewProjectorService(testLogger(), writer, p.kafka, app.ProjectorConfig{
		Group: "test-roles", BatchSize: 100, Writers: 2, Linger: time.Millisecond, SessionTimeout: 6 * time.Second, MinCell: 1,
		Transparency: app.TransparencyConfig{CheckpointKey: filepath.Join(keys, "checkpoint.key"),
			ElectionSecret: filepath.Join(keys, "election.secret"), Every: 100 * time.Millisecond, Election: "roles", CreateKeys: true},
	}, p.klog, metrics.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Migrate(context.Background(), testLogger(), writer); err != nil {
		t.Fatalf("the projector's start-up migration check as votewatch_projector: %v", err)
	}
	// Its /metrics and /readyz (project --metrics-addr), as that login too.
	projMetrics := metrics.New()
	projResults, err := read.NewResults(writer)
	if err != nil {
		t.Fatal(err)
	}
	projMetrics.Projection(app.ProjectionStatus(projResults, p.klog.HighWatermarks))
	ops, err := app.NewOpsServer(testLogger(), "127.0.0.1:0", writer, projMetrics)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := proj.Run(ctx); err != nil {
			t.Errorf("projector: %v", err)
		}
	})
	wg.Go(func() { _ = ops.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	var wantDead int64
	for _, n := range e.deadLettered {
		wantDead += int64(n)
	}
	m := scrape(t, "http://"+ops.Addr()+"/metrics")
	if m["votewatch_projection_up"] != 1 || m["votewatch_projection_votes_cast"] != float64(e.counted) || m["votewatch_projection_dead_lettered"] != float64(wantDead) {
		t.Errorf("the projector's metrics as votewatch_projector: up %v, votes %v, dead %v", m["votewatch_projection_up"],
			m["votewatch_projection_votes_cast"], m["votewatch_projection_dead_lettered"])
	}
	if code := (&pipeline{api: "http://" + ops.Addr()}).get(t, "/readyz", nil); code != http.StatusOK {
		t.Errorf("the projector's /readyz as votewatch_projector: %d", code)
	}

	// The read API, connected as votewatch_reader.
	srv, err := app.NewAPIServer(testLogger(), "127.0.0.1:0", reader, p.klog.HighWatermarks, metrics.New(), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Run(ctx) })
	readerAPI := &pipeline{api: "http://" + srv.Addr()}
	var s summaryResp
	if code := readerAPI.get(t, "/api/v1/summary", &s); code != 200 || s.VotesCast != e.counted {
		t.Errorf("summary as votewatch_reader: %d %+v", code, s)
	}
	if code := readerAPI.get(t, "/readyz", nil); code != 200 {
		t.Errorf("readyz as votewatch_reader: %d", code)
	}
	readerAPI.readsEverything(t, e)

	for _, sql := range []string{
		"INSERT INTO candidate_tallies (candidate_id, votes) VALUES ('c-x', 1)",
		"UPDATE candidate_tallies SET votes = votes + 1",
		"DELETE FROM ballots",
		"TRUNCATE ballots",
		"DROP TABLE ballots",
		"CREATE TABLE evil (x int)",
		"INSERT INTO intake.votes (vote_id, station, mac) VALUES (gen_random_uuid(), 's', '')",
	} {
		wantDenied(t, reader, sql)
	}
	for _, sql := range []string{
		"DROP TABLE ballots",
		"TRUNCATE ballots",
		"ALTER TABLE ballots ADD COLUMN x int",
		"CREATE TABLE evil (x int)",
		"DROP SCHEMA " + postgres.Schema + " CASCADE",
		"INSERT INTO intake.votes (vote_id, station, mac) VALUES (gen_random_uuid(), 's', '')",
	} {
		wantDenied(t, writer, sql)
	}

	// A replay swaps in a rebuilt schema; the roles keep their rights there.
	if code, out := p.cli(t, "replay", "--election-secret", filepath.Join(keys, "election.secret")); code != 0 {
		t.Fatalf("replay = %d:\n%s", code, out)
	}
	// The reader reads the counts, not the ballots.
	var n int64
	if err := reader.QueryRow(context.Background(), "SELECT sum(votes) FROM candidate_tallies").Scan(&n); err != nil || n != e.counted {
		t.Errorf("reader after the swap: %d votes counted, %v", n, err)
	}
	wantDenied(t, reader, "SELECT count(*) FROM ballots")
	wantDenied(t, reader, "DELETE FROM ballots")
	p.produce(t, record("votes", e.voterIDs[235], vote(7777, e.voterIDs[235], "c-ada")))
	p.waitFor(t, e, 1)
	readerAPI.readsEverything(t, e)
	// Ballot tracking works under the reader's login, one vote_id at a
	// time (ballot_status, 00025), though it may not list them.
	// Its proof comes once a checkpoint covers it (tree_leaf_of).
	testutil.Eventually(t, 60*time.Second, "vote 7777's status and proof, as votewatch_reader", func() (bool, string) {
		var b struct {
			Status string          `json:"status"`
			Proof  json.RawMessage `json:"proof"`
		}
		code := readerAPI.get(t, "/api/v1/ballots/"+vote(7777, "", "")["vote_id"], &b)
		return code == http.StatusOK && b.Status == "counted" && len(b.Proof) > 0 && string(b.Proof) != "null",
			fmt.Sprintf("%d %s %s", code, b.Status, b.Proof)
	})
	wantDenied(t, reader, "SELECT vote_id FROM ballot_statuses")
	wantDenied(t, reader, "SELECT * FROM log_epochs")
}

// readsEverything checks that every route of the read API answers 200 and
// that the dashboard's monitoring lists are there, to the minute.
func (p *pipeline) readsEverything(t *testing.T, e *election) {
	t.Helper()
	for _, route := range []string{"/api/v1/summary", "/api/v1/candidates", "/api/v1/regions", "/api/v1/regions/North",
		"/api/v1/status", "/api/v1/timeline?minutes=1440", "/api/v1/stations", "/healthz", "/readyz"} {
		if code := p.get(t, route, nil); code != http.StatusOK {
			t.Errorf("GET %s: %d", route, code)
		}
	}
	resp, err := http.Get(p.api + "/api/v1/results.csv")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/results.csv: %d", resp.StatusCode)
	}
	var d struct {
		Monitoring struct {
			Rejected          map[string]int64 `json:"rejected"`
			DeadLettered      int64            `json:"dead_lettered"`
			RecentRejections  []map[string]any `json:"recent_rejections"`
			RecentDeadLetters []map[string]any `json:"recent_dead_letters"`
		} `json:"monitoring"`
	}
	if code := p.get(t, "/api/v1/dashboard", &d); code != http.StatusOK {
		t.Fatalf("GET /api/v1/dashboard: %d", code)
	}
	if len(d.Monitoring.RecentRejections) == 0 || len(d.Monitoring.RecentDeadLetters) == 0 || d.Monitoring.DeadLettered == 0 {
		t.Errorf("dashboard monitoring lacks rejections or dead letters: %+v", d.Monitoring)
	}
	assertMinutes(t, d.Monitoring.RecentRejections, "recorded_at", "cast_at")
	assertMinutes(t, d.Monitoring.RecentDeadLetters, "received_at")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.api+"/api/v1/stream", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			return
		}
	}
	t.Errorf("the live stream sent no event: %v", sc.Err())
}

// assertMinutes checks that every row's time fields are whole minutes.
func assertMinutes(t *testing.T, rows []map[string]any, fields ...string) {
	t.Helper()
	for _, row := range rows {
		for _, f := range fields {
			s, _ := row[f].(string)
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || !at.Equal(at.Truncate(time.Minute)) {
				t.Errorf("%s = %q, want a time to the minute (%v)", f, s, err)
			}
		}
	}
}

// roleCase is a statement tried as a role: refused with 42501, or allowed.
type roleCase struct {
	sql     string
	allowed bool
}

// tryAs runs each statement in its own transaction as role (SET LOCAL
// ROLE, from the owner's session), then rolls it back.
func tryAs(t *testing.T, pool *pgxpool.Pool, role string, cases []roleCase) {
	t.Helper()
	ctx := context.Background()
	var refused, done int
	defer func() { t.Logf("%s: %d statements refused, %d allowed, as expected", role, refused, done) }()
	for _, c := range cases {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
				t.Fatalf("set role %s: %v", role, err)
			}
			_, err := tx.Exec(ctx, c.sql)
			if err == nil {
				err = errRollback
			}
			return err
		})
		var pgErr *pgconn.PgError
		switch {
		case c.allowed && !errors.Is(err, errRollback):
			t.Errorf("%s: %s: %v, want it allowed", role, c.sql, err)
		case !c.allowed && (!errors.As(err, &pgErr) || pgErr.Code != "42501"):
			t.Errorf("%s: %s: %v, want permission denied (42501)", role, c.sql, err)
		case c.allowed:
			done++
		default:
			refused++
		}
	}
}

var errRollback = errors.New("rollback")

func denied(sqls ...string) []roleCase {
	out := make([]roleCase, 0, len(sqls))
	for _, s := range sqls {
		out = append(out, roleCase{sql: s})
	}
	return out
}

func allowed(sqls ...string) []roleCase {
	out := make([]roleCase, 0, len(sqls))
	for _, s := range sqls {
		out = append(out, roleCase{sql: s, allowed: true})
	}
	return out
}

// Each role is refused, by the database, every statement outside its job,
// and allowed the ones its job needs; before and after a replay's swap, and
// for a table added later (default privileges).
func TestEachRoleIsRefusedWhatItMayNotDo(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	ctx := context.Background()

	tallies := []string{"candidate_tallies", "region_tallies", "regions", "rejection_tallies", "timeline", "demographic_tallies"}
	reader := denied(
		// Ballot secrecy: not the ballots, not the register, not who was
		// rejected, not what a dead letter said.
		"SELECT * FROM ballots", "SELECT voter_id FROM ballots", "SELECT count(*) FROM ballots",
		"SELECT * FROM voters", "SELECT count(*) FROM voters",
		"SELECT voter_id FROM rejections", "SELECT vote_id, cast_at FROM rejections", "SELECT count(*) FROM rejections",
		"SELECT payload FROM dead_letters", "SELECT count(*) FROM dead_letters",
		"SELECT * FROM candidates", "SELECT biography, platform, photo_url FROM candidates",
		"SELECT * FROM intake.votes", "SELECT * FROM intake.outbox",
		// A held vote links a voter to a choice, as a ballot does.
		"SELECT * FROM held_votes", "SELECT count(*) FROM held_votes",
		// And no writes anywhere.
		"INSERT INTO candidate_tallies (candidate_id, votes) VALUES ('c-x', 1)",
		"UPDATE candidate_tallies SET votes = votes + 1",
		"DELETE FROM rejections_public", "DELETE FROM dead_letters_public",
		"DELETE FROM ballots", "TRUNCATE ballots", "DROP TABLE ballots", "CREATE TABLE evil (x int)",
		"INSERT INTO intake.votes (vote_id, station, mac) VALUES (gen_random_uuid(), 's', '')",
	)
	reader = append(reader, allowed(
		"SELECT candidate_id, name, party FROM candidates", "SELECT count(*) FROM candidates", "SELECT * FROM applied_offsets", "SELECT * FROM projection_meta",
		"SELECT * FROM goose_db_version", "SELECT * FROM intake.goose_db_version",
		"SELECT reason, cast_minute, recorded_minute FROM rejections_public",
		`SELECT topic, partition, "offset", reason, received_minute FROM dead_letters_public`,
		"SELECT held_votes, refused_registrations, closed_partitions FROM registration_state",
		"SELECT * FROM station_tallies", "SELECT * FROM registration_closures", "SELECT * FROM vote_schedules",
		"SELECT count(*) FROM refused_registrations", `SELECT partition, "offset" FROM misrouted_votes`,
		// One vote's status and leaves, through the functions that answer
		// for one vote_id and never name the choice.
		"SELECT status, reason FROM ballot_status('00000000-0000-4000-8000-000000000001')",
		// What the tiles publish anyway: leaves name a vote only by the
		// SHA-256 of its vote_id.
		"SELECT * FROM log_hashes", "SELECT leaf, vote_ref, body FROM log_leaves", "SELECT * FROM log_checkpoints",
		"SELECT * FROM log_cosignatures",
	)...)
	reader = append(reader, denied(
		// No list of vote_ids: the reader may not enumerate the votes, nor
		// their partitions and offsets.
		"SELECT vote_id FROM ballot_statuses", "SELECT count(*) FROM ballot_statuses",
		// Nor the epochs' per-partition offsets, nor the per-epoch counts.
		"SELECT * FROM log_epochs", "SELECT * FROM log_counts",
		// Nor write a tally through the projector's functions.
		"SELECT add_tallies(0::smallint, '{North}', '{c-ada}', '{default}', ARRAY[now()], '{1}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}')",
	)...)
	projector := denied(
		"DELETE FROM ballots", "TRUNCATE ballots", "DELETE FROM rejections", "TRUNCATE rejections",
		"DELETE FROM voters", "DELETE FROM candidates", "DELETE FROM dead_letters", "DELETE FROM applied_offsets",
		"DELETE FROM rejections_public", "DELETE FROM dead_letters_public", "DELETE FROM goose_db_version",
		"DROP TABLE ballots", "ALTER TABLE ballots ADD COLUMN x int", "CREATE TABLE evil (x int)",
		"DROP SCHEMA "+postgres.Schema+" CASCADE",
		"INSERT INTO intake.votes (vote_id, station, mac) VALUES (gen_random_uuid(), 's', '')",
		"DELETE FROM intake.votes",
		"DELETE FROM station_tallies", "DELETE FROM registration_closures", "DELETE FROM refused_registrations",
		"DELETE FROM vote_schedules", "TRUNCATE held_votes",
	)
	for _, table := range tallies {
		projector = append(projector, denied("DELETE FROM "+table, "TRUNCATE "+table)...)
	}
	// Decisions and the transparency log are written once: never updated.
	// Tallies change only through add_tallies.
	projector = append(projector, denied(
		"UPDATE ballots SET region = 'East'", "UPDATE rejections SET reason = 'unknown_voter'",
		"UPDATE held_votes SET message = ''", "UPDATE voters SET region = 'East'",
		"UPDATE candidates SET contest_id = 'other'", "UPDATE contests SET regions = '{}'",
		"UPDATE log_leaves SET body = ''", "UPDATE log_hashes SET hash = hash", "UPDATE log_epochs SET size = 0",
		"UPDATE log_counts SET n = 0", "UPDATE log_checkpoints SET note = ''", "UPDATE log_cosignatures SET line = ''",
		"DELETE FROM log_leaves", "TRUNCATE log_hashes", "UPDATE dead_letters SET reason = ''",
		"UPDATE vote_schedules SET polls_close = now()", "UPDATE registration_closures SET closed_at = now()",
		"UPDATE projection_meta SET built_by = 'x'",
		"UPDATE candidate_tallies SET votes = votes + 1", "INSERT INTO candidate_tallies (candidate_id, votes) VALUES ('c-x', 1)",
	)...)
	for _, table := range []string{"candidate_tallies", "region_tallies", "rejection_tallies", "timeline", "demographic_tallies",
		"station_tallies", "contest_turnout"} {
		projector = append(projector, denied("UPDATE "+table+" SET stripe = stripe")...)
	}
	projector = append(projector, allowed(
		"INSERT INTO ballots (voter_id, vote_id, region, cast_at) VALUES ('v-new', gen_random_uuid(), 'North', now())",
		"SELECT add_tallies(0::smallint, '{North}', '{c-ada}', '{default}', ARRAY[now()], '{1}', '{gender}', '{female}', '{c-ada}', '{1}', '{default}', '{unknown_voter}', '{1}', '{s-1}', '{counted}', '{1}')",
		"UPDATE candidates SET name = name", "UPDATE stations SET closed_at = closed_at",
		"UPDATE regions SET registered_voters = registered_voters",
		"UPDATE applied_offsets SET next_offset = next_offset", "SELECT count(*) FROM ballots",
		"SELECT count(*) FROM dead_letters_public",
		// Deciding a held vote takes it out of held_votes.
		"DELETE FROM held_votes WHERE vote_id = gen_random_uuid()",
	)...)
	intake := denied(
		"DELETE FROM intake.votes", "TRUNCATE intake.votes", "UPDATE intake.votes SET station = 'other'",
		"SELECT * FROM ballots", "SELECT sum(votes) FROM candidate_tallies", "DELETE FROM ballots",
		"DROP TABLE intake.outbox",
	)
	intake = append(intake, allowed(
		"INSERT INTO intake.votes (vote_id, station, mac) VALUES (gen_random_uuid(), 's', '')",
		"SELECT count(*) FROM intake.votes",
		"INSERT INTO intake.outbox (uuid, payload) VALUES ('x', '{}')",
		"DELETE FROM intake.outbox", "UPDATE intake.outbox SET acked = true",
		"SELECT * FROM goose_db_version",
	)...)
	check := func() {
		t.Helper()
		tryAs(t, p.pool, "votewatch_reader", reader)
		tryAs(t, p.pool, "votewatch_projector", projector)
		tryAs(t, p.pool, "votewatch_intake", intake)
	}
	check()

	// A replay swaps in a schema it built from scratch: the same holds there.
	if code, out := p.cli(t, "replay"); code != 0 {
		t.Fatalf("replay = %d:\n%s", code, out)
	}
	check()

	// A table a later migration adds is not readable by default, nor
	// deletable by the projector.
	if _, err := p.pool.Exec(ctx, "CREATE TABLE later (x int); INSERT INTO later VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	tryAs(t, p.pool, "votewatch_reader", denied("SELECT * FROM later"))
	tryAs(t, p.pool, "votewatch_projector", append(denied("DELETE FROM later", "TRUNCATE later"), allowed("INSERT INTO later VALUES (2)")...))
}

// runCommand runs a votewatch command as a process of its own until the
// test ends and returns the URL it prints ("… on http://ADDR…").
func runCommand(t *testing.T, args ...string) string {
	t.Helper()
	proc := testutil.Start(t, append([]string{"--log-level", "warn"}, args...)...)
	addr := regexp.MustCompile(`http://[0-9.:]+`)
	var url string
	testutil.Eventually(t, 30*time.Second, args[0]+" to listen", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("%v exited: %v\n%s", args, proc.Err(), proc.Output())
		}
		url = addr.FindString(proc.Output())
		return url != "", proc.Output()
	})
	return url
}

// The read API and the intake run as processes of their own, each with a
// login that has only its group's rights: a station's vote goes in through
// the intake and comes out counted through the read API, and the read API
// takes no votes.
func TestReadAPIAndIntakeRunApartWithTheirOwnLogins(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	brokers := strings.Join(p.kafka.Brokers, ",")
	tokens := "north-1=" + stationToken + "@West" // voter 231 is in the West

	readAPI := &pipeline{api: runCommand(t, "serve", "--intake=false", "--min-cell", "1", "--http", "127.0.0.1:0",
		"--database-url", p.loginDSN(t, "votewatch_reader"), "--kafka-brokers", brokers, "--station-tokens", tokens)}
	intakeAPI := &pipeline{api: runCommand(t, "intake", "--http", "127.0.0.1:0",
		"--database-url", p.loginDSN(t, "votewatch_intake"), "--kafka-brokers", brokers, "--station-tokens", tokens)}

	for _, api := range []*pipeline{readAPI, intakeAPI} {
		if code := api.get(t, "/readyz", nil); code != http.StatusOK {
			t.Errorf("%s/readyz: %d", api.api, code)
		}
	}
	if code, body, _ := readAPI.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(9101, e.voterIDs[231], "c-bob")); code != http.StatusNotFound {
		t.Errorf("serve --intake=false took a vote: %d %v", code, body)
	}
	if code, body, _ := intakeAPI.post(t, "/api/v1/votes", stationToken, "application/json", intakeVote(9102, e.voterIDs[231], "c-bob")); code != http.StatusAccepted {
		t.Fatalf("intake: %d %v", code, body)
	}
	readAPI.waitFor(t, e, 1)
	readAPI.readsEverything(t, e)

	// `status` needs no more than the reader's rights; `verify` reads the
	// ballots, so it needs the owner's.
	if code, out := testutil.Run(t, "--log-level", "error", "status", "--json",
		"--database-url", p.loginDSN(t, "votewatch_reader"), "--kafka-brokers", brokers); code != 0 {
		t.Errorf("status as votewatch_reader = %d:\n%s", code, out)
	}
	if code, out := testutil.Run(t, "--log-level", "error", "verify",
		"--database-url", p.loginDSN(t, "votewatch_reader"), "--kafka-brokers", brokers); code == 0 {
		t.Errorf("verify as votewatch_reader passed: it must not be able to read the ballots:\n%s", out)
	}
}

// The reader's one window on single votes, ballot_status, answers for one
// vote_id at a time and cannot be turned to read anything else: the reader
// cannot list the vote_ids, and shadowing the function's tables with
// temporary ones (the attack a function taking names from the caller's
// search path allowed) changes nothing it returns.
func TestBallotStatusesCannotBeShadowed(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.loginDSN(t, "votewatch_reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pgErr *pgconn.PgError
	if _, err := conn.Exec(ctx, "SELECT vote_id FROM "+postgres.Schema+".ballot_statuses"); !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("the reader listed the vote_ids: %v", err)
	}
	// Where the reader may create temporary objects at all (a database
	// whose owner did not revoke TEMPORARY), try to shadow the tables.
	if _, err := conn.Exec(ctx, "SET search_path = pg_temp, "+postgres.Schema); err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Exec(ctx, `CREATE TEMP VIEW ballots WITH (security_invoker=true) AS
		SELECT '00000000-0000-4000-8000-000000000000'::uuid AS vote_id, 'x=y' AS candidate_id`)
	_, _ = conn.Exec(ctx, `CREATE TEMP VIEW ballot_statuses WITH (security_invoker=true) AS
		SELECT '00000000-0000-4000-8000-000000000000'::uuid AS vote_id, 'rejected' AS status, 'x=y' AS reason`)
	_, _ = conn.Exec(ctx, `CREATE TEMP VIEW rejections WITH (security_invoker=true) AS
		SELECT '00000000-0000-4000-8000-000000000000'::uuid AS vote_id, string_agg(voter_id || '=' || candidate_id, ',') AS reason
		FROM `+postgres.Schema+`.ballots`)
	counted := 0
	for _, id := range []string{"00000000-0000-4000-8000-000000000000", fmt.Sprintf("01900000-0000-7000-8000-%012d", 1),
		fmt.Sprintf("01900000-0000-7000-8000-%012d", 2), fmt.Sprintf("01900000-0000-7000-8000-%012d", 3)} {
		rows, err := conn.Query(ctx, "SELECT status, coalesce(reason, '') FROM "+postgres.Schema+".ballot_status($1)", id)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var status, reason string
			if err := rows.Scan(&status, &reason); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(reason, "=") || id == "00000000-0000-4000-8000-000000000000" ||
				!slices.Contains([]string{"counted", "rejected", "pending"}, status) {
				t.Fatalf("ballot_status(%s) returned %s %q: the shadow was read", id, status, reason)
			}
			counted++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if counted == 0 {
		t.Fatal("ballot_status answered for none of the election's votes")
	}
}

// No column that names a voter, in any table or view of any schema, is
// readable by the read API's role: a table a later change adds is caught
// here, not by a list of known tables.
func TestTheReaderCanReadNoColumnNamingAVoter(t *testing.T) {
	p := startPipeline(t, 1)
	rows, err := p.pool.Query(context.Background(), `
		SELECT c.table_schema || '.' || c.table_name || '.' || c.column_name
		FROM information_schema.columns c
		WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
		  AND c.column_name IN ('voter_id', 'voter', 'voter_ids', 'name')
		  AND c.table_name NOT IN ('candidates', 'contests', 'stations')
		  AND has_column_privilege('votewatch_reader', format('%I.%I', c.table_schema, c.table_name), c.column_name, 'SELECT')`)
	if err != nil {
		t.Fatal(err)
	}
	readable, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(readable) > 0 {
		t.Errorf("votewatch_reader may read columns naming voters: %v", readable)
	}
}
