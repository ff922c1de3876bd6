package entrypoint

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals lists what the Supervisor relays to the child: every catchable signal except
// SIGCHLD (it drives reaping), the synchronous fault signals (they concern this process only),
// SIGURG (the Go runtime uses it for preemption) and SIGPROF (profiling), plus the real-time range.
func forwardedSignals() []syscall.Signal {
	skip := map[syscall.Signal]bool{
		unix.SIGCHLD: true, unix.SIGKILL: true, unix.SIGSTOP: true, unix.SIGURG: true,
		unix.SIGPROF: true, unix.SIGILL: true, unix.SIGTRAP: true, unix.SIGBUS: true,
		unix.SIGFPE: true, unix.SIGSEGV: true, unix.SIGSYS: true, unix.SIGTTIN: true,
		unix.SIGTTOU: true,
	}
	var out []syscall.Signal
	for s := syscall.Signal(1); s <= 31; s++ {
		if !skip[s] {
			out = append(out, s)
		}
	}
	// 32 and 33 are reserved by C libraries; 34..64 are SIGRTMIN..SIGRTMAX.
	for s := syscall.Signal(34); s <= 64; s++ {
		out = append(out, s)
	}
	return out
}

// ParseSignal accepts "TERM", "SIGTERM", "sigterm" or a number such as "15".
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("parse signal %q: number out of range 1..64", s)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(t, "SIG") {
		t = "SIG" + t
	}
	if sig := unix.SignalNum(t); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("parse signal %q: unknown signal name", s)
}

// ParseSignalRewrite parses "TERM:QUIT,INT:TERM" into a rewrite map (received → sent).
func ParseSignalRewrite(s string) (map[syscall.Signal]syscall.Signal, error) {
	out := map[syscall.Signal]syscall.Signal{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		from, to, ok := strings.Cut(pair, ":")
		if !ok {
			return nil, fmt.Errorf("parse signal rewrite %q: want FROM:TO, e.g. TERM:QUIT", pair)
		}
		f, err := ParseSignal(from)
		if err != nil {
			return nil, err
		}
		t, err := ParseSignal(to)
		if err != nil {
			return nil, err
		}
		out[f] = t
	}
	return out, nil
}

// isStopSignal reports whether receiving sig means the container is being shut down, so that a
// restart policy must not bring the child back.
func isStopSignal(sig syscall.Signal) bool {
	return sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGQUIT
}
