package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper owns every wait on this process's children. A PID 1 (or child subreaper) must collect
// orphans with wait4(-1), which would steal the exit status that exec.Cmd.Wait expects; so when a
// Reaper is in use, nothing else waits: commands are started through it and their status is
// delivered to whoever started them, while every other child is simply reaped.
//
// Reap must be called whenever SIGCHLD arrives; the Supervisor does this from its signal loop.
// The zero value is not usable; create one with NewReaper.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	reaped  atomic.Uint64
	orphans atomic.Uint64
	kick    chan struct{}
	closed  bool
}

// ErrReaperClosed is returned by Start once the supervised child has ended: PID 1 is on its way
// out and starts nothing more.
var ErrReaperClosed = errors.New("the supervised child has ended; no new commands are started")

// NewReaper returns a Reaper with no registered children.
func NewReaper() *Reaper {
	return &Reaper{waiters: map[int]chan syscall.WaitStatus{}, kick: make(chan struct{}, 1)}
}

// Start starts cmd and returns a channel that receives its wait status exactly once. The command
// must not be waited for with cmd.Wait, and its Stdin, Stdout and Stderr must be nil or *os.File
// (exec.Cmd would otherwise copy through goroutines that only Wait finishes). Start holds the
// reaper's lock while the process is created, so a fast exit can never be reaped unregistered.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan syscall.WaitStatus, error) {
	for _, s := range []any{cmd.Stdin, cmd.Stdout, cmd.Stderr} {
		switch s.(type) {
		case nil, *os.File:
		default:
			return nil, fmt.Errorf("start %s: stdio must be nil or *os.File when a Reaper waits for it", cmd.Path)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, ErrReaperClosed)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[cmd.Process.Pid] = ch
	// A SIGCHLD may already have been consumed while the lock was held; ask for another pass.
	r.Kick()
	return ch, nil
}

// Kick asks the owner of the SIGCHLD loop for a reaping pass (see Kicked).
func (r *Reaper) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Kicked is readable when a reaping pass was requested outside of a SIGCHLD.
func (r *Reaper) Kicked() <-chan struct{} { return r.kick }

// Reap collects every child that has ended, without blocking. Registered children have their
// status delivered; orphans are counted. It returns how many children it collected.
func (r *Reaper) Reap() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return n
		}
		n++
		r.reaped.Add(1)
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- syscall.WaitStatus(ws)
		} else {
			r.orphans.Add(1)
		}
	}
}

// close refuses further Start calls and returns the pids whose status is still awaited.
func (r *Reaper) close() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	pids := make([]int, 0, len(r.waiters))
	for pid := range r.waiters {
		pids = append(pids, pid)
	}
	return pids
}

// waiting is the number of started commands whose status has not been delivered yet.
func (r *Reaper) waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.waiters)
}

// Reaped is the number of children collected so far (registered ones and orphans).
func (r *Reaper) Reaped() uint64 { return r.reaped.Load() }

// Orphans is the number of collected children that were not started through this Reaper.
func (r *Reaper) Orphans() uint64 { return r.orphans.Load() }

// Run starts cmd, waits for it and returns nil or an *ExitError. When ctx ends first the process
// is killed (and still collected).
func (r *Reaper) Run(ctx context.Context, cmd *exec.Cmd) error {
	ch, err := r.Start(cmd)
	if err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	defer func() { _ = cmd.Process.Release() }()
	select {
	case ws := <-ch:
		return exitErrorFromStatus(ws)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		ws := <-ch
		return errors.Join(ctx.Err(), exitErrorFromStatus(ws))
	}
}

// Output runs cmd like Run and returns its combined stdout and stderr.
func (r *Reaper) Output(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(&buf, io.LimitReader(pr, 1<<20))
		_, _ = io.Copy(io.Discard, pr)
	}()
	ch, err := r.Start(cmd)
	_ = pw.Close()
	if err != nil {
		_ = pr.Close()
		<-done
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	defer func() { _ = cmd.Process.Release() }()
	var runErr error
	select {
	case ws := <-ch:
		runErr = exitErrorFromStatus(ws)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		runErr = errors.Join(ctx.Err(), exitErrorFromStatus(<-ch))
	}
	// Grandchildren may still hold the pipe; do not wait for them.
	_ = pr.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	<-done
	_ = pr.Close()
	return buf.Bytes(), runErr
}

// CommandRunner runs a command to completion and returns its combined output. Configuration
// validators and change actions use it so that, under a Supervisor, the Reaper stays the only
// waiter. ExecRunner is the plain os/exec implementation.
type CommandRunner interface {
	Output(ctx context.Context, cmd *exec.Cmd) ([]byte, error)
}

// ExecRunner runs commands with exec.Cmd.CombinedOutput; use it when no Reaper is active.
type ExecRunner struct{}

// Output runs cmd and returns its combined output; the process is killed when ctx ends.
func (ExecRunner) Output(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	err := cmd.Wait()
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		err = exitErrorFromStatus(xe.Sys().(syscall.WaitStatus))
	}
	return buf.Bytes(), err
}

var (
	_ CommandRunner = (*Reaper)(nil)
	_ CommandRunner = ExecRunner{}
)
