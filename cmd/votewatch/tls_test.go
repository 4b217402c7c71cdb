package main

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/votewatch/votewatch/infra/certs"
)

// Requiring stations' certificates without TLS or without their CA would
// refuse every station: the commands refuse to start instead. With both,
// the intake's own listener refuses a client without a certificate in the
// handshake, serve's (which the dashboard shares) only verifies one given.
func TestRequiringClientCertificatesNeedsTLSAndTheirCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(dir, certs.Options{Hosts: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	cert, key, ca := filepath.Join(dir, certs.ServerFile), filepath.Join(dir, certs.ServerKeyFile), filepath.Join(dir, certs.CAFile)
	for name, f := range map[string]TLSFlags{
		"no TLS":   {RequireClientCert: true, ClientCA: ca},
		"no CA":    {RequireClientCert: true, TLSCert: cert, TLSKey: key},
		"only TLS": {RequireClientCert: true},
	} {
		for _, handshake := range []bool{true, false} {
			if _, err := f.config(handshake); err == nil {
				t.Errorf("%s (handshake %v): accepted", name, handshake)
			}
		}
	}
	f := TLSFlags{TLSCert: cert, TLSKey: key, ClientCA: ca, RequireClientCert: true}
	for handshake, want := range map[bool]tls.ClientAuthType{true: tls.RequireAndVerifyClientCert, false: tls.VerifyClientCertIfGiven} {
		cfg, err := f.config(handshake)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ClientAuth != want {
			t.Errorf("handshake %v: client auth %v, want %v", handshake, cfg.ClientAuth, want)
		}
	}
	if cfg, err := (TLSFlags{}).config(true); err != nil || cfg != nil {
		t.Errorf("no TLS flags: %v %v, want plain HTTP", cfg, err)
	}
}
