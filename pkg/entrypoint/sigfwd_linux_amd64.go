package entrypoint

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// State shared with sigfwdHandler (sigfwd_linux_amd64.s). Go writes the first group while no
// handler is installed, or atomically (fwdPid); the handler only adds to the counters.
var (
	fwdHandlerAddr  uintptr // address of sigfwdHandler, set by the assembly
	fwdRestorerAddr uintptr // address of sigfwdRestorer, set by the assembly

	fwdPid       int32      // the child's pid (= its process group), 0 when none runs
	fwdChildOnly uint8      // 1: signal the child alone (SIGKILL still goes to the group)
	fwdRewrite   [65]uint8  // signal sent per signal received; 0 = the same
	fwdNotify    [65]uint8  // 1: wake Go after sending this one (stop signals)
	fwdSelf      int32      // this process's pid: the handler sends it SIGCHLD when Go must look
	fwdSent      [65]uint32 // received and already sent to the child by the handler
	fwdUnsent    [65]uint32 // received while no child ran: Go decides what to do
)

const directForwardSupported = true

// kernelSigaction is struct sigaction as rt_sigaction(2) takes it on linux/amd64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const (
	saSiginfo  = 0x4
	saRestorer = 0x04000000
	saOnstack  = 0x08000000
	saRestart  = 0x10000000
)

func rtSigaction(sig syscall.Signal, act, old *kernelSigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// installForwardHandler points sig at sigfwdHandler and returns the action it replaced.
// SA_ONSTACK: the handler runs on the thread's alternate signal stack, which the Go runtime
// gives every thread; SA_RESTART: system calls it interrupts are restarted as under Go's own.
func installForwardHandler(sig syscall.Signal) (kernelSigaction, error) {
	act := kernelSigaction{handler: fwdHandlerAddr, flags: saSiginfo | saOnstack | saRestart | saRestorer, restorer: fwdRestorerAddr}
	var old kernelSigaction
	err := rtSigaction(sig, &act, &old)
	return old, err
}

func restoreHandler(sig syscall.Signal, old kernelSigaction) error {
	return rtSigaction(sig, &old, nil)
}
