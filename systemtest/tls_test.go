package systemtest

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/votewatch/votewatch/infra/certs"
	"github.com/votewatch/votewatch/internal/testutil"
)

// runTLSCommand runs a votewatch command as a process of its own until the
// test ends and returns the https URL it prints.
func runTLSCommand(t *testing.T, args ...string) string {
	t.Helper()
	proc := testutil.Start(t, append([]string{"--log-level", "warn"}, args...)...)
	addr := regexp.MustCompile(`https://[0-9.:]+`)
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

// tlsClient trusts dir's CA and presents station's client certificate
// (none when station is empty).
func tlsClient(t *testing.T, dir, station string) *http.Client {
	t.Helper()
	var cert, key string
	if station != "" {
		cert, key = certs.StationFiles(station)
		cert, key = filepath.Join(dir, cert), filepath.Join(dir, key)
	}
	cfg, err := certs.Client(filepath.Join(dir, certs.CAFile), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// send posts one vote as the station holding token and returns the status
// and the error code of the answer (or the transport's error).
func send(t *testing.T, c *http.Client, url, token, body string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/votes", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code, nil
}

// The read API and the intake serve TLS with certificates `votewatch certs`
// makes, and the intake can require each station's client certificate: a
// vote sent over TLS with the station's certificate is counted and read
// back over TLS; a station without a certificate is refused in the
// handshake (the intake alone) or with 403 (an intake sharing the read
// API's listener, whose dashboard needs no certificate); another station's
// certificate does not do with this station's token; a client that does
// not trust the deployment's CA gets nothing; and plain HTTP on a TLS port
// is answered 400 and served nothing.
func TestTheAPIAndTheIntakeServeTLSWithStationCertificates(t *testing.T) {
	p := startPipeline(t, 4)
	e := buildElection()
	p.produceElection(t, e)
	p.waitFor(t, e, 0)
	dir := t.TempDir()
	if code, out := testutil.Run(t, "certs", "--dir", dir, "--host", "localhost,127.0.0.1", "--station", "north-1,south-2"); code != 0 {
		t.Fatalf("votewatch certs = %d:\n%s", code, out)
	}
	brokers := strings.Join(p.kafka.Brokers, ",")
	tokens := "north-1=" + stationToken + "@West,south-2=" + revokedToken + "@West" // voters 231, 235 and 239 are in the West
	tlsArgs := []string{"--tls-cert", filepath.Join(dir, certs.ServerFile), "--tls-key", filepath.Join(dir, certs.ServerKeyFile),
		"--client-ca", filepath.Join(dir, certs.CAFile), "--require-client-cert"}

	intake := runTLSCommand(t, append([]string{"intake", "--http", "127.0.0.1:0", "--database-url", p.loginDSN(t, "votewatch_intake"),
		"--kafka-brokers", brokers, "--station-tokens", tokens}, tlsArgs...)...)
	serve := runTLSCommand(t, append([]string{"serve", "--http", "127.0.0.1:0", "--database-url", p.dsn, "--min-cell", "1",
		"--kafka-brokers", brokers, "--station-tokens", tokens}, tlsArgs...)...)

	north := tlsClient(t, dir, "north-1")
	if code, errCode, err := send(t, north, intake, stationToken, intakeVote(9301, e.voterIDs[231], "c-bob")); err != nil || code != http.StatusAccepted {
		t.Fatalf("the station with its certificate: %d %s %v", code, errCode, err)
	}
	if code, errCode, err := send(t, north, serve, stationToken, intakeVote(9302, e.voterIDs[235], "c-bob")); err != nil || code != http.StatusAccepted {
		t.Fatalf("the station with its certificate, through serve: %d %s %v", code, errCode, err)
	}
	// Both votes come out counted, read over TLS without a client
	// certificate (the dashboard's readers have none).
	reader := tlsClient(t, dir, "")
	testutil.Eventually(t, 60*time.Second, "the votes sent over TLS to be counted", func() (bool, string) {
		resp, err := reader.Get(serve + "/api/v1/summary")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var s summaryResp
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
			return false, err.Error()
		}
		return s.VotesCast == e.counted+2, resp.Status
	})

	// No certificate: the intake alone refuses the handshake; serve,
	// whose listener the dashboard shares, refuses the vote.
	if code, _, err := send(t, reader, intake, stationToken, intakeVote(9303, e.voterIDs[239], "c-bob")); err == nil {
		t.Errorf("the intake took a request without a client certificate: %d", code)
	}
	if code, errCode, err := send(t, reader, serve, stationToken, intakeVote(9304, e.voterIDs[239], "c-bob")); err != nil ||
		code != http.StatusForbidden || errCode != "client_certificate_required" {
		t.Errorf("serve without a client certificate: %d %s %v, want 403 client_certificate_required", code, errCode, err)
	}
	// Another station's certificate with north-1's token.
	south := tlsClient(t, dir, "south-2")
	for _, url := range []string{intake, serve} {
		if code, errCode, err := send(t, south, url, stationToken, intakeVote(9305, e.voterIDs[239], "c-bob")); err != nil ||
			code != http.StatusForbidden || errCode != "client_certificate_required" {
			t.Errorf("%s: north-1's token with south-2's certificate: %d %s %v, want 403", url, code, errCode, err)
		}
	}
	// A client that does not trust the deployment's CA.
	untrusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	if resp, err := untrusting.Get(serve + "/api/v1/summary"); err == nil {
		resp.Body.Close()
		t.Error("a client that does not trust the CA read the API")
	}
	// Plain HTTP on the TLS ports.
	for _, url := range []string{intake, serve} {
		plain := "http://" + strings.TrimPrefix(url, "https://")
		resp, err := http.Post(plain+"/api/v1/votes", "application/json", strings.NewReader(intakeVote(9306, e.voterIDs[239], "c-bob")))
		if err != nil {
			continue // refused outright: as good
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "HTTPS") {
			t.Errorf("plain HTTP to %s: %d %q, want 400 and nothing served", plain, resp.StatusCode, body)
		}
	}
	// Of the refused votes, none was counted.
	resp, err := reader.Get(serve + "/api/v1/summary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s summaryResp
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.VotesCast != e.counted+2 {
		t.Errorf("votes cast %d, want %d: a refused vote was counted", s.VotesCast, e.counted+2)
	}
}
