package devcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockPorts takes a machine-wide lock that podkit holds while a control
// plane picks its ports and until it listens on them. kwokctl (and envtest)
// choose a port by finding a free one and releasing it, so two clusters
// starting at once could pick the same port and one would answer the other's
// clients with a certificate from the wrong CA. The returned func releases
// the lock.
func LockPorts(ctx context.Context) (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "podkit-ports.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open port lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for port lock %s (another cluster is starting): %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
