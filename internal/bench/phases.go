package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/metrics"
	"github.com/votewatch/votewatch/infra/postgres"
	"github.com/votewatch/votewatch/infra/simulator"
	"github.com/votewatch/votewatch/internal/app"
	"github.com/votewatch/votewatch/projections/read"
	"github.com/votewatch/votewatch/projections/trees"
)

// phase is how long the freshness phase offers votes (the read phase lasts
// twice as long).
// burst is how long the freshness phase at 50,000 votes/s offers them:
// shorter than a phase, as each second of it takes 50,000 voters.
func (c *Bench) burst() time.Duration { return c.phase() / 2 }

func (c *Bench) phase() time.Duration {
	if c.Quick {
		return 3 * time.Second
	}
	return 10 * time.Second
}

// measureNaive runs the usual Watermill handler over the same votes: one
// transaction per message, concurrent across partitions, into a schema of
// its own that starts with the same register. It stops after a sample.
func (c *Bench) measureNaive(ctx context.Context, env *Env, dsn string, live *pgxpool.Pool, kcfg kafka.Config, klog *kafka.Log) (benchResult, error) {
	pool, err := registered(ctx, env, dsn, live, "bench_naive", 64)
	if err != nil {
		return benchResult{}, err
	}
	defer pool.Close()
	// The naive projector starts at the votes: the register is in place.
	for _, t := range []string{domain.TopicCandidates, domain.TopicVoters} {
		end, err := klog.HighWatermarks(ctx, t)
		if err != nil {
			return benchResult{}, err
		}
		if err := kafka.CommitOffsets(ctx, kcfg, "bench-naive."+t, t, end); err != nil {
			return benchResult{}, err
		}
	}
	results, done, stop, err := runProjector(ctx, env, pool, kcfg, klog, app.ProjectorConfig{
		Group: "bench-naive", BatchSize: 1, Writers: int(c.Partitions), SessionTimeout: 10 * time.Second,
	})
	if err != nil {
		return benchResult{}, err
	}
	defer stop()
	sample := min(int64(c.Votes), 20_000)
	fmt.Fprintf(env.Stdout, "naive baseline: one transaction per message, %d votes…\n", sample)
	counted, el, err := timeCounting(ctx, done, results, sample)
	if err != nil {
		return benchResult{}, fmt.Errorf("naive: %w", err)
	}
	return benchResult{Name: "naive_votes", Count: counted, Seconds: el.Seconds(), PerSec: float64(counted) / el.Seconds(),
		Note: "the usual handler: one transaction per message (sample)"}, nil
}

// measureReads runs the live projector and the API, then measures (1) how
// soon a vote published at 10k votes/s is visible in GET /api/v1/summary,
// and (2) the API's throughput with 64 concurrent clients while votes flow.
func (c *Bench) measureReads(ctx context.Context, env *Env, pool *pgxpool.Pool, klog *kafka.Log, plan *simulator.VotePlan, pub *kafka.Publisher) ([]benchResult, error) {
	kcfg := kafka.Config{Brokers: c.brokers, Partitions: c.Partitions}
	_, _, stopProjector, err := runProjector(ctx, env, pool, kcfg, klog, c.liveFlags())
	if err != nil {
		return nil, err
	}
	defer stopProjector()
	srv, err := app.NewAPIServer(env.Log, "127.0.0.1:0", pool, klog.HighWatermarks, metrics.New(), nil, 1)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(runCtx) })
	defer func() { stop(); wg.Wait() }()
	base := "http://" + srv.Addr()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 10 * time.Second}
	votesCast := func() (int64, error) {
		resp, err := client.Get(base + "/api/v1/summary")
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var s struct {
			VotesCast int64 `json:"votes_cast"`
		}
		return s.VotesCast, json.NewDecoder(resp.Body).Decode(&s)
	}
	start, err := votesCast()
	if err != nil {
		return nil, err
	}

	// Offer votes at a steady rate, a batch every 20 ms, noting when each
	// batch was published.
	offer := func(rate int, d time.Duration, published func(total int64, at time.Time)) error {
		tick := 20 * time.Millisecond
		per := rate * int(tick.Milliseconds()) / 1000
		t := time.NewTicker(tick)
		defer t.Stop()
		var total int64
		for end := time.Now().Add(d); time.Now().Before(end); <-t.C {
			var msgs []*message.Message
			for range per {
				m, ok := plan.Next(time.Now())
				if !ok {
					return fmt.Errorf("the election ran out of voters")
				}
				msgs = append(msgs, m...)
			}
			if err := pub.Publish(domain.TopicVotes, msgs...); err != nil {
				return err
			}
			total += int64(per)
			if published != nil {
				published(total, time.Now())
			}
		}
		return nil
	}

	// freshness offers rate votes/s for d and measures each batch's
	// publish → visible time; it returns when every offered vote is
	// visible.
	freshness := func(rate int, d time.Duration, name string) ([]benchResult, int64, error) {
		fmt.Fprintf(env.Stdout, "freshness: %d votes/s offered for %s…\n", rate, d)
		type mark struct {
			total int64
			at    time.Time
		}
		var mu sync.Mutex
		var marks []mark
		var lat []time.Duration
		pollDone := make(chan struct{})
		var offered atomic.Int64
		before, err := votesCast()
		if err != nil {
			return nil, 0, err
		}
		go func() {
			defer close(pollDone)
			for {
				n, err := votesCast()
				now := time.Now()
				if err == nil {
					mu.Lock()
					for len(marks) > 0 && marks[0].total <= n-before {
						lat = append(lat, now.Sub(marks[0].at))
						marks = marks[1:]
					}
					left := len(marks)
					mu.Unlock()
					if offered.Load() < 0 && left == 0 {
						return
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		var offeredN int64
		err = offer(rate, d, func(total int64, at time.Time) {
			mu.Lock()
			marks = append(marks, mark{total, at})
			mu.Unlock()
			offeredN = total
		})
		offered.Store(-1)
		select {
		case <-pollDone:
		case <-time.After(60 * time.Second):
			return nil, 0, fmt.Errorf("freshness at %d votes/s: votes not visible after 60 s", rate)
		}
		if err != nil {
			return nil, 0, err
		}
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		return []benchResult{
			{Name: name + "_votes", Count: offeredN, Seconds: d.Seconds(), PerSec: float64(offeredN) / d.Seconds(), Note: fmt.Sprintf("offered during the freshness phase (%d votes/s asked)", rate)},
			{Name: name + "_p50_ms", Count: int64(len(lat)), PerSec: float64(q(0.50).Microseconds()) / 1000, Note: "publish → visible in GET /api/v1/summary, median (ms)"},
			{Name: name + "_p99_ms", Count: int64(len(lat)), PerSec: float64(q(0.99).Microseconds()) / 1000, Note: "publish → visible in GET /api/v1/summary, 99th percentile (ms)"},
		}, offeredN, nil
	}
	results, offeredN, err := freshness(10_000, c.phase(), "freshness")
	if err != nil {
		return nil, err
	}
	burst, burstN, err := freshness(50_000, c.burst(), "freshness50k")
	if err != nil {
		return nil, err
	}
	results = append(results, burst...)
	offeredN += burstN

	// Reads under load while 2,000 votes/s flow.
	flowDone := make(chan error, 1)
	var flowN atomic.Int64
	go func() {
		flowDone <- offer(2_000, 2*c.phase(), func(total int64, _ time.Time) { flowN.Store(total) })
	}()
	for _, path := range []string{"/api/v1/summary", "/api/v1/regions"} {
		r, err := loadTest(ctx, client, base+path, 64, c.phase())
		if err != nil {
			return nil, err
		}
		results = append(results, r...)
	}
	if err := <-flowDone; err != nil {
		return nil, err
	}
	results = append(results, benchResult{Name: "read_votes", Count: flowN.Load(), Seconds: 2 * c.phase().Seconds(), PerSec: float64(flowN.Load()) / (2 * c.phase().Seconds()), Note: "votes flowing during the read phase"})
	// Wait for every offered vote to be counted before the replay.
	want := start + offeredN + flowN.Load()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n, err := votesCast()
		if err == nil && n >= want {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("read phase: %d votes counted, want %d", n, want)
		}
	}
	return results, nil
}

// loadTest hammers url with clients concurrent clients for d and returns
// requests/s and the 99th percentile latency.
func loadTest(ctx context.Context, client *http.Client, url string, clients int, d time.Duration) ([]benchResult, error) {
	var mu sync.Mutex
	var all []time.Duration
	var failures atomic.Int64
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			buf := make([]byte, 64<<10)
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Get(url)
				if err != nil {
					failures.Add(1)
					continue
				}
				for {
					if _, err := resp.Body.Read(buf); err != nil {
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if f := failures.Load(); f > 0 {
		return nil, fmt.Errorf("load test %s: %d failed requests", url, f)
	}
	slices.Sort(all)
	name := "read_summary"
	if strings.HasSuffix(url, "/regions") {
		name = "read_regions"
	}
	p99 := all[min(len(all)-1, int(0.99*float64(len(all))))]
	return []benchResult{
		{Name: name + "_rps", Count: int64(len(all)), Seconds: d.Seconds(), PerSec: float64(len(all)) / d.Seconds(), Note: fmt.Sprintf("%d concurrent clients, votes flowing", clients)},
		{Name: name + "_p99_ms", Count: int64(len(all)), PerSec: float64(p99.Microseconds()) / 1000, Note: "99th percentile latency (ms)"},
	}, nil
}

// measureConsumer projects the votes already in the log (the live phase's)
// into a schema of its own with the given Kafka consumer, the register
// copied in as for the naive baseline, and times it from the first counted
// vote to the last. Both consumers run it, one after the other, on the
// same log and the same database, so they compare like for like; neither
// races a publisher.
//
// With tree, the transparency log is on (checkpoints every second), and a
// second result says how long after the last vote was counted the trees
// covered every vote.
func (c *Bench) measureConsumer(ctx context.Context, env *Env, dsn string, live *pgxpool.Pool, kcfg kafka.Config, klog *kafka.Log, consumer string, tree bool) ([]benchResult, error) {
	name := strings.ReplaceAll(consumer, "-", "_")
	if tree {
		name += "_tree"
	}
	pool, err := registered(ctx, env, dsn, live, "bench_"+name, 16)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	group := "bench-" + name
	for _, t := range []string{domain.TopicContests, domain.TopicCandidates, domain.TopicVoters} {
		end, err := klog.HighWatermarks(ctx, t)
		if err != nil {
			return nil, err
		}
		if err := kafka.CommitOffsets(ctx, kcfg, group+"."+t, t, end); err != nil {
			return nil, err
		}
	}
	f := c.liveFlags()
	f.Group, f.Consumer = group, consumer
	note := fmt.Sprintf("the same votes, read from the log by the %s consumer (%d partitions), same batches", consumer, c.Partitions)
	if tree {
		dir, err := os.MkdirTemp("", "votewatch-bench-keys-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		f.Transparency = app.TransparencyConfig{CheckpointKey: filepath.Join(dir, "key"), ElectionSecret: filepath.Join(dir, "secret"),
			Every: time.Second, Election: "bench", CreateKeys: true}
		note += ", with the transparency log on (the tree grown and a checkpoint signed every second)"
	}
	results, done, stop, err := runProjector(ctx, env, pool, kcfg, klog, f)
	if err != nil {
		return nil, err
	}
	defer stop()
	fmt.Fprintf(env.Stdout, "consumer %s: projecting the %d votes in the log…\n", name, c.Votes)
	counted, el, err := timeCounting(ctx, done, results, int64(c.Votes))
	if err != nil {
		return nil, fmt.Errorf("with %s: %w", name, err)
	}
	out := []benchResult{{Name: "consumer_" + name, Count: counted, Seconds: el.Seconds(), PerSec: float64(counted) / el.Seconds(), Note: note}}
	if tree {
		ends, err := klog.HighWatermarks(ctx, domain.TopicVotes)
		if err != nil {
			return nil, err
		}
		var all int64
		for _, e := range ends {
			all += e
		}
		start := time.Now()
		leaves := func(ctx context.Context) (int64, error) { return trees.TreeLeaves(ctx, pool) }
		if _, err := waitUntil(ctx, done, leaves, func(n int64) bool { return n >= all }); err != nil {
			return nil, fmt.Errorf("wait for the trees: %w", err)
		}
		lag := time.Since(start)
		out = append(out, benchResult{Name: "tree_catch_up", Count: all, Seconds: lag.Seconds(),
			Note: fmt.Sprintf("after the last vote was counted, until the trees covered all %d messages of the votes topic", all)})
	}
	return out, nil
}

// timeCounting times a projector from its first counted vote until it has
// counted want, and returns the votes counted in that time.
func timeCounting(ctx context.Context, done <-chan error, results *read.Results, want int64) (int64, time.Duration, error) {
	first, err := waitUntil(ctx, done, results.Summary, func(s read.Summary) bool { return s.VotesCast > 0 })
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	last, err := waitUntil(ctx, done, results.Summary, func(s read.Summary) bool { return s.VotesCast >= want })
	if err != nil {
		return 0, 0, err
	}
	return last.VotesCast - first.VotesCast, time.Since(start), nil
}

// registered opens a schema of its own for a phase, migrated, with the
// live projection's register copied in: the phase projects the same votes
// from the same starting point.
func registered(ctx context.Context, env *Env, dsn string, live *pgxpool.Pool, schema string, conns int32) (*pgxpool.Pool, error) {
	pool, err := postgres.ConnectSchema(ctx, dsn, schema, conns)
	if err != nil {
		return nil, err
	}
	if err := app.Migrate(ctx, env.Log, pool); err != nil {
		pool.Close()
		return nil, err
	}
	if err := postgres.CopyRegister(ctx, live, schema); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
