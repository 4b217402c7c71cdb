package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Tool returns the path of an external program a test needs (promtool,
// prometheus). When it is not installed the test is skipped, except under
// CI (CI=true), where .ci/run installs it and its absence fails the test.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		tb.Fatalf("%s is not installed; .ci/run installs it (Debian package prometheus)", name)
	}
	tb.Skipf("%s is not installed (Debian package prometheus); CI=true makes this a failure", name)
	return ""
}

// Prometheus is a real Prometheus server started by a test.
type Prometheus struct {
	// URL is its HTTP API's base, http://127.0.0.1:port.
	URL string
	cmd *exec.Cmd
	out SyncBuffer
}

// StartPrometheus runs the prometheus binary with the configuration text
// config (rule file paths in it are used as given), on a free loopback
// port, keeping its data in a temporary directory. The test's cleanup
// stops it. It returns once Prometheus answers /-/ready.
func StartPrometheus(tb testing.TB, config string) *Prometheus {
	tb.Helper()
	bin := Tool(tb, "prometheus")
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		tb.Fatal(err)
	}
	addr := FreeAddr(tb)
	p := &Prometheus{URL: "http://" + addr}
	p.cmd = exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() {
			tb.Logf("prometheus said:\n%s", p.out.String())
		}
	})
	Eventually(tb, 30*time.Second, "prometheus ready", func() (bool, string) {
		select {
		case <-exited:
			tb.Fatalf("prometheus exited:\n%s", p.out.String())
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return p
}

// Query runs an instant PromQL query through the HTTP API and returns its
// result, or the error Prometheus reports.
func (p *Prometheus) Query(ctx context.Context, promql string) ([]Sample, error) {
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(promql), &out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", promql, out.Error)
	}
	switch out.Data.ResultType {
	case "vector":
		var samples []Sample
		if err := json.Unmarshal(out.Data.Result, &samples); err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		return samples, nil
	case "scalar":
		var pair [2]any
		if err := json.Unmarshal(out.Data.Result, &pair); err != nil {
			return nil, fmt.Errorf("query %q: %w", promql, err)
		}
		return []Sample{{Value: pair}}, nil
	default:
		return nil, fmt.Errorf("query %q: result type %s", promql, out.Data.ResultType)
	}
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Alert is an alert as GET /api/v1/alerts lists it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"` // pending or firing
}

// Alerts lists the alerts that are pending or firing.
func (p *Prometheus) Alerts(ctx context.Context) ([]Alert, error) {
	var out struct {
		Data struct {
			Alerts []Alert `json:"alerts"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/alerts", &out); err != nil {
		return nil, err
	}
	return out.Data.Alerts, nil
}

// Targets returns each scrape target's job and health ("up", "down",
// "unknown").
func (p *Prometheus) Targets(ctx context.Context) (map[string]string, error) {
	var out struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/targets", &out); err != nil {
		return nil, err
	}
	health := map[string]string{}
	for _, t := range out.Data.ActiveTargets {
		health[t.Labels["job"]+" "+t.Labels["instance"]] = t.Health
	}
	return health, nil
}

func (p *Prometheus) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return nil
}

// FreeAddr returns a loopback address with a port free at the time of the
// call (Prometheus does not report the port it chose for :0).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
