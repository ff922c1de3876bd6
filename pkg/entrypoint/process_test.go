package entrypoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestProcess(t *testing.T, opts ProcessOptions) *CmdProcessHandler {
	t.Helper()
	p, err := NewProcessHandler(opts)
	if err != nil {
		t.Fatalf("new process handler: %v", err)
	}
	return p
}

func waitDone(t *testing.T, p *CmdProcessHandler) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Err()
	case <-time.After(30 * time.Second):
		t.Fatal("process handler never finished")
		return nil
	}
}

func TestProcessHandlerRestartPolicy(t *testing.T) {
	tests := []struct {
		name         string
		policy       RestartPolicy
		script       string // counts runs in $COUNT; exits per run number
		wantRestarts int
		wantCode     int
	}{
		{"never does not restart a failure", RestartNever, "exit 4", 0, 4},
		{"on-failure restarts until success", RestartOnFailure, `[ "$n" -ge 3 ] && exit 0; exit 1`, 2, 0},
		{"on-failure does not restart success", RestartOnFailure, "exit 0", 0, 0},
		{"always restarts success until stopped", RestartAlways, `[ "$n" -ge 3 ] && exec sleep 60; exit 0`, 2, 128 + 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			count := filepath.Join(t.TempDir(), "count")
			script := `echo x >> "$COUNT"; n=$(wc -l < "$COUNT"); ` + tt.script
			p := newTestProcess(t, ProcessOptions{
				Command: []string{"/bin/sh", "-c", script}, Env: append(os.Environ(), "COUNT="+count),
				Restart: tt.policy, BackoffInitial: time.Millisecond, BackoffMax: 4 * time.Millisecond,
			})
			p.Start()
			if tt.policy == RestartAlways {
				for i := 0; i < 3; i++ {
					if err := <-p.GetStartedChannel(); err != nil {
						t.Fatalf("start %d: %v", i, err)
					}
				}
				waitFor(t, "two restarts and a running child", func() bool { return p.Restarts() >= 2 && p.Pid() != 0 })
				if err := p.Stop(); err != nil {
					t.Fatalf("stop: %v", err)
				}
			}
			err := waitDone(t, p)
			if got := ExitCode(err); got != tt.wantCode {
				t.Errorf("exit code = %d (%v), want %d", got, err, tt.wantCode)
			}
			if got := p.Restarts(); got != tt.wantRestarts {
				t.Errorf("restarts = %d, want %d", got, tt.wantRestarts)
			}
			if got := len(p.GetEndedChannel()); got != tt.wantRestarts+1 {
				t.Errorf("ended events = %d, want %d", got, tt.wantRestarts+1)
			}
		})
	}
}

func TestProcessHandlerStopEscalatesToKillAfterGrace(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	p := newTestProcess(t, ProcessOptions{
		Command: []string{"/bin/sh", "-c", `trap "" TERM; : > "$READY"; while :; do sleep 1; done`},
		Env:     append(os.Environ(), "READY="+ready),
		Grace:   200 * time.Millisecond, Restart: RestartAlways,
	})
	p.Start()
	if err := <-p.GetStartedChannel(); err != nil {
		t.Fatal(err)
	}
	// The shell says when its trap is installed; no guess at how long that takes.
	waitFor(t, "the shell to ignore SIGTERM", func() bool { _, err := os.Stat(ready); return err == nil })
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	err := waitDone(t, p)
	if got := ExitCode(err); got != 128+9 {
		t.Errorf("exit code = %d (%v), want 137 (SIGKILL after grace)", got, err)
	}
	if p.Restarts() != 0 {
		t.Errorf("restarted %d times after Stop, want 0", p.Restarts())
	}
}

func TestProcessHandlerReportsStartFailure(t *testing.T) {
	p := newTestProcess(t, ProcessOptions{Command: []string{"/nonexistent/podkit"}})
	p.Start()
	if err := <-p.GetStartedChannel(); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Errorf("start error = %v, want one naming the command", err)
	}
	if got := ExitCode(waitDone(t, p)); got != 127 {
		t.Errorf("exit code = %d, want 127", got)
	}
	if err := p.Signal(1); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal after end = %v, want os.ErrProcessDone", err)
	}
}

func TestProcessOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		opts ProcessOptions
		want string
	}{
		{"empty command", ProcessOptions{}, "Command"},
		{"bad policy", ProcessOptions{Command: []string{"x"}, Restart: "sometimes"}, "Restart"},
		{"backoff max below initial", ProcessOptions{Command: []string{"x"}, BackoffInitial: time.Minute, BackoffMax: time.Second}, "BackoffMax"},
		{"negative grace", ProcessOptions{Command: []string{"x"}, Grace: -1}, "Grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewProcessHandler(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

func TestProcessHandlerRestartStartsAgainEvenWithPolicyNever(t *testing.T) {
	p := newTestProcess(t, ProcessOptions{Command: []string{"/bin/sh", "-c", "exec sleep 60"}, Grace: 5 * time.Second})
	p.Start()
	if err := <-p.GetStartedChannel(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child's pid", func() bool { return p.Pid() != 0 })
	first := p.Pid()
	if err := p.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := <-p.GetStartedChannel(); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if got := ExitCode(<-p.GetEndedChannel()); got != 143 {
		t.Errorf("first run ended with %d, want 143 (SIGTERM)", got)
	}
	if p.Restarts() != 1 {
		t.Errorf("restarts = %d, want 1", p.Restarts())
	}
	waitFor(t, "the restarted child's pid", func() bool { return p.Pid() != 0 && p.Pid() != first })
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := ExitCode(waitDone(t, p)); got != 137 {
		t.Errorf("after Kill exit code = %d, want 137", got)
	}
}

// A stop that comes before the process has a pid is not lost: the process is never started and
// the handler ends as if the signal had ended it (128+15), without waiting for a grace period.
func TestProcessHandlerStopBeforeStartIsHonoured(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	p := newTestProcess(t, ProcessOptions{
		Command: []string{"/bin/sh", "-c", `touch "$MARKER"; exec sleep 60`},
		Env:     append(os.Environ(), "MARKER="+marker),
		Grace:   time.Minute, Restart: RestartAlways,
	})
	if err := p.Stop(); !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("Stop before Start = %v, want os.ErrProcessDone (nothing runs yet)", err)
	}
	p.Start()
	if got := ExitCode(waitDone(t, p)); got != 128+15 {
		t.Errorf("exit code = %d, want 143", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the process ran although it was stopped before it started")
	}
}

// A Restart asked for just before a Stop does not bring the process back.
func TestProcessHandlerStopWinsOverAPendingRestart(t *testing.T) {
	p := newTestProcess(t, ProcessOptions{Command: []string{"/bin/sh", "-c", "exec sleep 60"}, Grace: time.Minute})
	p.Start()
	if err := <-p.GetStartedChannel(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child's pid", func() bool { return p.Pid() != 0 })
	if err := p.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	_ = p.Stop()
	if got := ExitCode(waitDone(t, p)); got != 143 {
		t.Errorf("exit code = %d, want 143", got)
	}
	if p.Restarts() != 0 {
		t.Errorf("restarted %d times although Stop followed the Restart, want 0", p.Restarts())
	}
}
