// Command podkit-entrypoint is a container's PID 1: see pkg/entrypoint and docs/entrypoint.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
)

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
	}
	code, err := run(context.Background(), f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "podkit-entrypoint: "+err.Error())
	}
	os.Exit(code)
}
