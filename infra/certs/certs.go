// Package certs makes and loads the TLS certificates votewatch serves
// with: a private certificate authority for one deployment, a server
// certificate for the read API and the intake, and one client certificate
// per polling station, whose common name is the station's name. Only the
// standard library (crypto/x509) is used, so `votewatch certs` works
// wherever the binary runs, with no openssl.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files Generate writes into its directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// StationFiles are the certificate and key files of station's client
// certificate.
func StationFiles(station string) (cert, key string) {
	return "station-" + station + ".pem", "station-" + station + "-key.pem"
}

// Options say what Generate makes.
type Options struct {
	// Hosts are the DNS names and IP addresses the server certificate is
	// valid for (at least one).
	Hosts []string
	// Stations each get a client certificate with their name as its
	// common name.
	Stations []string
	// Validity of the server and station certificates (default one year);
	// the CA's is five times as long.
	Validity time.Duration
	// Now is the issue time (default: the clock), for tests.
	Now time.Time
}

// Generate writes a CA (unless dir already holds one, which is then used
// again, so stations' certificates stay valid), a server certificate for
// opts.Hosts and a client certificate per station into dir, keys mode
// 0600. It overwrites the server and station files it makes. It returns
// the paths it wrote.
func Generate(dir string, opts Options) ([]string, error) {
	if len(opts.Hosts) == 0 {
		return nil, errors.New("certs: no host names for the server certificate")
	}
	for _, s := range opts.Stations {
		if s == "" || strings.ContainsAny(s, `/\`) || s == "." || s == ".." {
			return nil, fmt.Errorf("certs: station name %q cannot name a file", s)
		}
	}
	if opts.Validity <= 0 {
		opts.Validity = 365 * 24 * time.Hour
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	var written []string
	ca, caKey, err := loadCA(dir)
	if errors.Is(err, os.ErrNotExist) {
		ca, caKey, err = newCA(opts)
		if err == nil {
			err = writePair(dir, CAFile, CAKeyFile, ca.Raw, caKey)
			written = append(written, filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("certs: the CA in %s: %w", dir, err)
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: opts.Hosts[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	if err := issue(dir, ServerFile, ServerKeyFile, server, ca, caKey, opts); err != nil {
		return nil, err
	}
	written = append(written, filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile))
	for _, s := range opts.Stations {
		cert, key := StationFiles(s)
		client := &x509.Certificate{
			Subject:     pkix.Name{CommonName: s, OrganizationalUnit: []string{"votewatch polling station"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if err := issue(dir, cert, key, client, ca, caKey, opts); err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, cert), filepath.Join(dir, key))
	}
	return written, nil
}

func newCA(opts Options) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "votewatch deployment CA"},
		NotBefore:             opts.Now.Add(-time.Hour),
		NotAfter:              opts.Now.Add(5 * opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, CAFile)); errors.Is(statErr, os.ErrNotExist) {
			return nil, nil, os.ErrNotExist
		}
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !cert.IsCA {
		return nil, nil, errors.New("not a CA certificate with an ECDSA key")
	}
	return cert, key, nil
}

// issue signs tmpl with the CA and writes it with a new key.
func issue(dir, certFile, keyFile string, tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, opts Options) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", certFile, err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = opts.Now.Add(-time.Hour)
	tmpl.NotAfter = opts.Now.Add(opts.Validity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", certFile, err)
	}
	return writePair(dir, certFile, keyFile, der, key)
}

func writePair(dir, certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: %s: %w", keyFile, err)
	}
	// The key first, and never readable by others.
	if err := writeFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, certFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand never fails on the platforms Go supports.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

// Server says how a listener serves TLS.
type Server struct {
	// CertFile and KeyFile are the server's certificate (PEM, chain
	// allowed) and key. Both empty: no TLS.
	CertFile, KeyFile string
	// ClientCAFile, when set, is the PEM bundle of CAs whose client
	// certificates are verified when presented.
	ClientCAFile string
	// RequireClientCert refuses, in the handshake, a client without a
	// certificate the ClientCAFile's CAs signed.
	RequireClientCert bool
}

// Enabled reports whether TLS is configured.
func (s Server) Enabled() bool { return s.CertFile != "" || s.KeyFile != "" }

// Config returns the TLS configuration, or nil when TLS is not
// configured. It fails on a certificate without its key (or the reverse),
// on files it cannot read, and on RequireClientCert without a CA.
func (s Server) Config() (*tls.Config, error) {
	if !s.Enabled() {
		if s.ClientCAFile != "" || s.RequireClientCert {
			return nil, errors.New("tls: client certificates need TLS: set --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if s.CertFile == "" || s.KeyFile == "" {
		return nil, errors.New("tls: set both --tls-cert and --tls-key")
	}
	pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load the server certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if s.RequireClientCert && s.ClientCAFile == "" {
		return nil, errors.New("tls: requiring client certificates needs --client-ca")
	}
	if s.ClientCAFile != "" {
		pool, err := LoadPool(s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if s.RequireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls: read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Client returns a client configuration that trusts caFile's CAs and,
// when certFile is set, presents that client certificate.
func Client(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, err := LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
