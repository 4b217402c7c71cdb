package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// composeFile is the part of docker-compose.yml this test checks.
type composeFile struct {
	Services map[string]struct {
		Build         any                      `yaml:"build"`
		Image         string                   `yaml:"image"`
		Command       []string                 `yaml:"command"`
		Environment   map[string]string        `yaml:"environment"`
		Healthcheck   *struct{ Test []string } `yaml:"healthcheck"`
		Volumes       []string                 `yaml:"volumes"`
		Profiles      []string                 `yaml:"profiles"`
		Restart       string                   `yaml:"restart"`
		ContainerName string                   `yaml:"container_name"`
		Ports         []string                 `yaml:"ports"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// No Docker engine runs where the tests run, so the compose file is checked
// against the binary instead: every votewatch service's command parses,
// every environment variable it sets is one that command reads (with a
// value it accepts), and the infrastructure keeps the log for replay.
func TestComposeFileMatchesTheBinary(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, want := range []string{"kafka", "postgres", "migrate", "projector", "api", "intake", "simulator", "prometheus", "grafana"} {
		if _, ok := f.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	for name, s := range f.Services {
		oneShot := s.Restart == "no"
		if s.Healthcheck == nil && !oneShot {
			t.Errorf("%s: a long-running service without a healthcheck", name)
		}
		for _, v := range s.Volumes {
			if vol, _, _ := strings.Cut(v, ":"); !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				if _, ok := f.Volumes[vol]; !ok {
					t.Errorf("%s: volume %s is not declared", name, vol)
				}
			}
		}
		if s.Build == nil {
			continue
		}
		t.Run(name, func(t *testing.T) { checkVotewatchService(t, s.Command, s.Environment) })
		if s.Healthcheck != nil {
			if hc := s.Healthcheck.Test; len(hc) < 3 || hc[1] != "/votewatch" {
				t.Errorf("%s: healthcheck %v must run the binary (the image has no shell)", name, hc)
			} else {
				checkVotewatchService(t, hc[2:], nil)
			}
		}
	}
	projector := f.Services["projector"]
	if projector.ContainerName != "" || len(projector.Ports) > 0 {
		t.Error("projector: a container name or host port prevents --scale projector=N")
	}
	if got := f.Services["simulator"].Profiles; !slices.Contains(got, "simulate") {
		t.Errorf("simulator profiles %v, want it under a profile", got)
	}
	// Least privilege: the read API and the intake are separate processes,
	// and each long-running process logs in as itself, not as the owner
	// that migrates.
	if cmd := f.Services["api"].Command; !slices.Contains(cmd, "--intake=false") {
		t.Errorf("api command %v: want the read API alone (--intake=false)", cmd)
	}
	if cmd := f.Services["intake"].Command; len(cmd) == 0 || cmd[0] != "intake" {
		t.Errorf("intake command %v, want votewatch intake", cmd)
	}
	owner := dbUser(t, f.Services["migrate"].Environment["DATABASE_URL"])
	logins := map[string]string{}
	for _, name := range []string{"projector", "api", "intake"} {
		user := dbUser(t, f.Services[name].Environment["DATABASE_URL"])
		if user == owner || logins[user] != "" {
			t.Errorf("%s connects as %q, which the owner or %s also uses: want a login of its own", name, user, logins[user])
		}
		logins[user] = name
	}
	// Nothing crosses the network in clear: every service that publishes
	// its HTTP port serves TLS there (or publishes on loopback only), the
	// intake requires the stations' client certificates, and the
	// certificates come from the certs service, before either starts.
	for name, s := range f.Services {
		if s.Build == nil || len(s.Ports) == 0 {
			continue
		}
		for _, port := range s.Ports {
			if strings.HasPrefix(port, "127.0.0.1:") {
				continue
			}
			if s.Environment["VOTEWATCH_TLS_CERT"] == "" || s.Environment["VOTEWATCH_TLS_KEY"] == "" {
				t.Errorf("%s publishes %s on every interface without TLS", name, port)
			}
		}
	}
	intake := f.Services["intake"].Environment
	if intake["VOTEWATCH_REQUIRE_CLIENT_CERT"] != "true" || intake["VOTEWATCH_CLIENT_CA"] == "" {
		t.Errorf("intake: stations' client certificates not required (%v)", intake)
	}
	if cmd := f.Services["certs"].Command; len(cmd) == 0 || cmd[0] != "certs" {
		t.Errorf("certs command %v, want votewatch certs", cmd)
	}
	for _, name := range []string{"api", "intake"} {
		for _, v := range []string{"VOTEWATCH_TLS_CERT", "VOTEWATCH_TLS_KEY", "VOTEWATCH_CLIENT_CA"} {
			if path := f.Services[name].Environment[v]; path != "" && !strings.HasPrefix(path, "/tls/") {
				t.Errorf("%s: %s=%s is not in the certs service's volume", name, v, path)
			}
		}
		if !slices.Contains(f.Services[name].Volumes, "tls:/tls:ro") || !slices.Contains(f.Services["certs"].Volumes, "tls:/tls") {
			t.Errorf("%s does not read the certificates the certs service writes", name)
		}
	}
	roles, err := os.ReadFile("../../deploy/postgres/roles.sh")
	if err != nil {
		t.Fatal(err)
	}
	for user, name := range logins {
		group := map[string]string{"projector": "votewatch_projector", "api": "votewatch_reader", "intake": "votewatch_intake"}[name]
		if want := "CREATE ROLE " + user + " LOGIN PASSWORD %L IN ROLE " + group + "'"; !strings.Contains(string(roles), want) {
			t.Errorf("deploy/postgres/roles.sh does not create login %s in %s alone", user, group)
		}
	}
	if !slices.Contains(f.Services["postgres"].Volumes, "./deploy/postgres/roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro") {
		t.Errorf("postgres does not run deploy/postgres/roles.sh at first start: %v", f.Services["postgres"].Volumes)
	}

	kafka := f.Services["kafka"].Environment
	for key, want := range map[string]string{"KAFKA_PROCESS_ROLES": "broker,controller", "KAFKA_LOG_RETENTION_MS": "-1", "KAFKA_LOG_RETENTION_BYTES": "-1"} {
		if kafka[key] != want {
			t.Errorf("kafka %s = %q, want %q", key, kafka[key], want)
		}
	}
	if strings.Contains(string(raw), "zookeeper") {
		t.Error("ZooKeeper in the compose file: Kafka runs in KRaft mode")
	}
	if !strings.HasPrefix(f.Services["kafka"].Image, "apache/kafka:") {
		t.Errorf("kafka image %s, want the official apache/kafka", f.Services["kafka"].Image)
	}

	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/votewatch", "AS build", "distroless/static"} {
		if !strings.Contains(string(dockerfile), want) {
			t.Errorf("Dockerfile lacks %q (a multi-stage build of one static binary)", want)
		}
	}
}

// dbUser is the user of a compose DATABASE_URL (its password may be a
// ${VARIABLE}, which url.Parse refuses).
func dbUser(t *testing.T, dsn string) string {
	t.Helper()
	m := regexp.MustCompile(`^postgres://([^:@/]+)[:@]`).FindStringSubmatch(dsn)
	if m == nil {
		t.Fatalf("DATABASE_URL %q: no user", dsn)
	}
	return m[1]
}

// checkVotewatchService parses command as the binary would, with env set,
// and fails if a variable is one the command does not read.
func checkVotewatchService(t *testing.T, command []string, env map[string]string) {
	t.Helper()
	var cli CLI
	parser, err := newParser(&cli, io.Discard, io.Discard, func(int) {})
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(command)
	if err != nil {
		t.Fatalf("command %v: %v", command, err)
	}
	reads := map[string]string{} // env var → the type of its flag
	for _, group := range kctx.Flags() {
		for _, e := range group.Envs {
			reads[e] = group.Tag.Type
		}
	}
	for key, value := range env {
		typ, ok := reads[key]
		if !ok {
			t.Errorf("command %v does not read %s", command, key)
			continue
		}
		// A path inside the container does not exist here.
		if typ != "existingfile" && typ != "existingdir" {
			t.Setenv(key, value)
		}
	}
	cli = CLI{}
	if _, err := parser.Parse(command); err != nil {
		t.Errorf("command %v with its environment: %v", command, err)
	}
}

// The monitoring profile: Prometheus and Grafana from their official
// images, every file they mount present in the repository, each mounted
// where the other files expect it (the rules where prometheus.yml loads
// them, the dashboards where Grafana's provider reads them), their ports
// published, and what they reach (the API, the projectors' metrics port,
// Prometheus) being services and ports this compose file runs.
func TestComposeMonitoringProfile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	// mounts maps each bind mount's container path to its source in the
	// repository, which must exist.
	mounts := func(service string) map[string]string {
		out := map[string]string{}
		for _, v := range f.Services[service].Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
				continue
			}
			src := filepath.Join("../..", parts[0])
			if _, err := os.Stat(src); err != nil {
				t.Errorf("%s mounts %s, which is not in the repository: %v", service, parts[0], err)
			}
			out[parts[1]] = src
		}
		return out
	}
	published := func(service string) []string {
		var out []string
		for _, p := range f.Services[service].Ports {
			parts := strings.Split(p, ":")
			out = append(out, parts[len(parts)-1])
		}
		return out
	}
	for name, image := range map[string]string{"prometheus": "prom/prometheus:", "grafana": "grafana/grafana:"} {
		s, ok := f.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if !slices.Contains(s.Profiles, "monitoring") {
			t.Errorf("%s profiles %v, want monitoring", name, s.Profiles)
		}
		if !strings.HasPrefix(s.Image, image) {
			t.Errorf("%s image %q, want the official %s…", name, s.Image, image)
		}
	}

	prom := mounts("prometheus")
	cfgPath, ok := prom["/etc/prometheus/prometheus.yml"]
	if !ok {
		t.Fatalf("prometheus: prometheus.yml not mounted at /etc/prometheus/prometheus.yml (mounts %v)", prom)
	}
	if !slices.Contains(f.Services["prometheus"].Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus command %v does not load the mounted config", f.Services["prometheus"].Command)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg.RuleFiles {
		if !filepath.IsAbs(r) {
			r = filepath.Join("/etc/prometheus", r)
		}
		if _, ok := prom[r]; !ok {
			t.Errorf("prometheus.yml loads %s, which is not mounted", r)
		}
	}
	if got := published("prometheus"); !slices.Contains(got, "9090") {
		t.Errorf("prometheus publishes %v, want 9090", got)
	}
	// Each scrape target is a service of this file on the port it serves
	// its metrics on.
	listens := func(service, variable string) string {
		addr := f.Services[service].Environment[variable]
		return addr[strings.LastIndexByte(addr, ':')+1:]
	}
	// The API serves /metrics on its own address when it has one, and on
	// its HTTP address otherwise.
	apiMetrics := "VOTEWATCH_HTTP"
	if _, ok := f.Services["api"].Environment["VOTEWATCH_METRICS_ADDR"]; ok {
		apiMetrics = "VOTEWATCH_METRICS_ADDR"
	}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = true
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, port, _ := strings.Cut(target, ":")
				metrics := apiMetrics
				if host != "api" {
					metrics = "VOTEWATCH_METRICS_ADDR"
				}
				if _, ok := f.Services[host]; !ok || port != listens(host, metrics) {
					t.Errorf("job %s scrapes %s; the %s service serves metrics on %s", sc.JobName, target, host, listens(host, metrics))
				}
			}
		}
		for _, dns := range sc.DNSSDConfigs {
			if !slices.Equal(dns.Names, []string{"projector"}) || strconv.Itoa(dns.Port) != listens("projector", "VOTEWATCH_METRICS_ADDR") {
				t.Errorf("job %s discovers %v:%d; the projectors serve metrics on %s", sc.JobName, dns.Names, dns.Port, listens("projector", "VOTEWATCH_METRICS_ADDR"))
			}
		}
	}
	// The alert rules select these job names.
	for _, job := range []string{"votewatch-api", "votewatch-projector"} {
		if !jobs[job] {
			t.Errorf("prometheus.yml has no job %s, which the alert rules expect", job)
		}
	}

	graf := mounts("grafana")
	prov, ok := graf["/etc/grafana/provisioning"]
	if !ok {
		t.Fatalf("grafana: provisioning not mounted at /etc/grafana/provisioning (mounts %v)", graf)
	}
	var ds struct {
		Datasources []struct{ URL string } `yaml:"datasources"`
	}
	if b, err = os.ReadFile(filepath.Join(prov, "datasources", "prometheus.yml")); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana datasources %+v, want the prometheus service at http://prometheus:9090", ds.Datasources)
	}
	var providers struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	if b, err = os.ReadFile(filepath.Join(prov, "dashboards", "votewatch.yml")); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &providers); err != nil {
		t.Fatal(err)
	}
	for _, p := range providers.Providers {
		src, ok := graf[p.Options.Path]
		if !ok {
			t.Errorf("grafana reads dashboards from %s, which is not mounted", p.Options.Path)
			continue
		}
		if _, err := os.Stat(filepath.Join(src, "votewatch.json")); err != nil {
			t.Errorf("no votewatch.json where grafana reads dashboards: %v", err)
		}
	}
	if home := f.Services["grafana"].Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		dir, file := filepath.Split(home)
		if src, ok := graf[filepath.Clean(dir)]; !ok {
			t.Errorf("grafana's home dashboard %s is not in a mounted directory", home)
		} else if _, err := os.Stat(filepath.Join(src, file)); err != nil {
			t.Errorf("grafana's home dashboard: %v", err)
		}
	}
	if got := published("grafana"); !slices.Contains(got, "3000") {
		t.Errorf("grafana publishes %v, want 3000", got)
	}
}
