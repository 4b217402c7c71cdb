package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/internal/testutil"
)

// realtime_voting's producers, as its main.py and voting.py run them:
// confluent-kafka's SerializingProducer with its default partitioner,
// consistent_random, which is librdkafka's CRC32 (IEEE) of the key modulo
// the partition count, not murmur2.
func confluentProducer(t *testing.T, brokers []string) *kgo.Client {
	t.Helper()
	crc := kgo.BasicConsistentPartitioner(func(string) func(*kgo.Record, int) int {
		return func(r *kgo.Record, n int) int { return int(crc32.ChecksumIEEE(r.Key) % uint32(n)) }
	})
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(crc))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// pyField is one key of a Python dict, in insertion order.
type pyField struct {
	key   string
	value any
}

// pyDumps encodes fields as Python's json.dumps (simplejson's, which the
// scripts use) does by default: insertion order, ", " and ": ".
func pyDumps(t *testing.T, fields []pyField) string {
	t.Helper()
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		k, _ := json.Marshal(f.key)
		var v string
		if nested, ok := f.value.([]pyField); ok {
			v = pyDumps(t, nested)
		} else {
			b, err := json.Marshal(f.value)
			if err != nil {
				t.Fatal(err)
			}
			v = string(b)
		}
		parts = append(parts, string(k)+": "+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// TestRealtimeVotingScriptsDriveVotewatchUnchanged is issue 25's done-when:
// realtime_voting's database (its main.py's tables) holds 3 candidates, 500
// voters and their 500 votes; both topics' messages are built and
// partitioned as its scripts build them, some sent twice; `import
// --from-seed-db` brings the candidates in halfway through the votes, and
// again to no effect. votewatch's per-candidate and per-state counts then
// equal that database's; a second vote by one voter, produced straight to
// votes in votewatch's contract, shares the voter's partition with the
// translated first and is a duplicate_voter; a replay decides the same.
func TestRealtimeVotingScriptsDriveVotewatchUnchanged(t *testing.T) {
	p := startPipeline(t, 8)
	ctx := context.Background()

	// The bridge, as `votewatch project --realtime-voting` (or the demo)
	// runs it: it creates voters_topic and votes_topic, which the scripts
	// need to exist.
	bridge := app.New(testLogger())
	t.Cleanup(bridge.Close)
	if err := bridge.OpenLog(p.kafka); err != nil {
		t.Fatal(err)
	}
	if _, err := bridge.StartRealtimeVotingBridge(ctx, app.BridgeConfig{Group: "test-bridge", SessionTimeout: 6 * time.Second}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bridge.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("bridge: %v", err)
		}
	})

	// realtime_voting's database, its tables as main.py creates them.
	seedDSN := testutil.EmptyDatabaseURL(t)
	seed, err := pgx.Connect(ctx, seedDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seed.Close(context.Background()) })
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS candidates (candidate_id VARCHAR(255) PRIMARY KEY, candidate_name VARCHAR(255),
			party_affiliation VARCHAR(255), biography TEXT, campaign_platform TEXT, photo_url TEXT)`,
		`CREATE TABLE IF NOT EXISTS voters (voter_id VARCHAR(255) PRIMARY KEY, voter_name VARCHAR(255),
			date_of_birth VARCHAR(255), gender VARCHAR(255), nationality VARCHAR(255), registration_number VARCHAR(255),
			address_street VARCHAR(255), address_city VARCHAR(255), address_state VARCHAR(255), address_country VARCHAR(255),
			address_postcode VARCHAR(255), email VARCHAR(255), phone_number VARCHAR(255), cell_number VARCHAR(255),
			picture TEXT, registered_age INTEGER)`,
		`CREATE TABLE IF NOT EXISTS votes (voter_id VARCHAR(255) UNIQUE, candidate_id VARCHAR(255),
			voting_time TIMESTAMP, vote int DEFAULT 1, PRIMARY KEY (voter_id, candidate_id))`,
	} {
		if _, err := seed.Exec(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}

	rng := rand.New(rand.NewPCG(25, 2026))
	parties := []string{"Management Party", "Savior Party", "Tech Republic Party"}
	var candidates [][]pyField // row_to_json(candidates): its columns in order
	for i := range 3 {
		c := []pyField{
			{"candidate_id", uuid.NewString()},
			{"candidate_name", []string{"Richard Holland", "Abigail Mitchell", "Tyrone Ray"}[i]},
			{"party_affiliation", parties[i%3]},
			{"biography", "A brief bio of the candidate."},
			{"campaign_platform", "Key campaign promises or platform."},
			{"photo_url", fmt.Sprintf("https://randomuser.me/api/portraits/%s/%d.jpg", []string{"men", "women"}[i%2], i)},
		}
		if _, err := seed.Exec(ctx, `INSERT INTO candidates VALUES ($1, $2, $3, $4, $5, $6)`,
			c[0].value, c[1].value, c[2].value, c[3].value, c[4].value, c[5].value); err != nil {
			t.Fatal(err)
		}
		candidates = append(candidates, c)
	}

	// main.py: each voter into its voters table, then onto voters_topic.
	states := []struct{ state, city string }{
		{"West Yorkshire", "Leeds"}, {"Greater London", "London"}, {"Merseyside", "Liverpool"},
		{"Tyne and Wear", "Newcastle upon Tyne"}, {"County Down", "Newry"}, {"Gwynedd County", "Bangor"},
	}
	producer := confluentProducer(t, p.kafka.Brokers)
	produce := func(topic, key, value string, times int) {
		t.Helper()
		for range times {
			if err := producer.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(value)}).FirstErr(); err != nil {
				t.Fatalf("produce to %s: %v", topic, err)
			}
		}
	}
	const voters = 500
	voterRecords := make([][]pyField, 0, voters)
	for i := range voters {
		where := states[rng.IntN(len(states))]
		gender := []string{"male", "female"}[rng.IntN(2)]
		born := time.Date(1940+rng.IntN(60), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), 0, 0, 0, time.UTC)
		var postcode any = fmt.Sprintf("LS%d %dAB", rng.IntN(30), rng.IntN(10))
		if i%5 == 0 {
			postcode = 10000 + rng.IntN(80000) // randomuser gives numbers for some countries
		}
		address := []pyField{
			{"street", fmt.Sprintf("%d High Street", 1+rng.IntN(200))},
			{"city", where.city}, {"state", where.state}, {"country", "United Kingdom"}, {"postcode", postcode},
		}
		v := []pyField{
			{"voter_id", uuid.NewString()},
			{"voter_name", fmt.Sprintf("Voter %d", i)},
			{"date_of_birth", born.Format("2006-01-02T15:04:05.000Z")},
			{"gender", gender},
			{"nationality", "GB"},
			{"registration_number", fmt.Sprintf("tinybird%03d", i)},
			{"address", address},
			{"email", fmt.Sprintf("voter%d@example.com", i)},
			{"phone_number", fmt.Sprintf("016977 %04d", i)},
			{"cell_number", fmt.Sprintf("07700 9%05d", i)},
			{"picture", fmt.Sprintf("https://randomuser.me/api/portraits/%s/%d.jpg", map[string]string{"male": "men", "female": "women"}[gender], i%100)},
			{"registered_age", 1 + rng.IntN(20)},
		}
		if _, err := seed.Exec(ctx, `INSERT INTO voters VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			v[0].value, v[1].value, v[2].value, v[3].value, v[4].value, v[5].value,
			address[0].value, address[1].value, address[2].value, address[3].value, fmt.Sprint(postcode),
			v[7].value, v[8].value, v[9].value, v[10].value, v[11].value); err != nil {
			t.Fatal(err)
		}
		voterRecords = append(voterRecords, v)
		// Every tenth voter is delivered twice (a producer retry).
		produce(domain.TopicRealtimeVoters, v[0].value.(string), pyDumps(t, v), 1+btoi(i%10 == 0))
	}

	// voting.py: for each voter, a random candidate; the vote into its
	// votes table, then voter | candidate | {voting_time, vote} onto
	// votes_topic.
	castVote := func(i int) {
		t.Helper()
		v := voterRecords[i]
		c := candidates[rng.IntN(len(candidates))]
		votingTime := time.Now().UTC().Format(time.DateTime)
		merged := append(append(append([]pyField{}, v...), c...), pyField{"voting_time", votingTime}, pyField{"vote", 1})
		if _, err := seed.Exec(ctx, `INSERT INTO votes (voter_id, candidate_id, voting_time) VALUES ($1, $2, $3)`,
			v[0].value, c[0].value, votingTime); err != nil {
			t.Fatal(err)
		}
		// Every seventh vote is delivered twice.
		produce(domain.TopicRealtimeVotes, v[0].value.(string), pyDumps(t, merged), 1+btoi(i%7 == 0))
	}
	for i := range voters / 2 {
		castVote(i)
	}

	importSeed := func() string {
		t.Helper()
		code, out := p.importRoll(t, "--from-seed-db", seedDSN)
		if code != 0 {
			t.Fatalf("import --from-seed-db = %d:\n%s", code, out)
		}
		return out
	}
	// The candidates exist only in realtime_voting's database until now:
	// the votes so far wait for them (registration is open, as it always
	// is in realtime_voting).
	if out := importSeed(); !strings.Contains(out, "valid: 3 candidates, 500 voters") || !strings.Contains(out, "published 3 candidates") {
		t.Fatalf("import --from-seed-db:\n%s", out)
	}
	for i := voters / 2; i < voters; i++ {
		castVote(i)
	}
	// A message of neither shape.
	produce(domain.TopicRealtimeVotes, "v-x", `{"voter": "v-x", "choice": "nobody"}`, 1)

	// The other half of the votes go through the bridge while this runs.
	if out := importSeed(); !strings.Contains(out, "published 0 candidates and 0 voters (3 candidates and 500 voters already on the log)") {
		t.Errorf("import --from-seed-db run again published something:\n%s", out)
	}

	// realtime_voting's own figures, from its votes table.
	perCandidate := map[string]int64{}
	perState := map[string]int64{}
	rows, err := seed.Query(ctx, `SELECT v.candidate_id, r.address_state, count(*) FROM votes v
		JOIN voters r USING (voter_id) GROUP BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var candidate, state string
		var n int64
		if err := rows.Scan(&candidate, &state, &n); err != nil {
			t.Fatal(err)
		}
		perCandidate[candidate] += n
		perState[state+"/"+candidate] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// votewatch's, from the projection's tallies (the exact figures: the
	// public API may suppress small cells).
	testutil.Eventually(t, 90*time.Second, "every realtime_voting vote counted", func() (bool, string) {
		var counted, rejected int64
		if err := p.pool.QueryRow(ctx, `SELECT (SELECT coalesce(sum(votes), 0) FROM candidate_tallies_summed),
			(SELECT coalesce(sum(count), 0) FROM rejection_tallies_summed)`).Scan(&counted, &rejected); err != nil {
			return false, err.Error()
		}
		return counted == voters, fmt.Sprintf("%d counted, %d rejected", counted, rejected)
	})
	var rejected, held int64
	if err := p.pool.QueryRow(ctx, `SELECT (SELECT coalesce(sum(count), 0) FROM rejection_tallies_summed), (SELECT count(*) FROM held_votes)`).
		Scan(&rejected, &held); err != nil {
		t.Fatal(err)
	}
	if rejected != 0 || held != 0 {
		t.Errorf("%d votes rejected and %d held; redeliveries must be repeats", rejected, held)
	}

	// Both kinds of producer: a voter who voted through votes_topic votes
	// again straight onto votes, in votewatch's contract, murmur2-keyed
	// (franz-go's default partitioner, as the Java client). The bridge put
	// the first on that voter's partition too, so log order decides: a
	// duplicate_voter, live and in the replay below.
	again := voterRecords[3][0].value.(string)
	p.produce(t, record(domain.TopicVotes, again, map[string]string{
		"vote_id": uuid.NewString(), "voter_id": again, "candidate_id": candidates[0][0].value.(string),
		"cast_at": time.Now().UTC().Format(time.RFC3339),
	}))
	testutil.Eventually(t, 60*time.Second, "the direct second vote rejected", func() (bool, string) {
		var dup int64
		if err := p.pool.QueryRow(ctx, `SELECT coalesce(sum(count), 0) FROM rejection_tallies_summed WHERE reason = 'duplicate_voter'`).Scan(&dup); err != nil {
			return false, err.Error()
		}
		return dup == 1, fmt.Sprintf("%d duplicate_voter", dup)
	})
	p.waitQuiet(t, "test-projector")
	ends, err := p.klog.HighWatermarks(ctx, domain.TopicVotes)
	if err != nil {
		t.Fatal(err)
	}
	var inVotes int64
	for _, e := range ends {
		inVotes += e
	}
	partitions := map[int32]int{}
	for _, r := range testutil.ReadTopic(t, p.kafka, domain.TopicVotes, int(inVotes), 30*time.Second) {
		if string(r.Key) == again {
			partitions[r.Partition]++
		}
	}
	if len(partitions) != 1 {
		t.Errorf("voter %s's votes are on partitions %v of votes, want one", again, partitions)
	}

	gotCandidate := map[string]int64{}
	gotState := map[string]int64{}
	rows, err = p.pool.Query(ctx, `SELECT region, candidate_id, votes FROM region_tallies_summed WHERE votes > 0`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var region, candidate string
		var n int64
		if err := rows.Scan(&region, &candidate, &n); err != nil {
			t.Fatal(err)
		}
		gotState[region+"/"+candidate] = n
		gotCandidate[candidate] += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotCandidate) != fmt.Sprint(perCandidate) {
		t.Errorf("per candidate: votewatch %v, realtime_voting's votes table %v", gotCandidate, perCandidate)
	}
	if fmt.Sprint(gotState) != fmt.Sprint(perState) {
		t.Errorf("per state and candidate: votewatch %v, realtime_voting's votes table %v", gotState, perState)
	}
	// The message of neither shape is in votes_topic.dlq with its error.
	dead := testutil.ReadTopic(t, p.kafka, domain.DeadLetterTopic(domain.TopicRealtimeVotes), 1, 30*time.Second)
	if len(dead) != 1 {
		t.Fatalf("votes_topic.dlq holds %d messages, want 1", len(dead))
	}
	var reason string
	for _, h := range dead[0].Headers {
		if h.Key == "reason_poisoned" {
			reason = string(h.Value)
		}
	}
	if !strings.Contains(reason, "voter_id") {
		t.Errorf("dead letter reason = %q, want the error naming voter_id", reason)
	}

	// Nothing votewatch does not use reached its log: no e-mail, phone,
	// street or picture, no candidate record inside a vote.
	for _, topic := range []string{domain.TopicVoters, domain.TopicVotes} {
		ends, err := p.klog.HighWatermarks(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, e := range ends {
			n += e
		}
		for _, r := range testutil.ReadTopic(t, p.kafka, topic, int(n), 30*time.Second) {
			for _, leaked := range []string{"@example.com", "016977", "High Street", "randomuser", "tinybird", "Party", "address"} {
				if strings.Contains(string(r.Value), leaked) {
					t.Fatalf("%s carries %q: %s", topic, leaked, r.Value)
				}
			}
		}
	}

	if code, out := p.cli(t, "replay", "--verify"); code != 0 || !strings.Contains(out, "identical") {
		t.Errorf("replay --verify: exit %d\n%s", code, out)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A realtime_voting database with rows votewatch cannot register is
// refused whole: every bad row is named, and nothing is published.
func TestImportFromSeedDBRefusesBadRowsAndPublishesNothing(t *testing.T) {
	kcfg := testutil.Kafka(t, 2)
	ctx := context.Background()
	seedDSN := testutil.EmptyDatabaseURL(t)
	seed, err := pgx.Connect(ctx, seedDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close(ctx)
	for _, stmt := range []string{
		`CREATE TABLE candidates (candidate_id VARCHAR(255) PRIMARY KEY, candidate_name VARCHAR(255),
			party_affiliation VARCHAR(255), biography TEXT, campaign_platform TEXT, photo_url TEXT)`,
		`CREATE TABLE voters (voter_id VARCHAR(255) PRIMARY KEY, voter_name VARCHAR(255), date_of_birth VARCHAR(255),
			gender VARCHAR(255), address_city VARCHAR(255), address_state VARCHAR(255), email VARCHAR(255))`,
		`INSERT INTO candidates VALUES ('c-1', 'Richard Holland', 'Management Party', 'bio', 'platform', 'https://example.org/1.jpg'),
			('c-2', 'Abigail Mitchell', NULL, 'bio', 'platform', 'not a url')`,
		`INSERT INTO voters VALUES ('v-1', 'Ann', '1961-04-09T10:00:00.000Z', 'female', 'Leeds', 'West Yorkshire', 'ann@example.com'),
			('v-2', 'Ben', '09/04/1961', 'male', 'Leeds', 'West Yorkshire', 'ben@example.com'),
			('v-3', 'Cat', '1971-01-01T10:00:00.000Z', 'female', 'Leeds', '', 'cat@example.com')`,
	} {
		if _, err := seed.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	code, out := testutil.Run(t, "--log-level", "warn", "import", "--kafka-brokers", strings.Join(kcfg.Brokers, ","), "--from-seed-db", seedDSN)
	if code == 0 {
		t.Fatalf("a database with bad rows was imported:\n%s", out)
	}
	for _, want := range []string{`candidates row "c-2": photo_url`, `voters row "v-2": date_of_birth`, `voters row "v-3": address.state`, "nothing was published"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	klog, err := kafka.NewLog(kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer klog.Close()
	for _, topic := range []string{domain.TopicCandidates, domain.TopicVoters, domain.TopicOperatorActions} {
		ends, err := klog.HighWatermarks(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for part, end := range ends {
			if end != 0 {
				t.Errorf("%s partition %d holds %d events after a refused import", topic, part, end)
			}
		}
	}
}
