//go:build !(linux && amd64)

package entrypoint

import (
	"errors"
	"syscall"
)

// Direct forwarding needs a signal handler outside the Go runtime, written for linux/amd64 only;
// elsewhere Supervisor forwards through os/signal.
var (
	fwdPid       int32
	fwdChildOnly uint8
	fwdRewrite   [65]uint8
	fwdNotify    [65]uint8
	fwdSelf      int32
	fwdSent      [65]uint32
	fwdUnsent    [65]uint32
)

const directForwardSupported = false

type kernelSigaction struct{}

func installForwardHandler(syscall.Signal) (kernelSigaction, error) {
	return kernelSigaction{}, errors.New("direct signal forwarding is implemented for linux/amd64 only")
}

func restoreHandler(syscall.Signal, kernelSigaction) error { return nil }
