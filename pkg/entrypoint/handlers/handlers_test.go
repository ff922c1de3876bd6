package handlers_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/podkit-dev/podkit/pkg/entrypoint"
	"github.com/podkit-dev/podkit/pkg/entrypoint/handlers"
)

// The program below is written the way entrypoint-framework's README describes an entrypoint
// (event based: wait on the handlers' channels, Update when a change is announced, act on the
// result) and uses only its names: NewTarredConfigurationHandler, NewProcessHandler,
// NewActivationHandler, UpdateResult.ChangedFiles, Modification.ToString. It runs a real shell
// that records each SIGHUP, with real files.

func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	// Writers move a new archive in, as the original requires.
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(p); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEntrypointWrittenAgainstTheOriginalAPI(t *testing.T) {
	dir := t.TempDir()
	archive, live, hups, active := filepath.Join(dir, "config.tar"), filepath.Join(dir, "live"), filepath.Join(dir, "hups"), filepath.Join(dir, "active")
	writeTar(t, archive, map[string]string{"a.conf": "a1"})

	config, err := handlers.NewTarredConfigurationHandler(archive, filepath.Join(dir, "new"), live, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer config.Close()
	ready := filepath.Join(dir, "ready")
	app := exec.Command("/bin/sh", "-c", `trap 'echo hup >> "$HUPS"' HUP; trap 'exit 7' TERM; : > "$READY"; while :; do sleep 0.05; done`)
	app.Env = append(os.Environ(), "HUPS="+hups, "READY="+ready)
	process, err := handlers.NewProcessHandler(app, nil)
	if err != nil {
		t.Fatal(err)
	}
	activation, err := handlers.NewActivationHandler(active, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer activation.Close()

	// A shell cannot trap a signal that was ignored when it started, and a test run under nohup
	// would hand SIGHUP to the app ignored: a handler here makes exec reset it to the default.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var results []map[string]string
	var states []bool
	process.Start()
	if err := <-process.GetStartedChannel(); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitFile(t, ready) // the shell's traps are installed
	timeout := time.After(30 * time.Second)
	next := func() {
		select {
		case err := <-config.GetWasChangedChannel():
			if err == nil {
				config.Update()
			}
		case r := <-config.GetUpdateResultChannel():
			if r.Err != nil {
				t.Fatalf("update: %v", r.Err)
			}
			got := map[string]string{}
			for f, m := range r.ChangedFiles {
				got[f] = m.ToString()
			}
			results = append(results, got)
			if err := process.Signal(syscall.SIGHUP); err != nil {
				t.Fatalf("signal: %v", err)
			}
		case ev := <-activation.GetWasChangedChannel():
			states = append(states, ev.State)
		case <-timeout:
			t.Fatalf("timed out; results %v, activation %v", results, states)
		}
	}
	for len(results) < 1 || len(states) < 1 {
		next()
	}
	writeTar(t, archive, map[string]string{"a.conf": "a2", "b.conf": "b1"})
	if err := os.WriteFile(active, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for len(results) < 2 || len(states) < 2 {
		next()
	}
	want := []map[string]string{{"a.conf": "created"}, {"a.conf": "modified", "b.conf": "created"}}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("update results (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{false, true}, states); diff != "" {
		t.Errorf("activation states (-want +got):\n%s", diff)
	}
	for p, body := range map[string]string{"a.conf": "a2", "b.conf": "b1"} {
		if b, _ := os.ReadFile(filepath.Join(live, p)); string(b) != body {
			t.Errorf("live %s = %q, want %q", p, b, body)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(hups)
		if strings.Count(string(b), "hup") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the application saw %q, want two SIGHUPs", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := process.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if code := entrypoint.ExitCode(<-process.GetEndedChannel()); code != 7 {
		t.Errorf("exit code after Stop = %d, want 7 (the trap)", code)
	}
}

func TestSingleFileAndCustomHandlers(t *testing.T) {
	dir := t.TempDir()
	src, live := filepath.Join(dir, "app.conf"), filepath.Join(dir, "live.conf")
	if err := os.WriteFile(src, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	single, err := handlers.NewSingleFileConfigurationHandler(src, live, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	if err := <-single.GetWasChangedChannel(); err != nil {
		t.Fatalf("initial change: %v", err)
	}
	single.Update()
	if err := <-single.GetUpdateResultChannel(); err != nil {
		t.Fatalf("single-file update: %v", err)
	}
	if b, _ := os.ReadFile(live); string(b) != "v1" {
		t.Errorf("live = %q, want v1", b)
	}

	copyPath := filepath.Join(dir, "copy.conf")
	custom, err := handlers.NewCustomConfigurationHandler(src, copyPath, func() string {
		b, _ := os.ReadFile(copyPath)
		return "saw " + string(b)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer custom.Close()
	<-custom.GetWasChangedChannel()
	custom.Update()
	if got := <-custom.GetUpdateResultChannel(); got != "saw v1" {
		t.Errorf("custom update result = %q, want %q", got, "saw v1")
	}
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	if err := <-single.GetWasChangedChannel(); !errors.Is(err, handlers.ErrConfigDeleted) {
		t.Errorf("after the source was removed: %v, want ErrConfigDeleted", err)
	}
}

func TestNewProcessHandlerRejectsWhatItCannotRun(t *testing.T) {
	if _, err := handlers.NewProcessHandler(nil, nil); err == nil {
		t.Error("nil cmd accepted")
	}
	cmd := exec.Command("true")
	cmd.Stdout = &bytes.Buffer{}
	if _, err := handlers.NewProcessHandler(cmd, nil); err == nil || !strings.Contains(err.Error(), "cmd.Stdout is a *bytes.Buffer") {
		t.Errorf("buffer stdout: %v, want an error naming cmd.Stdout", err)
	}
	if _, err := handlers.NewProcessHandler(exec.Command("/nonexistent/podkit-no-such-binary"), nil); err != nil {
		t.Errorf("a missing binary is a start error, not a constructor error: %v", err)
	}
}
