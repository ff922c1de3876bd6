// Command podkit-entrypoint is a container's PID 1: see pkg/entrypoint and docs/entrypoint.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
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

func main() {
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
