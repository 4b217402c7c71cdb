package testutil

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/votewatch/votewatch/internal/process"
)

// bin is the votewatch binary the tests run as separate processes, built
// once per test binary and removed by Main.
var bin struct {
	once      sync.Once
	dir, path string
	err       error
}

// Binary builds cmd/votewatch (once per test binary) and returns its path.
func Binary(tb testing.TB) string {
	tb.Helper()
	bin.once.Do(func() {
		if bin.dir, bin.err = os.MkdirTemp("", "votewatch-bin-"); bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "votewatch")
		out, err := exec.Command("go", "build", "-o", bin.path, "github.com/votewatch/votewatch/cmd/votewatch").CombinedOutput()
		if err != nil {
			bin.err = &buildError{err: err, out: out}
		}
	})
	if bin.err != nil {
		tb.Fatalf("build votewatch: %v", bin.err)
	}
	return bin.path
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// Process is a votewatch process started by a test. Its output is kept
// and shown if the test fails.
type Process struct {
	*process.Process
	out SyncBuffer
}

// Start runs the votewatch binary with args; the test's cleanup stops it.
func Start(tb testing.TB, args ...string) *Process {
	tb.Helper()
	p := &Process{}
	var err error
	if p.Process, err = process.Start(Binary(tb), args, &p.out, &p.out); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = p.Stop()
		if tb.Failed() {
			tb.Logf("votewatch %v (pid %d) said:\n%s", args, p.Pid(), p.out.String())
		}
	})
	return p
}

// Output returns what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.Process.Exited():
		return true
	default:
		return false
	}
}

// SyncBuffer collects output written from many goroutines.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Run runs the votewatch binary with args to its end and returns its exit
// code and everything it wrote (stdout and stderr).
func Run(tb testing.TB, args ...string) (int, string) {
	tb.Helper()
	return RunEnv(tb, nil, args...)
}

// RunEnv is Run with env (KEY=value entries) added to the environment.
func RunEnv(tb testing.TB, env []string, args ...string) (int, string) {
	tb.Helper()
	cmd := exec.Command(Binary(tb), args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		tb.Fatalf("run votewatch %v: %v", args, err)
	}
	return 0, string(out)
}
