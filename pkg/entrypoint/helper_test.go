package entrypoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the processes the tests need: a PID-1 supervisor and a signal
// recorder. TestMain dispatches on PODKIT_TEST_ROLE before any test runs.
const (
	envRole    = "PODKIT_TEST_ROLE"
	envOut     = "PODKIT_TEST_OUT"
	envCommand = "PODKIT_TEST_COMMAND"
	envRewrite = "PODKIT_TEST_REWRITE"
	envDirect  = "PODKIT_TEST_DIRECT" // "1": SupervisorOptions.DirectForward
)

func TestMain(m *testing.M) {
	switch os.Getenv(envRole) {
	case "":
		os.Exit(m.Run())
	case "supervisor":
		os.Exit(supervisorRole())
	case "recorder":
		os.Exit(recorderRole())
	default:
		fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(envRole))
		os.Exit(2)
	}
}

// supervisorReport is what the supervisor role writes to PODKIT_TEST_OUT.
type supervisorReport struct {
	Pid        int    `json:"pid"`
	ExitCode   int    `json:"exitCode"`
	Reaped     uint64 `json:"reaped"`
	Orphans    uint64 `json:"orphans"`
	Drained    int    `json:"drained"`
	Zombies    int    `json:"zombies"`
	Others     int    `json:"others"`
	Subreaper  bool   `json:"subreaper"`
	SetupError string `json:"setupError,omitempty"`
	// DirectSent counts signals the direct handler forwarded; GoHandlerBack says a signal
	// reached signal.Notify again after Run returned (the runtime's handler was given back).
	DirectSent    uint64 `json:"directSent"`
	GoHandlerBack bool   `json:"goHandlerBack"`
}

func supervisorRole() int {
	rep := supervisorReport{Pid: os.Getpid()}
	defer func() {
		b, _ := json.Marshal(rep)
		_ = os.WriteFile(os.Getenv(envOut)+".tmp", b, 0o644)
		_ = os.Rename(os.Getenv(envOut)+".tmp", os.Getenv(envOut))
	}()
	if os.Getpid() == 1 {
		// A private /proc for this PID namespace, so the zombie count sees only our processes.
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			rep.SetupError = err.Error()
			return 1
		}
		if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
			rep.SetupError = err.Error()
			return 1
		}
	}
	var cmd []string
	_ = json.Unmarshal([]byte(os.Getenv(envCommand)), &cmd)
	rw, err := ParseSignalRewrite(os.Getenv(envRewrite))
	if err != nil {
		rep.SetupError = err.Error()
		return 1
	}
	s, err := NewSupervisor(SupervisorOptions{
		ProcessOptions: ProcessOptions{Command: cmd, Stdout: os.Stderr, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))},
		SignalRewrite:  rw,
		DirectForward:  os.Getenv(envDirect) == "1",
	})
	if err != nil {
		rep.SetupError = err.Error()
		return 1
	}
	code, err := s.Run(context.Background())
	if err != nil {
		rep.SetupError = err.Error()
		return 1
	}
	rep.ExitCode = code
	rep.DirectSent = directSent.Load()
	back := make(chan os.Signal, 1)
	signal.Notify(back, unix.SIGUSR2)
	_ = unix.Kill(os.Getpid(), unix.SIGUSR2)
	select {
	case <-back:
		rep.GoHandlerBack = true
	case <-time.After(10 * time.Second):
	}
	signal.Stop(back)
	var sub int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&sub)), 0, 0, 0); err == nil {
		rep.Subreaper = sub == 1
	}
	// Whatever is still running (slow orphans) is awaited here, so nothing is left behind.
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			break
		}
		rep.Drained++
	}
	rep.Reaped, rep.Orphans = s.Reaper().Reaped(), s.Reaper().Orphans()
	rep.Zombies, rep.Others = countChildren(os.Getpid())
	return 0
}

// countChildren scans /proc for processes whose parent is pid: zombies and live ones. As PID 1 in
// its own namespace every other process counts.
func countChildren(pid int) (zombies, others int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n == pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var state string
		ppid := -1
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "State:"); ok {
				state = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if pid != 1 && ppid != pid {
			continue
		}
		if strings.HasPrefix(state, "Z") {
			zombies++
		} else {
			others++
		}
	}
	return zombies, others
}

// recorderRole appends the name of every signal it receives to PODKIT_TEST_OUT, after "ready".
// SIGTERM ends it with code 0 once recorded.
func recorderRole() int {
	f, err := os.OpenFile(os.Getenv(envOut), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 1
	}
	defer f.Close()
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGINT,
		unix.SIGQUIT, unix.SIGTERM, unix.SIGALRM, unix.SIGCONT, syscall.Signal(40))
	_, _ = f.WriteString("ready\n")
	for v := range ch {
		sig := v.(syscall.Signal)
		_, _ = f.WriteString(signalName(sig) + "\n")
		if sig == unix.SIGTERM || sig == unix.SIGQUIT {
			return 0
		}
	}
	return 0
}

// signalName is unix.SignalName with a numeric fallback for real-time signals.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "SIG" + strconv.Itoa(int(sig))
}
