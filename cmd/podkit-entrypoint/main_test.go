package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var binary string

// TestMain builds the real binary once (static, as shipped) and runs the tests against it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "podkit-entrypoint-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "podkit-entrypoint")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build podkit-entrypoint: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code   int
	stderr string
}

func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run: %v", err)
	}
	return result{code: code, stderr: stderr.String()}
}

func TestExitCodeIsTheChildsOr128PlusSignalOr126And127(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"success", []string{"--", "/bin/sh", "-c", "exit 0"}, 0},
		{"exit code 3", []string{"--", "/bin/sh", "-c", "exit 3"}, 3},
		{"killed by SIGTERM", []string{"--", "/bin/sh", "-c", "kill -TERM $$"}, 143},
		{"not executable", []string{"--", notExec}, 126},
		{"not found", []string{"--", filepath.Join(dir, "missing")}, 127},
		{"without double dash", []string{"/bin/sh", "-c", "exit 5"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runBinary(t, nil, tt.args...); got.code != tt.want {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", got.code, tt.want, got.stderr)
			}
		})
	}
}

func TestBadFlagsPrintOneLineNamingTheFlagAndExit2(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown flag", nil, []string{"--bogus", "--", "true"}, "--bogus"},
		{"bad restart", nil, []string{"--restart", "sometimes", "--", "true"}, "--restart"},
		{"bad grace", nil, []string{"--grace", "soon", "--", "true"}, "--grace"},
		{"bad signal rewrite", nil, []string{"--signal-rewrite", "TERM", "--", "true"}, "--signal-rewrite"},
		{"bad on-change", nil, []string{"--on-change", "email:me", "--", "true"}, "--on-change"},
		{"bad config format", nil, []string{"--config", "/x", "--config-format", "zip", "--", "true"}, "--config-format"},
		{"tar without dest", nil, []string{"--config", "/x.tar", "--", "true"}, "--config-dest"},
		{"validate without config", nil, []string{"--validate", "true", "--", "true"}, "--config"},
		{"no command", nil, []string{"--restart", "always"}, "no command"},
		{"bad env value", []string{"PODKIT_ENTRYPOINT_RESTART=sometimes"}, []string{"--", "true"}, "PODKIT_ENTRYPOINT_RESTART"},
		{"exit code over 255", nil, []string{"-e", "256", "--", "true"}, "--expect-exit-code"},
		{"exit code not a number", nil, []string{"--expect-exit-code", "x", "--", "true"}, "expect-exit-code"},
		{"bad signal target", nil, []string{"--signal-target", "session", "--", "true"}, "--signal-target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runBinary(t, tt.env, tt.args...)
			if got.code != 2 {
				t.Errorf("exit code = %d, want 2", got.code)
			}
			lines := strings.Split(strings.TrimSpace(got.stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q, want one line naming %s", got.stderr, tt.want)
			}
		})
	}
}

func TestEnvironmentSetsFlagDefaults(t *testing.T) {
	count := filepath.Join(t.TempDir(), "count")
	got := runBinary(t, []string{"PODKIT_ENTRYPOINT_RESTART=on-failure", "COUNT=" + count},
		"--", "/bin/sh", "-c", `echo x >> "$COUNT"; [ $(wc -l < "$COUNT") -ge 2 ] && exit 0; exit 1`)
	if got.code != 0 {
		t.Errorf("exit code = %d, want 0 after one restart; stderr:\n%s", got.code, got.stderr)
	}
	if b, _ := os.ReadFile(count); strings.Count(string(b), "x") != 2 {
		t.Errorf("ran %d times, want 2 (restart on failure from the environment)", strings.Count(string(b), "x"))
	}
}

func TestRunsAsPID1InNewNamespaceAndReapsOrphans(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root for CLONE_NEWPID")
	}
	cmd := exec.Command(binary, "--", "/bin/sh", "-c", `i=0; while [ $i -lt 300 ]; do (true &); i=$((i+1)); done; echo ppid=$PPID; exit 3`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit = %v, want code 3; output %s", err, out)
	}
	if !strings.Contains(string(out), "ppid=1\n") {
		t.Errorf("child output %q, want ppid=1 (the entrypoint is PID 1)", out)
	}
}

// kubeletPublish imitates a ConfigMap volume update: new ..<ts> directory, atomic ..data swap.
func kubeletPublish(t *testing.T, vol string, files map[string]string) {
	t.Helper()
	ts := fmt.Sprintf("..%d", time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(vol, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(vol, ts, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = os.Symlink(filepath.Join("..data", n), filepath.Join(vol, n))
	}
	_ = os.Remove(filepath.Join(vol, "..data_tmp"))
	if err := os.Symlink(ts, filepath.Join(vol, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(vol, "..data_tmp"), filepath.Join(vol, "..data")); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(addr, path string) (int, string) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestConfigMapReloadValidatesSignalsAndKeepsOldConfigOnFailure(t *testing.T) {
	dir := t.TempDir()
	vol, live, seen := filepath.Join(dir, "volume"), filepath.Join(dir, "live"), filepath.Join(dir, "seen")
	kubeletPublish(t, vol, map[string]string{"app.conf": "ok v1"})
	addr := freeAddr(t)
	// The "application" records the live config each time it is told to reload.
	app := fmt.Sprintf(`trap 'cat %s/app.conf >> %s; echo >> %s' HUP; cat %s/app.conf > %s; echo >> %s; while :; do sleep 1 & wait $!; done`, live, seen, seen, live, seen, seen)
	cmd := exec.Command(binary, "--config", vol, "--config-dest", live, "--validate", "grep -q ok {staged}/app.conf",
		"--health-addr", addr, "--", "/bin/sh", "-c", app)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := func() []string {
		b, _ := os.ReadFile(seen)
		return strings.Fields(strings.ReplaceAll(string(b), "ok ", "ok_"))
	}
	eventually(t, "the app to start with v1", func() bool { return len(lines()) == 1 && lines()[0] == "ok_v1" })

	kubeletPublish(t, vol, map[string]string{"app.conf": "ok v2"})
	eventually(t, "SIGHUP with v2 live", func() bool { l := lines(); return len(l) == 2 && l[1] == "ok_v2" })

	kubeletPublish(t, vol, map[string]string{"app.conf": "bad v3"})
	eventually(t, "the failed reload in metrics", func() bool {
		_, m := get(addr, "/metrics")
		return strings.Contains(m, `podkit_entrypoint_reloads_total{result="failure"} 1`)
	})
	if code, _ := get(addr, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz after a failed reload = %d, want 503", code)
	}
	if b, _ := os.ReadFile(filepath.Join(live, "app.conf")); string(b) != "ok v2" {
		t.Errorf("live app.conf = %q, want the previous %q", b, "ok v2")
	}
	if l := lines(); len(l) != 2 {
		t.Errorf("app was signalled for a rejected configuration: %q", l)
	}
	if code, _ := get(addr, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d, want 200", code)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
		t.Errorf("exit after SIGTERM = %v, want 143; stderr:\n%s", err, stderr.String())
	}
}

func TestInvalidInitialConfigurationDoesNotStartTheChild(t *testing.T) {
	dir := t.TempDir()
	src, marker := filepath.Join(dir, "app.conf"), filepath.Join(dir, "started")
	if err := os.WriteFile(src, []byte("bad"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runBinary(t, nil, "--config", src, "--config-dest", filepath.Join(dir, "live.conf"),
		"--validate", "grep -q ok {staged}", "--", "/bin/sh", "-c", "touch "+marker)
	if got.code != 1 {
		t.Errorf("exit code = %d, want 1; stderr:\n%s", got.code, got.stderr)
	}
	if !strings.Contains(got.stderr, "apply initial configuration") {
		t.Errorf("stderr does not explain the failure:\n%s", got.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the child ran although the initial configuration was invalid")
	}
}

func TestOnChangeExecRunsCommandAfterTarUpdate(t *testing.T) {
	dir := t.TempDir()
	archive, live, hook, ran := filepath.Join(dir, "config.tar"), filepath.Join(dir, "live"), filepath.Join(dir, "hook.sh"), filepath.Join(dir, "ran")
	writeTar(t, archive, "app.conf", "v1")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\ncat "+live+"/app.conf >> "+ran+"\necho >> "+ran+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", archive, "--config-dest", live, "--debounce", "20ms",
		"--on-change", "exec:"+hook, "--", "/bin/sh", "-c", "while :; do sleep 1; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	eventually(t, "v1 extracted", func() bool { b, _ := os.ReadFile(filepath.Join(live, "app.conf")); return string(b) == "v1" })
	writeTar(t, archive, "app.conf", "v2")
	eventually(t, "the exec hook to see v2", func() bool { b, _ := os.ReadFile(ran); return strings.Contains(string(b), "v2") })
	if b, _ := os.ReadFile(ran); strings.Contains(string(b), "v1") {
		t.Errorf("hook ran for the initial configuration too: %q", b)
	}
}

// writeTar publishes a one-file archive atomically (temp file + rename).
func writeTar(t *testing.T, p, name, body string) {
	t.Helper()
	f, err := os.Create(p + ".tmp")
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(body))
	if err := errors.Join(tw.Close(), f.Close()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
}

// The child exits while a validator (run for a configuration change) is still running: PID 1
// kills it, collects it and exits with the child's code, instead of waiting for a status that
// nobody would ever reap.
func TestChildExitWhileAValidatorRunsDoesNotBlockPID1(t *testing.T) {
	dir := t.TempDir()
	src, live, mark := filepath.Join(dir, "src"), filepath.Join(dir, "live"), filepath.Join(dir, "validating")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "app.conf"), []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The validator hangs on the second version; the child exits once it sees it hanging.
	script := filepath.Join(dir, "validate.sh")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\nif grep -q v2 \"$1/app.conf\"; then touch %s; exec sleep 300; fi\n", mark)), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", src, "--config-dest", live, "--validate", script+" {staged}",
		"--", "/bin/sh", "-c", fmt.Sprintf("while [ ! -e %s ]; do sleep 0.05; done; exit 3", mark))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	eventually(t, "the first version live", func() bool { b, _ := os.ReadFile(filepath.Join(live, "app.conf")); return string(b) == "v1" })
	if err := os.WriteFile(filepath.Join(src, "app.conf"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Errorf("exit = %v, want the child's 3; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("podkit-entrypoint still running 60 s after its child exited; stderr:\n%s", stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(live, "app.conf")); string(b) != "v1" {
		t.Errorf("live app.conf = %q, want v1 (the hanging validation never passed)", b)
	}
}

// Facts from tini (src/tini.c): -e EXIT_CODE remaps that code (0-255, repeatable) to 0 and
// leaves others alone; --version prints a version line and exits 0.
func TestTiniParityExitCodeRemapAndVersion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"-e", "3", "--", "/bin/sh", "-c", "exit 3"}, 0},
		{[]string{"-e", "3", "-e", "143", "--", "/bin/sh", "-c", "kill -TERM $$"}, 0},
		{[]string{"--expect-exit-code", "3", "--", "/bin/sh", "-c", "exit 4"}, 4},
	} {
		if got := runBinary(t, nil, tt.args...); got.code != tt.want {
			t.Errorf("%v: exit code %d, want %d; stderr:\n%s", tt.args, got.code, tt.want, got.stderr)
		}
	}
	out, err := exec.Command(binary, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "podkit-entrypoint version ") {
		t.Errorf("--version = %q, %v; want a version line and exit 0", out, err)
	}
}

// --signal-target child sends a forwarded SIGTERM to CMD alone, as tini does by default: a
// grandchild in CMD's process group lives on. The default, group (dumb-init, tini -g), reaches it.
func TestSignalTargetChildOrGroup(t *testing.T) {
	for _, tt := range []struct {
		target       string
		grandchildUp bool
	}{{"child", true}, {"group", false}} {
		t.Run(tt.target, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "grandchild")
			// The shell waits on its background sleep; TERM interrupts the wait and ends the shell.
			cmd := exec.Command(binary, "--signal-target", tt.target, "--", "/bin/sh", "-c",
				fmt.Sprintf(`sleep 300 >/dev/null 2>&1 & echo $! > %s.tmp; mv %s.tmp %s; wait`, pidFile, pidFile, pidFile))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the grandchild's pid", func() bool { _, err := os.Stat(pidFile); return err == nil })
			b, _ := os.ReadFile(pidFile)
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err != nil {
				t.Fatalf("grandchild pid %q: %v", b, err)
			}
			defer func() { _ = unix.Kill(pid, unix.SIGKILL) }()
			_ = cmd.Process.Signal(syscall.SIGTERM)
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
				t.Errorf("exit = %v, want 143; stderr:\n%s", err, stderr.String())
			}
			// The entrypoint (a subreaper here) has exited; a surviving grandchild was
			// re-parented, a signalled one is dead or a zombie about to be reaped.
			alive := func() bool {
				st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				return err == nil && !strings.Contains(string(st), ") Z ")
			}
			if tt.grandchildUp {
				if !alive() {
					t.Errorf("grandchild %d was signalled although --signal-target child", pid)
				}
				return
			}
			eventually(t, "the grandchild to end", func() bool { return !alive() })
		})
	}
}

// Like tini, the entrypoint never escalates a forwarded SIGTERM to SIGKILL unless --grace asks:
// a child that ignores SIGTERM is killed after --grace 300ms (137), and without --grace it is
// still running well after that, until it exits by itself.
func TestNoSIGKILLEscalationUnlessGraceIsSet(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"--grace", "300ms"}, 137},
		{nil, 5},
	} {
		dir := t.TempDir()
		ready, termed, release := filepath.Join(dir, "ready"), filepath.Join(dir, "termed"), filepath.Join(dir, "release")
		script := fmt.Sprintf(`trap 'touch %s' TERM; touch %s; while [ ! -e %s ]; do sleep 0.05; done; exit 5`, termed, ready, release)
		cmd := exec.Command(binary, append(tt.args, "--", "/bin/sh", "-c", script)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the child's trap", func() bool { _, err := os.Stat(ready); return err == nil })
		_ = cmd.Process.Signal(syscall.SIGTERM)
		eventually(t, "the child to see SIGTERM", func() bool { _, err := os.Stat(termed); return err == nil })
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if tt.want == 5 {
			select {
			case err := <-done:
				t.Fatalf("without --grace the child was ended (%v) although it ignores SIGTERM", err)
			case <-time.After(2 * time.Second): // far beyond the 300 ms that kill it above
			}
			if err := os.WriteFile(release, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := <-done
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != tt.want {
			t.Errorf("%v: exit = %v, want %d", tt.args, err, tt.want)
		}
	}
}

// The binary forwards from its signal handler (SupervisorOptions.DirectForward): the handler
// sends SIGTERM to the child, and Go hears of it only afterwards. The stop must still be
// accounted for before the restart decision: under --restart always, a SIGTERM that ends the
// child ends PID 1, every time (ten rounds). Without the handler's report the child is
// restarted (checked by removing it).
func TestStopSignalWinsOverRestartAlways(t *testing.T) {
	for round := range 10 {
		dir := t.TempDir()
		count := filepath.Join(dir, "count")
		script := fmt.Sprintf(`echo x >> %s; trap 'exit 0' TERM; while :; do sleep 0.02; done`, count)
		cmd := exec.Command(binary, "--restart", "always", "--", "/bin/sh", "-c", script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the child to start", func() bool { b, _ := os.ReadFile(count); return len(b) > 0 })
		time.Sleep(30 * time.Millisecond) // the trap is set after the echo
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: exit = %v, want 0 (the child's)", round, err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("round %d: PID 1 still runs 30 s after SIGTERM: the child was restarted", round)
		}
		if b, _ := os.ReadFile(count); strings.Count(string(b), "x") != 1 {
			t.Fatalf("round %d: the child ran %d times, want once", round, strings.Count(string(b), "x"))
		}
	}
}

// PID 1 runs itself again with GOMAXPROCS=1 (fewer threads and less memory); the application
// must not inherit that, and a GOMAXPROCS the user set is left alone, for both.
func TestOneProcessorForPID1OnlyAndNeverForTheChild(t *testing.T) {
	for _, tt := range []struct {
		env       []string
		wantPID1  string // GOMAXPROCS in PID 1's environment
		wantChild string // GOMAXPROCS the child sees
	}{
		{nil, "GOMAXPROCS=1", ""},
		{[]string{"GOMAXPROCS=3"}, "GOMAXPROCS=3", "GOMAXPROCS=3"},
	} {
		dir := t.TempDir()
		childEnv, release := filepath.Join(dir, "env"), filepath.Join(dir, "release")
		cmd := exec.Command(binary, "--", "/bin/sh", "-c", fmt.Sprintf(`env > %s.tmp; mv %s.tmp %s; while [ ! -e %s ]; do sleep 0.02; done`, childEnv, childEnv, childEnv, release))
		cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "GOMAXPROCS=") }), tt.env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the child's environment", func() bool { _, err := os.Stat(childEnv); return err == nil })
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		var pid1 string
		for _, e := range strings.Split(string(b), "\x00") {
			if strings.HasPrefix(e, "GOMAXPROCS=") {
				pid1 = e
			}
		}
		child, _ := os.ReadFile(childEnv)
		var got string
		for _, e := range strings.Split(string(child), "\n") {
			if strings.HasPrefix(e, "GOMAXPROCS=") {
				got = e
			}
			if strings.HasPrefix(e, reexecMark) {
				t.Errorf("the child sees %s", e)
			}
		}
		_ = os.WriteFile(release, nil, 0o644)
		if err := cmd.Wait(); err != nil {
			t.Errorf("exit: %v", err)
		}
		if pid1 != tt.wantPID1 || got != tt.wantChild {
			t.Errorf("env %v: PID 1 runs with %q, the child sees %q; want %q and %q", tt.env, pid1, got, tt.wantPID1, tt.wantChild)
		}
	}
}

// A SIGTERM while the initial configuration is still being validated (no child yet, so the
// direct handler cannot forward it) ends PID 1 with 143, stops the validator and never starts
// the child.
func TestStopWhileValidatingBeforeTheChildStarts(t *testing.T) {
	dir := t.TempDir()
	src, validating, marker := filepath.Join(dir, "app.conf"), filepath.Join(dir, "validating"), filepath.Join(dir, "started")
	if err := os.WriteFile(src, []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	validator := filepath.Join(dir, "validate.sh")
	if err := os.WriteFile(validator, []byte("#!/bin/sh\ntouch "+validating+"\nsleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", src, "--config-dest", filepath.Join(dir, "live.conf"),
		"--validate", validator, "--", "/bin/sh", "-c", "touch "+marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the validator to run", func() bool { _, err := os.Stat(validating); return err == nil })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
			t.Errorf("exit = %v, want 143", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("PID 1 still runs 20 s after SIGTERM during validation")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the child was started after the stop signal")
	}
}
