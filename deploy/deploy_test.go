// Package deploy_test checks the operators' files: the Prometheus alert
// rules (with promtool, from Debian's prometheus package), their runbook
// links, and the Grafana provisioning and dashboard.
package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/votewatch/votewatch/internal/testutil"
)

// runbookBase is where every alert's runbook_url points, before the anchor.
const runbookBase = "https://github.com/votewatch/votewatch/blob/main/RUNBOOK.md#"

// requiredAlerts are the situations operators asked to be paged or warned
// about; each is one alert.
var requiredAlerts = []string{
	"VotewatchProjectionStale",      // the projection is stale while polls are open
	"VotewatchConsumerLagGrowing",   // consumer lag keeps growing
	"VotewatchOutboxStuck",          // the outbox's oldest vote is older than N seconds
	"VotewatchDeadLettersRising",    // the dead-letter count is rising
	"VotewatchRejectionsSpike",      // rejections spike by reason
	"VotewatchStationRefusalsSpike", // one station's rejections spike
	"VotewatchNotReady",             // readiness fails
	"VotewatchProjectorRestarting",  // a projector restarts repeatedly
	"VotewatchLogUnwitnessed",       // no checkpoint reached the witnesses' quorum for 10 minutes
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(testutil.Tool(t, "promtool"), args...)
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The rules load, and each alert fires and stays silent where
// rules_test.yml says.
func TestAlertRulesUnderPromtool(t *testing.T) {
	promtool(t, "check", "config", "prometheus.yml") // checks rules.yml too
	promtool(t, "test", "rules", "rules_test.yml")
}

// Every alert is tested both firing and not firing.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	var rules ruleFile
	readYAML(t, "prometheus/rules.yml", &rules)
	var tests struct {
		Tests []struct {
			Name      string `yaml:"name"`
			AlertTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	readYAML(t, "prometheus/rules_test.yml", &tests)
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				silent[at.Alertname] = true
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if !fires[r.Alert] || !silent[r.Alert] {
				t.Errorf("%s: tested firing %v, not firing %v; want both", r.Alert, fires[r.Alert], silent[r.Alert])
			}
		}
	}
}

// Every alert says what happened and links the RUNBOOK.md section that
// says what to do; the operators' list is all there.
func TestEveryAlertLinksItsRunbookSection(t *testing.T) {
	var rules ruleFile
	readYAML(t, "prometheus/rules.yml", &rules)
	anchors := runbookAnchors(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			if s := r.Labels["severity"]; s != "page" && s != "warning" {
				t.Errorf("%s: severity %q, want page or warning", r.Alert, s)
			}
			for _, key := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, key)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], runbookBase)
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q is not a section of RUNBOOK.md", r.Alert, r.Annotations["runbook_url"])
			}
		}
	}
	for _, want := range requiredAlerts {
		if !slices.Contains(alerts, want) {
			t.Errorf("no %s alert", want)
		}
	}
}

// runbookAnchors returns the anchors GitHub gives RUNBOOK.md's headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	out := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(title), ""), " ", "-")] = true
	}
	return out
}

// dashboard is the part of a Grafana dashboard this package checks.
type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's
}

// ReadDashboard reads deploy/grafana/dashboards/votewatch.json.
func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("grafana", "dashboards", "votewatch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("votewatch.json: %v", err)
	}
	return d
}

// The dashboard's panels query the provisioned datasource, each with a
// title, a place and at least one PromQL expression, and together they
// cover what operators asked to see. (TestPrometheusRunsTheAlerts in
// systemtest runs every expression against a real Prometheus.)
func TestGrafanaDashboardIsProvisioned(t *testing.T) {
	var ds struct {
		Datasources []struct {
			Name, Type, UID, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].UID == "" {
		t.Fatalf("datasources %+v, want one Prometheus with a uid", ds.Datasources)
	}
	uid := ds.Datasources[0].UID
	var providers struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "grafana/provisioning/dashboards/votewatch.yml", &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Options.Path == "" {
		t.Fatalf("dashboard providers %+v", providers.Providers)
	}

	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q", d.UID, d.Title)
	}
	ids := map[int]bool{}
	var titles []string
	var exprs int
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("panel %q has no place", p.Title)
			}
			titles = append(titles, strings.ToLower(p.Title))
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != uid {
				t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, uid)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, q := range p.Targets {
				if strings.TrimSpace(q.Expr) == "" || q.RefID == "" {
					t.Errorf("panel %q: a target without expr or refId", p.Title)
				}
				exprs++
			}
		}
	}
	walk(d.Panels)
	for _, want := range []string{"votes", "rejections", "lag", "freshness", "batch size", "apply latency", "outbox", "http latency", "station"} {
		if !slices.ContainsFunc(titles, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("no panel about %s (titles %v)", want, titles)
		}
	}
	if exprs == 0 {
		t.Fatal("no queries")
	}
}
