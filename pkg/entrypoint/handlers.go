package entrypoint

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// ProcessHandler runs the managed application. It mirrors the entrypoint-framework shape: Start
// returns at once, every start attempt and every end is reported on a channel, and the process is
// controlled with Stop, Kill and Signal.
type ProcessHandler interface {
	// Start launches the process (and, under a restart policy, relaunches it) in the background.
	Start()
	// GetStartedChannel reports each start attempt: nil on success, the start error otherwise.
	GetStartedChannel() <-chan error
	// GetEndedChannel reports each end: nil for exit code 0, an *ExitError otherwise.
	GetEndedChannel() <-chan error
	// Stop sends SIGTERM (or the configured stop signal) to the process group and SIGKILL after
	// the grace period. It disables restarts.
	Stop() error
	// Kill sends SIGKILL to the process group. It disables restarts.
	Kill() error
	// Signal sends sig to the process group.
	Signal(sig syscall.Signal) error
}

// ConfigurationHandler watches a configuration source. A change is announced on the was-changed
// channel (nil error: a new, different configuration is available); Update applies the newest
// configuration and reports the outcome of type T on the update-result channel.
type ConfigurationHandler[T any] interface {
	GetWasChangedChannel() <-chan error
	Update()
	GetUpdateResultChannel() <-chan T
	Close()
}

// ActivationHandler reports whether this instance should be active (true) or a backup (false).
type ActivationHandler interface {
	GetWasChangedChannel() <-chan ActivationEvent
	Close()
}

// ActivationEvent carries the current activation state, or the error met while observing it.
type ActivationEvent struct {
	State bool
	Error error
}

// UpdateResult describes one configuration update. Paths are slash-separated and relative to the
// configuration root (for a single file: its base name). Err is nil when the new configuration is
// live; otherwise the previous configuration is still live and untouched.
type UpdateResult struct {
	Added   []string
	Changed []string
	Removed []string
	Err     error
}

// HasChanges reports whether the update made any file differ.
func (r UpdateResult) HasChanges() bool {
	return len(r.Added)+len(r.Changed)+len(r.Removed) > 0
}

var (
	_ ProcessHandler                     = (*CmdProcessHandler)(nil)
	_ ConfigurationHandler[UpdateResult] = (*ConfigHandler)(nil)
	_ ActivationHandler                  = (*FileActivationHandler)(nil)
)

// ExitError is the end of a process that did not exit with code 0.
type ExitError struct {
	// Code is the exit code when the process exited normally, or -1 when a signal ended it.
	Code int
	// Signal is the signal that ended the process, or 0.
	Signal syscall.Signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return "signal: " + e.Signal.String()
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// ExitCode is the shell convention for the process end: the exit code, or 128+signal.
func (e *ExitError) ExitCode() int {
	if e.Signal != 0 {
		return 128 + int(e.Signal)
	}
	return e.Code
}

// exitErrorFromStatus converts a wait status; nil for a clean exit.
func exitErrorFromStatus(ws syscall.WaitStatus) error {
	switch {
	case ws.Signaled():
		return &ExitError{Code: -1, Signal: ws.Signal()}
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	default:
		return &ExitError{Code: ws.ExitStatus()}
	}
}

// Exit codes for failures to start the command, following POSIX shells (and tini).
const (
	// ExitCodeCannotExecute is returned when the command exists but cannot be executed.
	ExitCodeCannotExecute = 126
	// ExitCodeNotFound is returned when the command does not exist.
	ExitCodeNotFound = 127
)

// ExitCode maps an end or start error to a process exit code: 0 for nil, the code or 128+signal
// for an *ExitError, 127 when the command was not found and 126 when it could not be executed.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	var xe *exec.ExitError
	if errors.As(err, &xe) {
		if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return xe.ExitCode()
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, syscall.ENOENT) {
		return ExitCodeNotFound
	}
	return ExitCodeCannotExecute
}
