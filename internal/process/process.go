// Package process runs votewatch child processes: the bench's projector
// processes and the system tests' servers share it.
package process

import (
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// StopTimeout is how long Stop waits for a graceful exit before killing.
const StopTimeout = 30 * time.Second

// Process is a running child.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// Start runs bin with args, its output to stdout and stderr.
func Start(bin string, args []string, stdout, stderr io.Writer) (*Process, error) {
	p := &Process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = stdout, stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %v: %w", bin, args, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the child has ended; Err then says how.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the child ended (nil while it runs, or if it exited 0).
func (p *Process) Err() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// Kill ends the child with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop ends the child with SIGTERM (a graceful shutdown: a projector
// finishes the batch in flight), killing it if it has not ended after
// StopTimeout, and returns how it ended.
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(StopTimeout):
		p.Kill()
	}
	return p.err
}
