package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podkit-dev/podkit/internal/devcluster"
)

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
		return !devcluster.Alive(pid), nil
	})
}

// securePort returns the value of kube-apiserver's --secure-port in args.
func securePort(args []string) (string, error) {
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--secure-port="):
			return strings.TrimPrefix(a, "--secure-port="), nil
		case a == "--secure-port" && i+1 < len(args):
			return args[i+1], nil
		}
	}
	return "", errors.New("kube-apiserver command line has no --secure-port")
}

// waitListening waits until something accepts TCP connections on
// 127.0.0.1:port, or done is closed (the process exited), or ctx ends. A
// restarted apiserver must be listening before the port lock is released:
// until then its port looks free to a control plane that is starting.
func waitListening(ctx context.Context, port string, done <-chan struct{}, logFile string) error {
	for {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("restarted kube-apiserver exited before listening on port %s; its log: %s", port, tail(logFile, 2000))
		case <-ctx.Done():
			return fmt.Errorf("restarted kube-apiserver not listening on port %s: %w; its log: %s", port, ctx.Err(), tail(logFile, 2000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last n bytes of the file at path, or why it cannot.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
