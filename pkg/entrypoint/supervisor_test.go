package entrypoint

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type supervisorRun struct {
	cmd     *exec.Cmd
	out     string
	stderr  strings.Builder
	command []string
}

// startSupervisor re-executes the test binary as a Supervisor running command; newPIDNS puts it
// in a new PID and mount namespace as PID 1.
func startSupervisor(t *testing.T, newPIDNS bool, rewrite string, command ...string) *supervisorRun {
	t.Helper()
	if newPIDNS && os.Getuid() != 0 {
		t.Fatal("PID-namespace tests need root (CLONE_NEWPID); run them as root or in CI's root container")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("find test binary: %v", err)
	}
	b, _ := json.Marshal(command)
	r := &supervisorRun{out: filepath.Join(t.TempDir(), "report.json"), command: command}
	r.cmd = exec.Command(exe, "-test.run=^$")
	r.cmd.Env = append(os.Environ(), envRole+"=supervisor", envOut+"="+r.out, envCommand+"="+string(b), envRewrite+"="+rewrite)
	r.cmd.Stderr = &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{}
	if newPIDNS {
		r.cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWPID | unix.CLONE_NEWNS
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start supervisor: %v", err)
	}
	return r
}

func (r *supervisorRun) wait(t *testing.T) supervisorReport {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("supervisor for %q: %v\nstderr:\n%s", r.command, err, r.stderr.String())
	}
	var rep supervisorReport
	b, err := os.ReadFile(r.out)
	if err != nil {
		t.Fatalf("read report: %v\nstderr:\n%s", err, r.stderr.String())
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("decode report %s: %v", b, err)
	}
	if rep.SetupError != "" {
		t.Fatalf("supervisor setup: %s\nstderr:\n%s", rep.SetupError, r.stderr.String())
	}
	return rep
}

// orphanScript makes n orphaned grandchildren (a subshell starts a background job and exits at
// once), then exits with code.
func orphanScript(n, code int) []string {
	return []string{"/bin/sh", "-c", "i=0; while [ $i -lt " + itoa(n) + " ]; do (true &); i=$((i+1)); done; exit " + itoa(code)}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSupervisorAsPID1ReapsThousandOrphansAndKeepsChildStatus(t *testing.T) {
	rep := startSupervisor(t, true, "", orphanScript(1000, 3)...).wait(t)
	if rep.Pid != 1 {
		t.Fatalf("supervisor pid = %d, want 1 (new PID namespace)", rep.Pid)
	}
	if rep.ExitCode != 3 {
		t.Errorf("exit code = %d, want the child's 3", rep.ExitCode)
	}
	if got := int(rep.Orphans) + rep.Drained; got < 1000 {
		t.Errorf("orphans reaped = %d (+%d drained), want >= 1000", rep.Orphans, rep.Drained)
	}
	if rep.Zombies != 0 || rep.Others != 0 {
		t.Errorf("left behind: %d zombies, %d live processes; want none", rep.Zombies, rep.Others)
	}
}

func TestSupervisorAsSubreaperReapsOrphansWhenNotPID1(t *testing.T) {
	rep := startSupervisor(t, false, "", orphanScript(200, 0)...).wait(t)
	if rep.Pid == 1 {
		t.Fatal("supervisor unexpectedly PID 1")
	}
	if !rep.Subreaper {
		t.Error("PR_GET_CHILD_SUBREAPER = 0, want the supervisor to be a child subreaper")
	}
	if rep.ExitCode != 0 {
		t.Errorf("exit code = %d, want 0", rep.ExitCode)
	}
	if got := int(rep.Orphans) + rep.Drained; got < 200 {
		t.Errorf("orphans reaped = %d (+%d drained), want >= 200", rep.Orphans, rep.Drained)
	}
	if rep.Zombies != 0 {
		t.Errorf("%d zombie children left, want 0", rep.Zombies)
	}
}

func TestSupervisorExitCodes(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command []string
		want    int
	}{
		{"clean exit is 0", []string{"/bin/sh", "-c", "exit 0"}, 0},
		{"exit code is passed through", []string{"/bin/sh", "-c", "exit 3"}, 3},
		{"death by SIGTERM is 128+15", []string{"/bin/sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"non-executable command is 126", []string{notExec}, 126},
		{"missing command is 127", []string{filepath.Join(dir, "missing")}, 127},
		{"missing command in PATH is 127", []string{"podkit-no-such-command"}, 127},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := startSupervisor(t, true, "", tt.command...).wait(t)
			if rep.ExitCode != tt.want {
				t.Errorf("exit code = %d, want %d", rep.ExitCode, tt.want)
			}
		})
	}
}

// readLines returns the recorder's lines once pred holds, failing after a generous deadline.
func waitLines(t *testing.T, path string, pred func([]string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Fields(string(b))
		if pred(lines) {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorder output %q never satisfied the condition", lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

func TestSupervisorForwardsEverySignalToChildGroup(t *testing.T) {
	for _, tc := range []struct {
		pidns, direct bool
	}{{true, false}, {false, false}, {true, true}, {false, true}} {
		name := map[bool]string{true: "as PID 1", false: "as subreaper"}[tc.pidns] +
			map[bool]string{true: ", direct from the handler", false: ", through os/signal"}[tc.direct]
		pidns := tc.pidns
		t.Run(name, func(t *testing.T) {
			t.Setenv(envDirect, map[bool]string{true: "1", false: ""}[tc.direct])
			exe, _ := os.Executable()
			rec := filepath.Join(t.TempDir(), "signals")
			t.Setenv(envRole, "")
			// The recorder inherits the supervisor's env: set its role through env -i style args.
			r := startSupervisor(t, pidns, "TERM:QUIT", "/usr/bin/env", envRole+"=recorder", envOut+"="+rec, exe, "-test.run=^$")
			waitLines(t, rec, func(l []string) bool { return contains(l, "ready") })
			sent := []syscall.Signal{unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGINT, unix.SIGALRM, syscall.Signal(40)}
			for _, sig := range sent {
				if err := r.cmd.Process.Signal(sig); err != nil {
					t.Fatalf("send %v: %v", sig, err)
				}
				waitLines(t, rec, func(l []string) bool { return contains(l, signalName(sig)) })
			}
			// SIGTERM is rewritten to SIGQUIT, which ends the recorder with 0.
			if err := r.cmd.Process.Signal(unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			rep := r.wait(t)
			lines := waitLines(t, rec, func(l []string) bool { return contains(l, "SIGQUIT") })
			if contains(lines, "SIGTERM") {
				t.Errorf("child received SIGTERM; want it rewritten to SIGQUIT: %q", lines)
			}
			for _, sig := range sent {
				if !contains(lines, signalName(sig)) {
					t.Errorf("child never received %s: %q", signalName(sig), lines)
				}
			}
			if got := len(lines); got != len(sent)+2 {
				t.Errorf("recorded %d lines %q, want ready + %d signals + SIGQUIT", got, lines, len(sent))
			}
			if rep.ExitCode != 0 {
				t.Errorf("exit code = %d, want 0", rep.ExitCode)
			}
			// The child can report ready a moment before the handler knows its pid; a signal
			// in that moment goes through Go. Most must have been sent by the handler.
			if tc.direct && rep.DirectSent < uint64(len(sent)) {
				t.Errorf("the direct handler sent %d of %d signals", rep.DirectSent, len(sent)+1)
			}
			if !tc.direct && rep.DirectSent != 0 {
				t.Errorf("the direct handler sent %d signals with DirectForward off", rep.DirectSent)
			}
			if !rep.GoHandlerBack {
				t.Error("after Run, a signal no longer reaches signal.Notify: the runtime's handler was not given back")
			}
		})
	}
}
