package main

import (
	"io"
	"os"
	"regexp"
	"slices"
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
	for _, want := range []string{"kafka", "postgres", "migrate", "projector", "api", "intake", "simulator"} {
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
