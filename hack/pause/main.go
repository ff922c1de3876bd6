// Command pause is the sandbox ("pause") container of podkit's real dev
// node: it holds a pod's namespaces, reaps the zombies a shared process
// namespace hands it, and does nothing else. It exits 0 on SIGINT or
// SIGTERM, so that stopping a sandbox never waits for the kill timeout.
// hack/tools.sh builds it statically; the dev node writes it into an OCI
// archive and imports it into containerd as the sandbox image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		os.Stdout.WriteString("podkit pause\n")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
