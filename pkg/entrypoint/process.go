package entrypoint

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RestartPolicy says when an ended process is started again.
type RestartPolicy string

// Restart policies, as in Kubernetes and supervisord.
const (
	RestartNever     RestartPolicy = "never"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartAlways    RestartPolicy = "always"
)

// ParseRestartPolicy validates s.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	switch p := RestartPolicy(s); p {
	case RestartNever, RestartOnFailure, RestartAlways:
		return p, nil
	}
	return "", fmt.Errorf("parse restart policy %q: want never, on-failure or always", s)
}

// ProcessOptions configures a CmdProcessHandler.
type ProcessOptions struct {
	// Command is the program and its arguments. Required. A name without a slash is looked up in PATH.
	Command []string
	// Env is the environment. Default: this process's environment.
	Env []string
	// Dir is the working directory. Default: this process's.
	Dir string
	// Stdin, Stdout and Stderr default to this process's. With a Reaper they must be *os.File.
	Stdin, Stdout, Stderr *os.File
	// Restart is the restart policy. Default: RestartNever.
	Restart RestartPolicy
	// BackoffInitial is the first delay before a restart. Default: 1s.
	BackoffInitial time.Duration
	// BackoffMax caps the delay, which doubles after each restart; a run that lasted longer than
	// BackoffMax resets it. Default: 30s.
	BackoffMax time.Duration
	// Grace is how long Stop (and Restart) wait after the stop signal before SIGKILL. Default: 0,
	// never escalate, as tini: in a pod the kubelet sends SIGKILL itself once
	// terminationGracePeriodSeconds is over, and an earlier SIGKILL would cut a graceful
	// shutdown short.
	Grace time.Duration
	// ChildOnly sends forwarded signals to the child process alone instead of its whole process
	// group (tini's default; tini -g and dumb-init signal the group). Default: false, the group.
	ChildOnly bool
	// StopSignal is what Stop sends first. Default: SIGTERM.
	StopSignal syscall.Signal
	// Reaper, when set, starts and waits for the process (required under a PID-1 Supervisor, which
	// sets it). Default: nil, the process is waited for with exec.Cmd.Wait.
	Reaper *Reaper
	// Logger receives lifecycle logs. Default: slog.Default().
	Logger *slog.Logger
}

func (o *ProcessOptions) setDefaults() {
	if o.Restart == "" {
		o.Restart = RestartNever
	}
	if o.BackoffInitial == 0 {
		o.BackoffInitial = time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.StopSignal == 0 {
		o.StopSignal = unix.SIGTERM
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func (o *ProcessOptions) validate() error {
	if len(o.Command) == 0 || o.Command[0] == "" {
		return errors.New("ProcessOptions.Command is empty; set it to the program and its arguments")
	}
	if _, err := ParseRestartPolicy(string(o.Restart)); err != nil {
		return fmt.Errorf("ProcessOptions.Restart: %w", err)
	}
	if o.BackoffInitial < 0 || o.BackoffMax < o.BackoffInitial {
		return errors.New("ProcessOptions.BackoffInitial/BackoffMax: want 0 < BackoffInitial <= BackoffMax")
	}
	if o.Grace < 0 {
		return errors.New("ProcessOptions.Grace is negative; set a duration >= 0")
	}
	return nil
}

// CmdProcessHandler runs a command in its own process group, reports starts and ends on channels
// and restarts it according to its policy. Signals go to the whole process group.
type CmdProcessHandler struct {
	opts    ProcessOptions
	log     *slog.Logger
	started chan error
	ended   chan error
	done    chan struct{}

	mu       sync.Mutex
	pid      int  // current process group, 0 when not running
	stopping bool // no more restarts
	// pendingStop is a stop signal that came while no process was running (before the first
	// start, or between restarts): the next start is skipped, or, when the process was being
	// created at that moment, it gets the signal as soon as it has a pid.
	pendingStop syscall.Signal
	wake        chan struct{}
	startOne    sync.Once
	restarts    int
	restartNow  bool
	final       error

	// Set by a Supervisor that forwards signals directly (see SupervisorOptions.DirectForward),
	// before Start. onPid learns the child's pid once it runs and 0 before it is forgotten;
	// beforeDecide runs after each end, before the restart decision, so that a stop signal the
	// handler already sent is accounted for.
	onPid        func(pid int)
	beforeDecide func()
}

// NewProcessHandler validates opts and returns a handler that has not started anything yet.
func NewProcessHandler(opts ProcessOptions) (*CmdProcessHandler, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &CmdProcessHandler{
		opts:    opts,
		log:     opts.Logger.With("handler", "process"),
		started: make(chan error, 64),
		ended:   make(chan error, 64),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}, nil
}

// GetStartedChannel reports each start attempt: nil on success, the start error otherwise.
func (p *CmdProcessHandler) GetStartedChannel() <-chan error { return p.started }

// GetEndedChannel reports each end: nil for exit code 0, an *ExitError otherwise.
func (p *CmdProcessHandler) GetEndedChannel() <-chan error { return p.ended }

// Done is closed once the process has ended and will not be restarted.
func (p *CmdProcessHandler) Done() <-chan struct{} { return p.done }

// Err is the final outcome after Done: nil, an *ExitError or a start error (see ExitCode).
func (p *CmdProcessHandler) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.final
}

// Restarts is how many times the process was started again.
func (p *CmdProcessHandler) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restarts
}

// Pid is the running process's id (and process group id), or 0.
func (p *CmdProcessHandler) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}

// Start launches the process in the background. Calling it again has no effect.
func (p *CmdProcessHandler) Start() {
	p.startOne.Do(func() { go p.loop() })
}

// Stop sends the stop signal to the process group, SIGKILL after the grace period, and disables
// restarts.
func (p *CmdProcessHandler) Stop() error { return p.StopWith(p.opts.StopSignal) }

// StopWith is Stop with an explicit first signal.
func (p *CmdProcessHandler) StopWith(sig syscall.Signal) error {
	p.mu.Lock()
	if p.pid == 0 {
		p.pendingStop = sig
	}
	p.mu.Unlock()
	p.disableRestart()
	err := p.Signal(sig)
	p.armGrace()
	return err
}

// stopSent does what StopWith does after the stop signal was already sent by someone else.
func (p *CmdProcessHandler) stopSent() {
	p.disableRestart()
	p.armGrace()
}

// armGrace sends SIGKILL after the grace period unless the process ended for good by then.
func (p *CmdProcessHandler) armGrace() {
	if p.opts.Grace > 0 {
		t := time.AfterFunc(p.opts.Grace, func() { _ = p.Signal(unix.SIGKILL) })
		go func() { <-p.done; t.Stop() }()
	}
}

// Kill sends SIGKILL to the process group and disables restarts.
func (p *CmdProcessHandler) Kill() error {
	p.disableRestart()
	return p.Signal(unix.SIGKILL)
}

// Restart stops the running process gracefully (stop signal, SIGKILL after the grace period) so
// that it is started again at once, whatever the restart policy.
func (p *CmdProcessHandler) Restart() error {
	p.mu.Lock()
	pid := p.pid
	p.mu.Unlock()
	if pid == 0 {
		return errors.New("restart process: not running")
	}
	p.mu.Lock()
	p.restartNow = true
	p.mu.Unlock()
	if p.opts.Grace > 0 {
		time.AfterFunc(p.opts.Grace, func() {
			if p.Pid() == pid {
				_ = p.Signal(unix.SIGKILL)
			}
		})
	}
	return p.Signal(p.opts.StopSignal)
}

// Signal sends sig to the process group (to the child alone with ChildOnly; SIGKILL always goes
// to the group, so nothing the child started survives it). It returns os.ErrProcessDone when
// nothing runs.
func (p *CmdProcessHandler) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	pid := p.pid
	p.mu.Unlock()
	if pid == 0 {
		return os.ErrProcessDone
	}
	target := -pid
	if p.opts.ChildOnly && sig != unix.SIGKILL {
		target = pid
	}
	if err := unix.Kill(target, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return os.ErrProcessDone
		}
		return fmt.Errorf("signal process group %d with %s: %w", pid, unix.SignalName(sig), err)
	}
	return nil
}

func (p *CmdProcessHandler) disableRestart() {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *CmdProcessHandler) notify(ch chan error, err error) {
	select {
	case ch <- err:
	default:
		p.log.Warn("event dropped: nobody reads the channel", "error", err)
	}
}

func (p *CmdProcessHandler) loop() {
	delay := p.opts.BackoffInitial
	for {
		began := time.Now()
		err := p.runOnce()
		if p.beforeDecide != nil {
			p.beforeDecide()
		}
		p.mu.Lock()
		stop, now := p.stopping, p.restartNow
		p.restartNow = false
		p.mu.Unlock()
		// A stop always wins, also over a restart asked for just before it.
		restart := !stop && (now || p.opts.Restart == RestartAlways ||
			(p.opts.Restart == RestartOnFailure && err != nil))
		if !restart {
			p.mu.Lock()
			p.final = err
			p.mu.Unlock()
			close(p.done)
			return
		}
		if time.Since(began) > p.opts.BackoffMax {
			delay = p.opts.BackoffInitial
		}
		if !now {
			p.log.Info("restarting after backoff", "delay", delay, "error", err)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-p.wake:
				t.Stop()
			}
			delay = min(2*delay, p.opts.BackoffMax)
			p.mu.Lock()
			stop = p.stopping
			p.mu.Unlock()
			if stop {
				p.mu.Lock()
				p.final = err
				p.mu.Unlock()
				close(p.done)
				return
			}
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
	}
}

// runOnce starts the command and waits for it; the error is a start error or the end.
func (p *CmdProcessHandler) runOnce() error {
	p.mu.Lock()
	pending := p.pendingStop
	p.mu.Unlock()
	if pending != 0 {
		// Stopped before it ever ran: end as if the signal had ended it, without starting it.
		p.log.Info("stop signal before start; not starting", "signal", unix.SignalName(pending))
		err := &ExitError{Code: -1, Signal: pending}
		p.notify(p.ended, err)
		return err
	}
	cmd := exec.Command(p.opts.Command[0], p.opts.Command[1:]...)
	cmd.Env, cmd.Dir = p.opts.Env, p.opts.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.opts.Stdin, p.opts.Stdout, p.opts.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var wait func() error
	if p.opts.Reaper != nil {
		ch, err := p.opts.Reaper.Start(cmd)
		if err != nil {
			return p.startFailed(err)
		}
		wait = func() error { return exitErrorFromStatus(<-ch) }
	} else {
		if err := cmd.Start(); err != nil {
			return p.startFailed(err)
		}
		wait = func() error {
			err := cmd.Wait()
			var xe *exec.ExitError
			if errors.As(err, &xe) {
				return exitErrorFromStatus(xe.Sys().(syscall.WaitStatus))
			}
			return err
		}
	}
	pid := cmd.Process.Pid
	p.mu.Lock()
	p.pid = pid
	pending = p.pendingStop
	p.mu.Unlock()
	if p.onPid != nil {
		p.onPid(pid)
	}
	if pending != 0 {
		// The stop came while the process was being created: deliver it now.
		_ = unix.Kill(-pid, pending)
	}
	p.log.Info("process started", "pid", pid, "command", p.opts.Command[0])
	p.notify(p.started, nil)
	err := wait()
	if p.onPid != nil {
		p.onPid(0)
	}
	_ = cmd.Process.Release()
	p.mu.Lock()
	p.pid = 0
	p.mu.Unlock()
	p.log.Info("process ended", "pid", pid, "exitCode", ExitCode(err))
	p.notify(p.ended, err)
	return err
}

func (p *CmdProcessHandler) startFailed(err error) error {
	err = fmt.Errorf("start %s: %w", p.opts.Command[0], err)
	p.log.Error("process did not start", "error", err, "exitCode", ExitCode(err))
	p.notify(p.started, err)
	return err
}
