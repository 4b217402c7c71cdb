package certs_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/votewatch/votewatch/infra/certs"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The server certificate verifies for its hosts and the station's as a
// client certificate named after the station, both under the CA; keys are
// readable by their owner only; a second run keeps the CA, so certificates
// issued before stay valid.
func TestGenerateMakesAChainThatVerifies(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(dir, certs.Options{Hosts: []string{"intake", "127.0.0.1"}, Stations: []string{"north-1"}}); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	ca := readCert(t, filepath.Join(dir, certs.CAFile))
	roots.AddCert(ca)
	server := readCert(t, filepath.Join(dir, certs.ServerFile))
	for _, host := range []string{"intake", "127.0.0.1"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: roots, DNSName: "elsewhere"}); err == nil {
		t.Error("the server certificate verifies for a host it was not made for")
	}
	certFile, keyFile := certs.StationFiles("north-1")
	station := readCert(t, filepath.Join(dir, certFile))
	if _, err := station.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("station certificate: %v", err)
	}
	if station.Subject.CommonName != "north-1" {
		t.Errorf("station certificate names %q", station.Subject.CommonName)
	}
	for _, key := range []string{certs.CAKeyFile, certs.ServerKeyFile, keyFile} {
		fi, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, fi.Mode().Perm())
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, certs.CAFile))
	if _, err := certs.Generate(dir, certs.Options{Hosts: []string{"intake"}, Stations: []string{"south-2"}}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, certs.CAFile))
	if !bytes.Equal(before, after) {
		t.Error("a second run replaced the CA")
	}
	if _, err := station.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("north-1's certificate after the second run: %v", err)
	}
}

// Bad settings are refused with a clear error, never served half-way.
func TestServerConfigRefusesIncompleteSettings(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(dir, certs.Options{Hosts: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	cert, key, ca := filepath.Join(dir, certs.ServerFile), filepath.Join(dir, certs.ServerKeyFile), filepath.Join(dir, certs.CAFile)
	for name, s := range map[string]certs.Server{
		"a certificate without its key":             {CertFile: cert},
		"a key without its certificate":             {KeyFile: key},
		"client certificates without TLS":           {ClientCAFile: ca},
		"required client certificates without a CA": {CertFile: cert, KeyFile: key, RequireClientCert: true},
		"a key that is not the certificate's":       {CertFile: cert, KeyFile: filepath.Join(dir, certs.CAKeyFile)},
		"a CA file that holds no certificate":       {CertFile: cert, KeyFile: key, ClientCAFile: key},
	} {
		if _, err := s.Config(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if cfg, err := (certs.Server{}).Config(); err != nil || cfg != nil {
		t.Errorf("no TLS settings: %v %v, want plain (nil)", cfg, err)
	}
	if _, err := certs.Generate(dir, certs.Options{}); err == nil {
		t.Error("a server certificate without host names was made")
	}
	if _, err := certs.Generate(dir, certs.Options{Hosts: []string{"x"}, Stations: []string{"../evil"}}); err == nil {
		t.Error("a station name that escapes the directory was accepted")
	}
}
