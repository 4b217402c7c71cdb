package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClusterConfig describes a private PostgreSQL cluster.
type ClusterConfig struct {
	// Dir holds the cluster: data/, run/ (the Unix socket) and its log.
	Dir string
	// Port to listen on at 127.0.0.1; 0 picks a free one. Ignored when
	// SocketOnly is set.
	Port int
	// SocketOnly listens on the Unix socket alone: parallel test clusters
	// then never clash on a port.
	SocketOnly bool
	// BinDir holds pg_ctl and initdb; empty finds them (PATH, then
	// /usr/lib/postgresql/*/bin, newest version first).
	BinDir string
	// Settings are extra server settings (name → value), passed as -c.
	Settings map[string]string
	Logger   *slog.Logger
}

// Cluster is a running private PostgreSQL server started from the installed
// binaries. When the process runs as root the server runs as the postgres
// user, since PostgreSQL refuses to run as root.
type Cluster struct {
	cfg      ClusterConfig
	binDir   string
	runAs    *syscall.Credential
	password string
	port     int
}

const (
	clusterUser     = "votewatch"
	clusterDatabase = "votewatch"
)

// StartCluster initialises the cluster on first use and starts it (or
// adopts it when a previous run left it running), then makes sure the
// votewatch database exists.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Dir == "" {
		return nil, errors.New("start cluster: no directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	binDir, err := findBinaries(cfg.BinDir)
	if err != nil {
		return nil, err
	}
	c := &Cluster{cfg: cfg, binDir: binDir}
	if os.Geteuid() == 0 {
		if c.runAs, err = postgresCredential(); err != nil {
			return nil, err
		}
	}
	if err := c.prepareDirs(); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	if err := c.createDatabase(ctx); err != nil {
		_ = c.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return c, nil
}

// DSN returns a connection string for the votewatch database.
func (c *Cluster) DSN() string { return c.dsn(clusterDatabase) }

// Port returns the TCP port (0 when listening on the socket only).
func (c *Cluster) Port() int { return c.port }

func (c *Cluster) dsn(database string) string {
	host := "127.0.0.1"
	if c.cfg.SocketOnly {
		host = c.socketDir()
	}
	q := url.Values{"host": {host}, "sslmode": {"disable"}}
	if c.port != 0 {
		q.Set("port", strconv.Itoa(c.port))
	}
	u := url.URL{Scheme: "postgres", User: url.UserPassword(clusterUser, c.password), Path: "/" + database, RawQuery: q.Encode()}
	return u.String()
}

func (c *Cluster) dataDir() string   { return filepath.Join(c.cfg.Dir, "data") }
func (c *Cluster) socketDir() string { return filepath.Join(c.cfg.Dir, "run") }
func (c *Cluster) pwFile() string    { return filepath.Join(c.cfg.Dir, "password") }

// findBinaries locates pg_ctl and initdb.
func findBinaries(dir string) (string, error) {
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil {
			return "", fmt.Errorf("postgres binaries: no pg_ctl in %s", dir)
		}
		return dir, nil
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	candidates, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	slices.SortFunc(candidates, func(a, b string) int { return versionOf(b) - versionOf(a) })
	if len(candidates) > 0 {
		return filepath.Dir(candidates[0]), nil
	}
	return "", errors.New("no PostgreSQL server binaries found (looked for pg_ctl on PATH and in /usr/lib/postgresql/*/bin): " +
		"install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to an existing database")
}

func versionOf(pgCtl string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(pgCtl))))
	return v
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so the private PostgreSQL must run as the postgres user, but: %w (install postgresql, which creates it)", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *Cluster) prepareDirs() error {
	for _, d := range []string{c.cfg.Dir, c.socketDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if c.runAs != nil {
			if err := os.Chown(d, int(c.runAs.Uid), int(c.runAs.Gid)); err != nil {
				return fmt.Errorf("hand %s to the postgres user: %w", d, err)
			}
		}
	}
	if c.runAs != nil {
		// The server, running as postgres, must be able to reach its
		// directory through every parent.
		for d := filepath.Dir(c.cfg.Dir); d != "/"; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				return fmt.Errorf("the postgres user cannot reach %s: %s is not searchable by others (chmod o+x it or choose another data directory)", c.cfg.Dir, d)
			}
		}
	}
	pw, err := os.ReadFile(c.pwFile())
	if errors.Is(err, os.ErrNotExist) {
		buf := make([]byte, 18)
		_, _ = rand.Read(buf)
		pw = []byte(hex.EncodeToString(buf))
		if err := os.WriteFile(c.pwFile(), pw, 0o600); err != nil {
			return fmt.Errorf("write cluster password: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read cluster password: %w", err)
	}
	if c.runAs != nil {
		if err := os.Chown(c.pwFile(), int(c.runAs.Uid), int(c.runAs.Gid)); err != nil {
			return fmt.Errorf("hand password file to postgres: %w", err)
		}
	}
	c.password = strings.TrimSpace(string(pw))
	return nil
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	cmd.Dir = c.cfg.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.runAs, Setpgid: true}
	return cmd
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	var out bytes.Buffer
	cmd := c.command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); err == nil {
		return nil
	}
	c.cfg.Logger.Info("initialising private PostgreSQL cluster", "dir", c.dataDir())
	return c.run(ctx, "initdb", "-D", c.dataDir(), "-U", clusterUser, "--pwfile", c.pwFile(),
		"--auth", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
}

func (c *Cluster) running(ctx context.Context) bool {
	return c.command(ctx, "pg_ctl", "-D", c.dataDir(), "status").Run() == nil
}

func (c *Cluster) start(ctx context.Context) error {
	if c.running(ctx) {
		// A previous run was killed before it could stop the server:
		// adopt it rather than fail.
		if port, err := c.postmasterPort(); err == nil {
			c.port = port
		}
		c.cfg.Logger.Info("adopting running private PostgreSQL", "port", c.port)
		if c.cfg.SocketOnly {
			c.port = 0
		}
		return nil
	}
	opts := []string{"-c", "unix_socket_directories=" + c.socketDir()}
	if c.cfg.SocketOnly {
		opts = append(opts, "-c", "listen_addresses=")
	} else {
		port := c.cfg.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		}
		c.port = port
		opts = append(opts, "-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port))
	}
	settings := map[string]string{
		// Modest, for a laptop: the projection's working set in memory, and
		// checkpoints not in the middle of every burst of votes.
		"shared_buffers":     "512MB",
		"max_wal_size":       "4GB",
		"checkpoint_timeout": "15min",
	}
	maps.Copy(settings, c.cfg.Settings)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		opts = append(opts, "-c", k+"="+settings[k])
	}
	err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-l", filepath.Join(c.cfg.Dir, "postgres.log"),
		"-w", "-t", "60", "-o", quoteOpts(opts), "start")
	if err != nil {
		return fmt.Errorf("start private PostgreSQL (log: %s): %w", filepath.Join(c.cfg.Dir, "postgres.log"), err)
	}
	return nil
}

// quoteOpts joins server options for pg_ctl -o, which passes them through
// a shell.
func quoteOpts(opts []string) string {
	quoted := make([]string, len(opts))
	for i, o := range opts {
		quoted[i] = "'" + strings.ReplaceAll(o, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) createDatabase(ctx context.Context) error {
	return c.CreateDatabase(ctx, clusterDatabase)
}

// CreateDatabase creates database name unless it exists, and returns nil.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return fmt.Errorf("connect to private PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DSNFor returns a connection string for another database in the cluster.
func (c *Cluster) DSNFor(database string) string { return c.dsn(database) }

// Stop shuts the server down (fast mode: open sessions are ended,
// committed work is kept).
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.run(ctx, "pg_ctl", "-D", c.dataDir(), "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("stop private PostgreSQL: %w", err)
	}
	return nil
}

// DefaultDir returns where the private cluster lives for this user: the
// user cache dir, or /var/cache when running as root and the postgres user
// could not reach the home directory.
func DefaultDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache dir: %w", err)
	}
	dir := filepath.Join(cache, "votewatch")
	if os.Geteuid() == 0 {
		for d := cache; d != "/"; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				return "/var/cache/votewatch", nil
			}
		}
	}
	return dir, nil
}

// AttachCluster returns a connection string for the private cluster in dir
// if it is running (started by a votewatch demo), so other commands can
// work beside the demo without being told where its database is.
func AttachCluster(dir string) (string, error) {
	c := &Cluster{cfg: ClusterConfig{Dir: dir}}
	pw, err := os.ReadFile(c.pwFile())
	if err != nil {
		return "", fmt.Errorf("no private cluster in %s: %w", dir, err)
	}
	if c.port, err = c.postmasterPort(); err != nil {
		return "", fmt.Errorf("the private cluster in %s is not running (start votewatch demo) or set DATABASE_URL: %w", dir, err)
	}
	c.password = strings.TrimSpace(string(pw))
	return c.DSN(), nil
}

// postmasterPort reads the running server's port from its postmaster.pid
// (the fourth line), the one place that file is parsed.
func (c *Cluster) postmasterPort() (int, error) {
	pid, err := os.ReadFile(filepath.Join(c.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(pid), "\n")
	if len(lines) < 4 {
		return 0, fmt.Errorf("unreadable postmaster.pid in %s", c.dataDir())
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid in %s: port: %w", c.dataDir(), err)
	}
	return port, nil
}
