package entrypoint

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// directForwarder forwards signals from the signal handler itself (see
// SupervisorOptions.DirectForward): the thread the kernel wakes for the signal sends it on at
// once, as tini's single thread does, instead of passing it through the Go runtime's signal
// goroutine, a channel and the Supervisor's goroutine (three thread wake-ups). When Go has to act
// (stop signals disable restarts and arm the grace period; signals received while no child runs
// are handled as before), the handler sends this process a SIGCHLD, which the Supervisor's loop
// receives anyway; other signals are only counted, and logged at the next drain.
type directForwarder struct {
	old map[syscall.Signal]kernelSigaction
}

// directInUse makes direct forwarding one Supervisor's at a time: the handler's state is global.
var directInUse atomic.Bool

// errDirectInUse means another Supervisor in this process forwards directly.
var errDirectInUse = errors.New("direct signal forwarding is already used by another Supervisor in this process")

func startDirectForward(sigs []syscall.Signal, rewrite map[syscall.Signal]syscall.Signal, childOnly bool) (*directForwarder, error) {
	if !directForwardSupported {
		_, err := installForwardHandler(0)
		return nil, err
	}
	if !directInUse.CompareAndSwap(false, true) {
		return nil, errDirectInUse
	}
	atomic.StoreInt32(&fwdPid, 0)
	fwdSelf = int32(os.Getpid())
	fwdChildOnly = 0
	if childOnly {
		fwdChildOnly = 1
	}
	for i := range fwdRewrite {
		fwdRewrite[i] = 0
		fwdNotify[i] = 0
		if isStopSignal(syscall.Signal(i)) {
			fwdNotify[i] = 1
		}
		atomic.StoreUint32(&fwdSent[i], 0)
		atomic.StoreUint32(&fwdUnsent[i], 0)
	}
	for from, to := range rewrite {
		fwdRewrite[from] = uint8(to)
	}
	d := &directForwarder{old: map[syscall.Signal]kernelSigaction{}}
	for _, sig := range sigs {
		old, err := installForwardHandler(sig)
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("install the forwarding handler for %s: %w", unix.SignalName(sig), err)
		}
		d.old[sig] = old
	}
	return d, nil
}

// setPid tells the handler where to send: the child's pid, or 0 while none runs.
func (d *directForwarder) setPid(pid int) { atomic.StoreInt32(&fwdPid, int32(pid)) }

// directSent counts the signals the handler sent, over the process's life (tests read it).
var directSent atomic.Uint64

// drainSent calls fn once for every signal the handler has sent since the last call.
func drainSent(fn func(sig, out syscall.Signal)) {
	for i := range fwdSent {
		for n := atomic.SwapUint32(&fwdSent[i], 0); n > 0; n-- {
			directSent.Add(1)
			out := syscall.Signal(i)
			if r := fwdRewrite[i]; r != 0 {
				out = syscall.Signal(r)
			}
			fn(syscall.Signal(i), out)
		}
	}
}

// drainUnsent calls fn once for every signal received while no child ran.
func drainUnsent(fn func(sig syscall.Signal)) {
	for i := range fwdUnsent {
		for n := atomic.SwapUint32(&fwdUnsent[i], 0); n > 0; n-- {
			fn(syscall.Signal(i))
		}
	}
}

// stop gives the signals back to the handlers they had (the Go runtime's) and releases the
// global state. Signals still counted are dropped: stop runs once the child has ended for good.
func (d *directForwarder) stop() {
	atomic.StoreInt32(&fwdPid, 0)
	for sig, old := range d.old {
		_ = restoreHandler(sig, old)
	}
	directInUse.Store(false)
}
