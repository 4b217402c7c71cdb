package systemtest

import (
	"context"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/votewatch/votewatch/infra/kafka"
	"github.com/votewatch/votewatch/infra/simulator"
)

// newFaultProxy starts a toxiproxy TCP proxy on a free loopback port in
// front of upstream.
func newFaultProxy(t *testing.T, name, upstream string) *toxiproxy.Proxy {
	t.Helper()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	proxy := toxiproxy.NewProxy(srv, name, "127.0.0.1:0", upstream)
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	return proxy
}

func addToxic(t *testing.T, p *toxiproxy.Proxy, json string) {
	t.Helper()
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(json)); err != nil {
		t.Fatal(err)
	}
}

func removeToxic(t *testing.T, p *toxiproxy.Proxy, name string) {
	t.Helper()
	if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

// advertised makes a listener report another address: the broker then
// tells clients to connect through the proxy, not around it.
type advertised struct {
	net.Listener
	addr net.Addr
}

func (a advertised) Addr() net.Addr { return a.addr }

// The projector and the publishers talk to Kafka and PostgreSQL through
// fault-injecting proxies (toxiproxy, in-process): latency, connections
// reset, and each link cut for seconds and restored. They reconnect by
// themselves and every vote is counted exactly once.
func TestNetworkFaultsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("network fault injection")
	}
	ctx := context.Background()

	// PostgreSQL on TCP, behind a proxy.
	cluster, _ := startPrivateCluster(t, false)
	pgProxy := newFaultProxy(t, "postgres", "127.0.0.1:"+strconv.Itoa(cluster.Port()))
	dsn, err := url.Parse(cluster.DSN())
	if err != nil {
		t.Fatal(err)
	}
	dsn.Host = pgProxy.Listen
	q := dsn.Query()
	q.Del("host")
	q.Del("port")
	dsn.RawQuery = q.Encode()

	// Kafka behind a proxy, advertising the proxy's address.
	brokerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kafkaProxy := newFaultProxy(t, "kafka", brokerLn.Addr().String())
	proxyAddr, _ := net.ResolveTCPAddr("tcp", kafkaProxy.Listen)
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second),
		kfake.ListenFn(func(string, string) (net.Listener, error) { return advertised{brokerLn, proxyAddr}, nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	kcfg := kafka.Config{Brokers: []string{kafkaProxy.Listen}, Partitions: 32}
	if err := kafka.EnsureTopics(ctx, kcfg, kafka.EventTopics(32)); err != nil {
		t.Fatal(err)
	}

	p := startSystem(t, system{projector: true, kafka: &kcfg, dsn: dsn.String()})
	e := p.registerElection(t, 20_000)
	plan := simulator.NewVotePlan(e, simulator.Faults{Redeliveries: 0.01, DoubleVotes: 0.01})
	want := newTruth()
	publish := func(n int) {
		t.Helper()
		if err := publishWithFaults(p.kafka, e, plan, n, &want); err != nil {
			t.Fatal(err)
		}
	}
	settle := func(what string) {
		t.Helper()
		p.settle(t, want, 90*time.Second, what)
	}

	// 1. Latency with jitter on both links, both ways.
	for _, px := range []*toxiproxy.Proxy{pgProxy, kafkaProxy} {
		addToxic(t, px, `{"name":"slow_down","type":"latency","stream":"downstream","attributes":{"latency":10,"jitter":5}}`)
		addToxic(t, px, `{"name":"slow_up","type":"latency","stream":"upstream","attributes":{"latency":5,"jitter":5}}`)
	}
	publish(1_000)
	settle("votes through slow links")
	for _, px := range []*toxiproxy.Proxy{pgProxy, kafkaProxy} {
		removeToxic(t, px, "slow_down")
		removeToxic(t, px, "slow_up")
	}

	// 2. The database link resets every connection for 3 s while votes arrive.
	failed := p.failedBatches(t)
	addToxic(t, pgProxy, `{"name":"reset","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`)
	publish(2_000)
	p.waitFailing(t, failed, 3, "the projector failing batches on reset connections")
	removeToxic(t, pgProxy, "reset")
	settle("votes after database resets")

	// 3. The database link cut for 5 s while votes arrive, then restored.
	failed = p.failedBatches(t)
	pgProxy.Stop()
	publish(2_000)
	p.waitFailing(t, failed, 3, "the projector failing batches on the cut link")
	if err := pgProxy.Start(); err != nil {
		t.Fatal(err)
	}
	settle("votes after the database link came back")

	// 4. The Kafka link cut for 5 s (the projector's consumers and the
	// publisher both lose it), then restored; the same publisher goes on.
	kafkaProxy.Stop()
	// The fault is the cut's length, shorter than the session timeout (6 s)
	// so no rebalance hides it: nothing signals it, a sleep is the fault.
	time.Sleep(5 * time.Second)
	if err := kafkaProxy.Start(); err != nil {
		t.Fatal(err)
	}
	publish(2_000)
	settle("votes after the Kafka link came back")

	var s summaryResp
	p.get(t, "/api/v1/summary", &s)
	if s.DeadLettered != 0 {
		t.Errorf("%d messages dead-lettered because of network faults", s.DeadLettered)
	}
	t.Logf("after latency, resets and two cuts: %d votes, %d duplicates rejected — as published", s.VotesCast, s.Rejected["duplicate_voter"])
	if code, out := p.cli(t, "replay", "--verify"); code != 0 {
		t.Errorf("replay --verify = %d:\n%s", code, out)
	}
}
