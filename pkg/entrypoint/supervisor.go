package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SupervisorOptions configures a Supervisor. The process fields have the meaning and defaults of
// ProcessOptions; the Reaper is always the Supervisor's own.
type SupervisorOptions struct {
	ProcessOptions
	// SignalRewrite maps a received signal to the one forwarded (e.g. SIGTERM → SIGQUIT for nginx's
	// graceful stop). Default: none, signals are forwarded as received.
	SignalRewrite map[syscall.Signal]syscall.Signal
	// AllowNoSubreaper lets Run proceed when it is not PID 1 and cannot become a child subreaper;
	// orphans then escape it. Default: false, Run fails with an error that says so.
	AllowNoSubreaper bool
	// BeforeStart runs after signal handling and reaping are set up and before the child starts,
	// e.g. to apply the initial configuration (commands it runs through the Reaper are collected
	// meanwhile). An error aborts Run with exit code 1. A stop signal received meanwhile cancels
	// its context and Run returns 128+signal without starting the child. Default: none.
	BeforeStart func(ctx context.Context) error
	// DirectForward forwards each signal from the signal handler itself, on the thread the
	// kernel woke for it, as a C init such as tini does; Go learns of it afterwards for the
	// bookkeeping. Through os/signal a signal crosses the runtime's signal goroutine, a channel
	// and the Supervisor's goroutine: three thread wake-ups in a row on an idle machine. While
	// Run runs, the process's handlers for the forwarded signals are replaced (Run gives them
	// back), so only one Supervisor per process can use it and nothing else in the process
	// should call signal.Notify for those signals. Implemented on linux/amd64; elsewhere, or
	// when another Supervisor holds it, Run logs why and forwards through os/signal.
	// podkit-entrypoint turns it on. Default: false.
	DirectForward bool
}

// Supervisor is a PID 1: it runs the child in its own process group, forwards every signal but
// SIGCHLD to that group (optionally rewritten), reaps every zombie including orphans re-parented
// to it, restarts the child per policy and finally reports the child's exit code. All of that is
// driven by one signal channel; nothing polls.
type Supervisor struct {
	opts    SupervisorOptions
	log     *slog.Logger
	reaper  *Reaper
	process *CmdProcessHandler
}

// NewSupervisor validates opts and prepares the child without starting it.
func NewSupervisor(opts SupervisorOptions) (*Supervisor, error) {
	r := NewReaper()
	opts.Reaper = r
	ph, err := NewProcessHandler(opts.ProcessOptions)
	if err != nil {
		return nil, err
	}
	for from, to := range opts.SignalRewrite {
		if from == unix.SIGCHLD || from == unix.SIGKILL || from == unix.SIGSTOP || to <= 0 || to > 64 {
			return nil, fmt.Errorf("SupervisorOptions.SignalRewrite: cannot rewrite %s to %d; only catchable signals other than SIGCHLD can be rewritten", unix.SignalName(from), to)
		}
	}
	return &Supervisor{opts: opts, log: ph.opts.Logger.With("component", "supervisor"), reaper: r, process: ph}, nil
}

// Reaper is the Supervisor's reaper; run every other command through it (it is a CommandRunner).
func (s *Supervisor) Reaper() *Reaper { return s.reaper }

// Process is the supervised child's handler (for Signal, Restart, events).
func (s *Supervisor) Process() *CmdProcessHandler { return s.process }

// becomeReaper makes sure orphans come to this process.
func (s *Supervisor) becomeReaper() error {
	if os.Getpid() == 1 {
		return nil
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		if s.opts.AllowNoSubreaper {
			s.log.Warn("not PID 1 and cannot become a child subreaper; orphans will not be reaped here", "error", err)
			return nil
		}
		return fmt.Errorf("become child subreaper (not PID 1, orphans would escape): %w", err)
	}
	return nil
}

// Run starts the child and supervises it until it ends for good, then returns the exit code to
// use: the child's code, 128+signal when a signal ended it, 127 when the command was not found
// and 126 when it could not be executed. Cancelling ctx stops the child gracefully (Stop). The
// error is non-nil only when supervision itself could not be set up.
func (s *Supervisor) Run(ctx context.Context) (int, error) {
	if err := s.becomeReaper(); err != nil {
		return 1, err
	}
	sigs := make(chan os.Signal, 128)
	handled := forwardedSignals()
	direct := false
	if s.opts.DirectForward {
		d, err := startDirectForward(handled, s.opts.SignalRewrite, s.opts.ChildOnly)
		if err != nil {
			s.log.Info("forwarding signals through os/signal", "reason", err)
		} else {
			defer d.stop()
			direct = true
			s.process.onPid = d.setPid
			s.process.beforeDecide = func() { drainSent(s.sent) }
			handled = nil
		}
	}
	handled = append(handled, unix.SIGCHLD)
	osSigs := make([]os.Signal, len(handled))
	for i, sig := range handled {
		osSigs[i] = sig
	}
	signal.Notify(sigs, osSigs...)
	defer signal.Stop(sigs)

	ready := make(chan error, 1)
	bctx, cancelBefore := context.WithCancel(ctx)
	defer cancelBefore()
	if s.opts.BeforeStart != nil {
		go func() { ready <- s.opts.BeforeStart(bctx) }()
	} else {
		ready <- nil
	}
	started := false
	// stopBeforeStart ends Run for a stop signal that came before the child was started.
	stopBeforeStart := func(sig syscall.Signal) bool {
		if started || !isStopSignal(sig) {
			return false
		}
		s.log.Info("stop signal before the child started", "signal", unix.SignalName(sig))
		cancelBefore()
		s.reapUntil(ready, sigs)
		return true
	}
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-ready:
			if err != nil {
				return 1, fmt.Errorf("prepare before start: %w", err)
			}
			started = true
			s.process.Start()
		case v := <-sigs:
			sig := v.(syscall.Signal)
			if sig != unix.SIGCHLD {
				if stopBeforeStart(sig) {
					return 128 + int(sig), nil
				}
				s.forward(sig)
				continue
			}
			s.reaper.Reap()
			if !direct {
				continue
			}
			// The direct handler also sends SIGCHLD when it needs Go.
			drainSent(s.sent)
			var stopped syscall.Signal
			drainUnsent(func(sig syscall.Signal) {
				switch {
				case stopped != 0:
				case stopBeforeStart(sig):
					stopped = sig
				default:
					s.forward(sig) // no child ran when it came: the process handler decides
				}
			})
			if stopped != 0 {
				return 128 + int(stopped), nil
			}
		case <-s.reaper.Kicked():
			s.reaper.Reap()
		case <-ctxDone:
			ctxDone = nil
			if !started {
				cancelBefore()
				s.reapUntil(ready, sigs)
				return 1, ctx.Err()
			}
			s.log.Info("context done; stopping child")
			_ = s.process.Stop()
		case <-s.process.Done():
			code := ExitCode(s.process.Err())
			s.drain(sigs)
			return code, nil
		}
	}
}

// drain runs once the child has ended for good. Commands started through the Reaper (a
// validator, an exec: action) would otherwise wait forever for a status nobody collects, and
// whoever waits for them would keep PID 1 from exiting: so no new command starts, those still
// running are killed, and reaping goes on until each of them has had its status delivered.
func (s *Supervisor) drain(sigs <-chan os.Signal) {
	pids := s.reaper.close()
	for _, pid := range pids {
		s.log.Info("child ended; killing a command still running", "pid", pid)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	s.reaper.Reap()
	// SIGKILL cannot be ignored, so each of them ends; the ticker only guards against a SIGCHLD
	// that was consumed between two passes.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for s.reaper.waiting() > 0 {
		select {
		case <-sigs:
		case <-s.reaper.Kicked():
		case <-tick.C:
		}
		s.reaper.Reap()
	}
}

// reapUntil keeps collecting children (BeforeStart may be running commands) until ready yields.
func (s *Supervisor) reapUntil(ready <-chan error, sigs <-chan os.Signal) {
	for {
		select {
		case <-ready:
			return
		case v := <-sigs:
			if v == unix.SIGCHLD {
				s.reaper.Reap()
			}
		case <-s.reaper.Kicked():
			s.reaper.Reap()
		}
	}
}

// sent accounts for a signal the direct handler already forwarded.
func (s *Supervisor) sent(sig, out syscall.Signal) {
	s.log.Debug("forwarded signal", "received", unix.SignalName(sig), "sent", unix.SignalName(out))
	if isStopSignal(sig) {
		s.process.stopSent()
	}
}

func (s *Supervisor) forward(sig syscall.Signal) {
	out := sig
	if to, ok := s.opts.SignalRewrite[sig]; ok {
		out = to
	}
	s.log.Debug("forwarding signal", "received", unix.SignalName(sig), "sent", unix.SignalName(out))
	var err error
	if isStopSignal(sig) {
		err = s.process.StopWith(out)
	} else {
		err = s.process.Signal(out)
	}
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.log.Warn("forward signal", "signal", unix.SignalName(out), "error", err)
	}
}
