package systemtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/domain"
	"github.com/votewatch/votewatch/internal/testutil"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *pipeline) importRoll(t *testing.T, args ...string) (int, string) {
	t.Helper()
	args = append([]string{"--log-level", "warn", "import", "--kafka-brokers", strings.Join(p.kafka.Brokers, ",")}, args...)
	return testutil.Run(t, args...)
}

func TestImportRegistersAnElectionFromCSV(t *testing.T) {
	p := startPipeline(t, 4)
	candidates := writeFile(t, "candidates.csv", "\ufeffcandidate_id,name,party\n"+
		"c-ada,Ada Lovelace,Analytical Party\n"+
		`c-bob,"Bob ""Builder"" Jones",Union Party`+"\n"+
		"c-ida,Ida Independent,\n") // no party: an independent (contract v1.3)
	voters := writeFile(t, "voters.csv", "voter_id,name,gender,birth_date,region,city,registered_at\n"+
		"v-1,Ann,female,1980-01-02,North,Oslo,2026-10-01T09:00:00Z\n"+
		"v-2,Ben,male,1975-03-04,North,Oslo,2026-10-01T09:00:00Z\n"+
		"v-3,Cat,female,2001-05-06,South,Bergen,2026-10-01T09:00:00Z\n")
	if code, out := p.importRoll(t, "--candidates", candidates, "--voters", voters); code != 0 || !strings.Contains(out, "published 3 candidates and 3 voters") {
		t.Fatalf("import = %d:\n%s", code, out)
	}
	testutil.Eventually(t, 30*time.Second, "the roll registered", func() (bool, string) {
		var s summaryResp
		p.get(t, "/api/v1/summary", &s)
		return s.RegisteredVoters == 3 && s.Candidates == 3, ""
	})
	var north regionResp
	p.get(t, "/api/v1/regions/North", &north)
	if north.RegisteredVoters != 2 {
		t.Errorf("North registered = %d, want 2", north.RegisteredVoters)
	}
	var cands struct {
		Candidates []struct {
			CandidateID string `json:"candidate_id"`
			Party       string `json:"party"`
		} `json:"candidates"`
	}
	p.get(t, "/api/v1/candidates", &cands)
	parties := map[string]string{}
	for _, c := range cands.Candidates {
		parties[c.CandidateID] = c.Party
	}
	if p, ok := parties["c-ida"]; !ok || p != "" || parties["c-ada"] != "Analytical Party" {
		t.Errorf("candidates' parties %v, want c-ida with none", parties)
	}
	// The import is on record, with what it published.
	testutil.Eventually(t, 30*time.Second, "the import on record", func() (bool, string) {
		var audit struct {
			Actions []struct{ Action, Detail, Result string } `json:"actions"`
		}
		p.get(t, "/api/v1/audit", &audit)
		for _, a := range audit.Actions {
			if a.Action == "import_roll" && a.Result == "ok" && a.Detail == "3 candidates and 3 voters" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", audit.Actions)
	})
}

func TestImportRefusesABadRollAndPublishesNothing(t *testing.T) {
	p := startPipeline(t, 4)
	voters := writeFile(t, "voters.csv", "voter_id,name,gender,birth_date,region,city,registered_at\n"+
		"v-1,Ann,female,1980-01-02,North,Oslo,2026-10-01T09:00:00Z\n"+
		"v-2,Ben,male,04/03/1975,North,Oslo,2026-10-01T09:00:00Z\n"+
		"v-1,Ann again,female,1980-01-02,North,Oslo,2026-10-01T09:00:00Z\n"+
		"v-4,Dan,male,1980-01-02,North\n")
	code, out := p.importRoll(t, "--voters", voters)
	if code == 0 {
		t.Fatalf("a bad roll was imported:\n%s", out)
	}
	for _, want := range []string{"voters.csv:3: birth_date", `voters.csv:4: voter_id "v-1" already on line 2`, "record on line 5: wrong number of fields"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ends, err := p.klog.HighWatermarks(context.Background(), domain.TopicVoters)
	if err != nil {
		t.Fatal(err)
	}
	for part, end := range ends {
		if end != 0 {
			t.Errorf("voters partition %d holds %d events after a refused import", part, end)
		}
	}
	for _, bad := range []struct{ header, want string }{
		{"voter_id,name,gender,birth_date,region,city", `missing column "registered_at"`},
		{"voter_id,name,sex,birth_date,region,city,registered_at", `unknown column "sex"`},
	} {
		f := writeFile(t, "v.csv", bad.header+"\n")
		if code, out := p.importRoll(t, "--voters", f, "--dry-run"); code == 0 || !strings.Contains(out, bad.want) {
			t.Errorf("header %q: %d %s, want an error naming %s", bad.header, code, out, bad.want)
		}
	}
}
