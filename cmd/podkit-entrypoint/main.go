// Command podkit-entrypoint is a container's PID 1: see pkg/entrypoint and docs/entrypoint.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3"); otherwise the module
// version from the build information is used.
var version string

func versionString() string {
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return v + " (" + runtime.Version() + ")"
}

// reexecMark is set, with GOMAXPROCS=1, on the one re-execution of this binary by
// oneProcessor; both are removed from the environment again before anything else runs.
const reexecMark = "PODKIT_ENTRYPOINT_ONE_P"

// oneProcessor runs the binary again with GOMAXPROCS=1 unless GOMAXPROCS was set. PID 1 waits
// for signals and children and never needs two Ps, but the Go runtime reads GOMAXPROCS before
// main: with several Ps it starts spare threads and per-P caches during its own start-up, about
// 200 KiB of resident memory and one to two threads that runtime.GOMAXPROCS(1) in main would
// not give back. The child never sees either variable. When the exec fails (no /proc), this
// process simply goes on with the runtime's default.
func oneProcessor() {
	if os.Getenv(reexecMark) != "" {
		_ = os.Unsetenv(reexecMark)
		_ = os.Unsetenv("GOMAXPROCS")
		return
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set || runtime.GOMAXPROCS(0) == 1 {
		return
	}
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	_ = syscall.Exec(self, os.Args, append(os.Environ(), "GOMAXPROCS=1", reexecMark+"=1"))
}

func main() {
	oneProcessor()
	f, err := parseFlags(os.Args[1:], os.Getenv)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "podkit-entrypoint: "+ue.msg)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "podkit-entrypoint: "+err.Error())
		os.Exit(1)
	case f.help:
		usage(os.Stdout)
		return
	case f.version:
		fmt.Println("podkit-entrypoint version " + versionString())
		return
	}
	code, err := run(context.Background(), f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "podkit-entrypoint: "+err.Error())
	}
	os.Exit(code)
}
