// Command entrypoint benchmarks podkit-entrypoint against Debian's tini and dumb-init running the
// same child: resident memory, idle wake-ups (context switches) and CPU over a window, signal-forward
// latency, and (podkit only) configuration change → reload signal latency over many ..data swaps.
//
//	go run ./bench/entrypoint [-window 60s] [-signals 1000] [-rounds 5] [-changes 1000] [-variant other-build]
//
// Signal latency is taken in alternating rounds (each contender gets signals/rounds per round, in
// a rotating order), so that a burst of load on the shared machine hits every contender alike.
//
// tini and dumb-init come from Debian: apt-get update && apt-get install -y tini dumb-init
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podkit-dev/podkit/bench/internal/load"
)

const (
	envRole   = "PODKIT_BENCH_ROLE"
	envMasked = "PODKIT_BENCH_CATCHER_MASKED" // set on the catcher's own re-execution
)

func main() {
	if os.Getenv(envRole) == "catcher" {
		catcher()
		return
	}
	window := flag.Duration("window", 10*time.Second, "idle measurement window (use 60s for the issue's figure)")
	nSignals := flag.Int("signals", 1000, "signals sent to each contender to measure forwarding latency")
	rounds := flag.Int("rounds", 5, "alternating rounds the signals are split into")
	variants := flag.String("variant", "", "comma-separated extra podkit-entrypoint builds to compare (named by file name)")
	nChanges := flag.Int("changes", 1000, "configuration changes for the reload latency")
	bin := flag.String("binary", "", "podkit-entrypoint binary (default: build ./cmd/podkit-entrypoint)")
	flag.Parse()
	defer load.Report()()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *window, *nSignals, *rounds, *nChanges, *bin, *variants); err != nil {
		log.Error("benchmark failed", "error", err)
		os.Exit(1)
	}
}

// catcher is the benchmark's child for latency runs: it writes one byte to stdout per SIGUSR1.
// It should add as little of its own as it can to what is measured, so it does not go through
// os/signal (three thread wake-ups of its own): it runs itself again with SIGUSR1 blocked, which
// the Go runtime then keeps blocked on every thread, and reads it from a signalfd on one thread,
// as a C program would: the kernel wakes that thread and nothing else. The same for every init.
func catcher() {
	var usr1 unix.Sigset_t
	usr1.Val[(unix.SIGUSR1-1)/64] |= 1 << ((unix.SIGUSR1 - 1) % 64)
	signal.Ignore(unix.SIGHUP)
	if os.Getenv(envMasked) == "" {
		runtime.LockOSThread()
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &usr1, nil); err != nil {
			fmt.Fprintln(os.Stderr, "block SIGUSR1:", err)
			os.Exit(1)
		}
		self, err := os.Executable()
		if err == nil {
			err = syscall.Exec(self, os.Args, append(os.Environ(), envMasked+"=1"))
		}
		fmt.Fprintln(os.Stderr, "re-exec the catcher:", err)
		os.Exit(1)
	}
	runtime.LockOSThread()
	fd, err := unix.Signalfd(-1, &usr1, unix.SFD_CLOEXEC)
	if err != nil {
		fmt.Fprintln(os.Stderr, "signalfd:", err)
		os.Exit(1)
	}
	_, _ = unix.Write(1, []byte{'r'})
	info := make([]byte, 128) // struct signalfd_siginfo
	for {
		if _, err := unix.Read(fd, info); err != nil && err != unix.EINTR {
			os.Exit(1)
		} else if err == nil {
			_, _ = unix.Write(1, []byte{'s'})
		}
	}
}

// initSystem is one contender: how to run a command under it.
type initSystem struct {
	name string
	argv func(cmd ...string) []string
	path string
	size int64
}

func contenders(podkit string, variants []string) []initSystem {
	all := []initSystem{
		{name: "podkit-entrypoint", path: podkit, argv: func(c ...string) []string { return append([]string{podkit, "--"}, c...) }},
	}
	for _, v := range variants {
		all = append(all, initSystem{name: filepath.Base(v), path: v, argv: func(c ...string) []string { return append([]string{v, "--"}, c...) }})
	}
	all = append(all, []initSystem{
		{name: "tini", path: "tini", argv: func(c ...string) []string { return append([]string{"tini", "-s", "--"}, c...) }},
		{name: "dumb-init", path: "dumb-init", argv: func(c ...string) []string { return append([]string{"dumb-init", "--"}, c...) }},
	}...)
	var out []initSystem
	for _, s := range all {
		p, err := exec.LookPath(s.path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s not found; install it with: apt-get update && apt-get install -y tini dumb-init\n", s.name)
			continue
		}
		if info, err := os.Stat(p); err == nil {
			s.size = info.Size()
		}
		out = append(out, s)
	}
	return out
}

func buildPodkit() (string, error) {
	dir, err := os.MkdirTemp("", "podkit-bench-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "podkit-entrypoint")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/podkit-entrypoint")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build podkit-entrypoint (run from the repository root): %w", err)
	}
	return out, nil
}

// started is a running init with its child.
type started struct {
	cmd    *exec.Cmd
	stdout io.ReadCloser
}

// start runs argv as PID 1 of a new PID namespace when root (as in a container), else plainly.
func start(argv []string, env []string, stdout bool) (*started, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = io.Discard
	if os.Getuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
	}
	s := &started{cmd: cmd}
	if stdout {
		r, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		s.stdout = r
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	return s, nil
}

func (s *started) stop() {
	_ = s.cmd.Process.Signal(unix.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

type procStats struct {
	rssKB    int64
	anonKB   int64 // heap, stacks, runtime structures
	fileKB   int64 // pages of the binary (and libraries) mapped in
	switches int64 // voluntary + involuntary, all threads
	cpuTicks int64 // utime + stime
	threads  int
}

func readStats(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		for k, dst := range map[string]*int64{"VmRSS:": &st.rssKB, "RssAnon:": &st.anonKB, "RssFile:": &st.fileKB} {
			if v, ok := strings.CutPrefix(line, k); ok {
				*dst, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return st, err
	}
	st.threads = len(tasks)
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, k); ok {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					st.switches += n
				}
			}
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	st.cpuTicks = ut + stt
	return st, nil
}

type idleResult struct {
	rssKB, anonKB, fileKB int64
	switches, cpuTicks    int64
	threads               int
}

// measureIdle starts every init with the same sleep, lets them settle and watches one window.
func measureIdle(inits []initSystem, window time.Duration) (map[string]idleResult, error) {
	runs := map[string]*started{}
	defer func() {
		for _, r := range runs {
			r.stop()
		}
	}()
	for _, s := range inits {
		r, err := start(s.argv("sleep", "100000"), nil, false)
		if err != nil {
			return nil, err
		}
		runs[s.name] = r
	}
	time.Sleep(time.Second)
	before := map[string]procStats{}
	for name, r := range runs {
		st, err := readStats(r.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("read %s stats: %w", name, err)
		}
		before[name] = st
	}
	time.Sleep(window)
	out := map[string]idleResult{}
	for name, r := range runs {
		st, err := readStats(r.cmd.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("read %s stats: %w", name, err)
		}
		out[name] = idleResult{rssKB: st.rssKB, anonKB: st.anonKB, fileKB: st.fileKB, switches: st.switches - before[name].switches,
			cpuTicks: st.cpuTicks - before[name].cpuTicks, threads: st.threads}
	}
	return out, nil
}

// catcherByte waits up to timeout for the next byte the catcher writes, blocking this thread in
// poll(2) and read(2) on the pipe: the kernel wakes the thread directly, so the measurement adds
// no hand-off through Go's poller and goroutines (the caller locks its OS thread).
func catcherByte(fd int, timeout time.Duration) (byte, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("poll catcher: %w", err)
		}
		if n == 0 {
			return 0, fmt.Errorf("no byte from the catcher within %v", timeout)
		}
		var b [1]byte
		m, err := unix.Read(fd, b[:])
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil || m == 0 {
			return 0, fmt.Errorf("read catcher: %v (eof: %v)", err, m == 0)
		}
		return b[0], nil
	}
}

// stdoutFD is the catcher's pipe as a raw descriptor (the os.File keeps it open).
func stdoutFD(r *started) int { return int(r.stdout.(*os.File).Fd()) }

// measureSignals runs every init with the catcher child and sends each n SIGUSR1 in alternating
// rounds, timing each until the catcher reports it.
func measureSignals(inits []initSystem, n, rounds int) (map[string][]time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type catcher struct {
		s  initSystem
		r  *started
		fd int
	}
	var cs []catcher
	defer func() {
		for _, c := range cs {
			c.r.stop()
		}
	}()
	for _, s := range inits {
		r, err := start(s.argv(self), []string{envRole + "=catcher"}, true)
		if err != nil {
			return nil, err
		}
		c := catcher{s: s, r: r, fd: stdoutFD(r)}
		cs = append(cs, c)
		if b, err := catcherByte(c.fd, 10*time.Second); err != nil || b != 'r' {
			return nil, fmt.Errorf("%s: catcher did not start: %v", s.name, err)
		}
	}
	rounds = max(1, rounds)
	out := map[string][]time.Duration{}
	for round := range rounds {
		for i := range cs {
			c := cs[(i+round)%len(cs)]
			for range n / rounds {
				t0 := time.Now()
				if err := c.r.cmd.Process.Signal(unix.SIGUSR1); err != nil {
					return nil, err
				}
				if _, err := catcherByte(c.fd, 10*time.Second); err != nil {
					return nil, fmt.Errorf("%s: %w", c.s.name, err)
				}
				out[c.s.name] = append(out[c.s.name], time.Since(t0))
				time.Sleep(time.Millisecond)
			}
		}
	}
	return out, nil
}

// measureReload publishes n ConfigMap-style ..data swaps and times each until the child gets
// the reload signal.
func measureReload(podkit string, n int) ([]time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "podkit-bench-reload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	vol, live := filepath.Join(dir, "volume"), filepath.Join(dir, "live")
	prev, err := publish(vol, 0, "")
	if err != nil {
		return nil, err
	}
	r, err := start([]string{podkit, "--config", vol, "--config-dest", live, "--on-change", "signal:SIGUSR1", "--log-level", "error", "--", self},
		[]string{envRole + "=catcher"}, true)
	if err != nil {
		return nil, err
	}
	defer r.stop()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	fd := stdoutFD(r)
	if b, err := catcherByte(fd, 10*time.Second); err != nil || b != 'r' {
		return nil, fmt.Errorf("catcher did not start: %v", err)
	}
	lat := make([]time.Duration, 0, n)
	for i := 1; i <= n; i++ {
		var t0 time.Time
		old := prev
		if prev, err = publishTimed(vol, i, prev, &t0); err != nil {
			return nil, err
		}
		if _, err := catcherByte(fd, 10*time.Second); err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		lat = append(lat, time.Since(t0))
		// The kubelet removes the previous version after the swap; do it outside the timing.
		_ = os.RemoveAll(filepath.Join(vol, old))
	}
	return lat, nil
}

func publish(vol string, v int, prev string) (string, error) {
	var t time.Time
	return publishTimed(vol, v, prev, &t)
}

// publishTimed does what the kubelet does; *t0 is set just before the atomic ..data rename.
func publishTimed(vol string, v int, prev string, t0 *time.Time) (string, error) {
	ts := fmt.Sprintf("..v%d", v)
	if err := os.MkdirAll(filepath.Join(vol, ts), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(vol, ts, "app.conf"), []byte(fmt.Sprintf("version %d\n", v)), 0o644); err != nil {
		return "", err
	}
	_ = os.Symlink(filepath.Join("..data", "app.conf"), filepath.Join(vol, "app.conf"))
	tmp := filepath.Join(vol, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		return "", err
	}
	*t0 = time.Now()
	if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
		return "", err
	}
	return ts, nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func run(log *slog.Logger, window time.Duration, nSignals, rounds, nChanges int, bin, variants string) error {
	if bin == "" {
		var err error
		if bin, err = buildPodkit(); err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(bin))
	}
	var extra []string
	if variants != "" {
		extra = strings.Split(variants, ",")
	}
	inits := contenders(bin, extra)
	log.Info("measuring idle behaviour", "window", window, "contenders", len(inits))
	idle, err := measureIdle(inits, window)
	if err != nil {
		return err
	}
	log.Info("measuring signal forwarding", "signals", nSignals, "rounds", rounds)
	sigLat, err := measureSignals(inits, nSignals, rounds)
	if err != nil {
		return err
	}
	log.Info("measuring config change → reload signal", "changes", nChanges)
	reload, err := measureReload(bin, nChanges)
	if err != nil {
		return err
	}

	fmt.Printf("\npodkit-entrypoint vs tini vs dumb-init, child: sleep (idle) / signal catcher (latency); PID 1 in a new PID namespace: %v\n\n", os.Getuid() == 0)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "metric\t"
	for _, s := range inits {
		header += s.name + "\t"
	}
	for _, s := range inits[1:] {
		header += "podkit/" + s.name + "\t"
	}
	fmt.Fprintln(tw, header)
	row := func(name string, val func(initSystem) float64, format func(float64) string) {
		line := name + "\t"
		for _, s := range inits {
			line += format(val(s)) + "\t"
		}
		p := val(inits[0])
		for _, s := range inits[1:] {
			if b := val(s); b != 0 {
				line += fmt.Sprintf("%.2fx\t", p/b)
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(tw, line)
	}
	kb := func(v float64) string { return fmt.Sprintf("%.0f KiB", v) }
	num := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	us := func(v float64) string { return fmt.Sprintf("%.0f µs", v) }
	row("binary size", func(s initSystem) float64 { return float64(s.size) / 1024 }, kb)
	row("RSS", func(s initSystem) float64 { return float64(idle[s.name].rssKB) }, kb)
	row("  of which file-backed", func(s initSystem) float64 { return float64(idle[s.name].fileKB) }, kb)
	row("  of which anonymous", func(s initSystem) float64 { return float64(idle[s.name].anonKB) }, kb)
	row("threads", func(s initSystem) float64 { return float64(idle[s.name].threads) }, num)
	row(fmt.Sprintf("ctx switches in %v", window), func(s initSystem) float64 { return float64(idle[s.name].switches) }, num)
	row(fmt.Sprintf("CPU ticks in %v", window), func(s initSystem) float64 { return float64(idle[s.name].cpuTicks) }, num)
	row("signal forward p50", func(s initSystem) float64 { return float64(pct(sigLat[s.name], 0.5).Microseconds()) }, us)
	row("signal forward p99", func(s initSystem) float64 { return float64(pct(sigLat[s.name], 0.99).Microseconds()) }, us)
	_ = tw.Flush()
	fmt.Printf("\nconfig change (..data swap) → reload signal at the child, podkit-entrypoint only (tini and dumb-init have no equivalent), %d changes:\n", len(reload))
	fmt.Printf("  p50 %v   p99 %v   max %v\n", pct(reload, 0.5), pct(reload, 0.99), pct(reload, 1))
	return nil
}
