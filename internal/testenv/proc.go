package testenv

import (
	"bytes"
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// findProcesses returns the PIDs of live processes whose executable base
// name is bin and whose command line mentions marker (a directory unique to
// one control plane).
func findProcesses(bin, marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		if filepath.Base(string(args[0])) != bin || !bytes.Contains(cmdline, []byte(marker)) {
			continue
		}
		if isZombie(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// restartedProcess is a process the harness started itself.
type restartedProcess struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
}

// cmdline returns the argument vector of a live process.
func cmdline(pid int) ([]string, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("read command line of process %d: %w", pid, err)
	}
	var args []string
	for _, a := range bytes.Split(bytes.TrimRight(data, "\x00"), []byte{0}) {
		args = append(args, string(a))
	}
	if len(args) == 0 || args[0] == "" {
		return nil, fmt.Errorf("process %d has an empty command line", pid)
	}
	return args, nil
}

// killAndWait sends SIGKILL to pid and waits until it is gone. When own is
// the process's handle, its Wait reaps it; otherwise its parent does.
func killAndWait(ctx context.Context, pid int, own *restartedProcess) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill process %d: %w", pid, err)
	}
	if own != nil && own.cmd.Process.Pid == pid {
		select {
		case <-own.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("wait for process %d to exit: %w", pid, ctx.Err())
		}
	}
	return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		return syscall.Kill(pid, 0) != nil || isZombie(pid), nil
	})
}
