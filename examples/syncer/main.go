// Command syncer is an out-of-tree syncer written only against podkit's
// public syncer interfaces: it syncs PodDisruptionBudgets from a virtual
// cluster into a host namespace, next to the built-in ConfigMap syncer.
//
//	go run ./examples/syncer --virtual-kubeconfig v.kubeconfig \
//	    --host-kubeconfig h.kubeconfig --target-namespace vc1
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/configmaps"
)

func main() {
	virtual := flag.String("virtual-kubeconfig", "", "kubeconfig of the virtual cluster")
	host := flag.String("host-kubeconfig", "", "kubeconfig of the host cluster")
	target := flag.String("target-namespace", "", "host namespace that receives synced objects")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *virtual, *host, *target); err != nil {
		fmt.Fprintf(os.Stderr, "syncer: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, virtualPath, hostPath, target string) error {
	virtualCfg, err := clientcmd.BuildConfigFromFlags("", virtualPath)
	if err != nil {
		return fmt.Errorf("load --virtual-kubeconfig: %w", err)
	}
	hostCfg, err := clientcmd.BuildConfigFromFlags("", hostPath)
	if err != nil {
		return fmt.Errorf("load --host-kubeconfig: %w", err)
	}
	logger := logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, nil))
	rc, err := syncer.NewRegisterContext(ctx, syncer.Options{
		VirtualConfig: virtualCfg, HostConfig: hostCfg, TargetNamespace: target, Name: "example", Logger: logger,
	})
	if err != nil {
		return err
	}
	pdbs, err := NewPDBSyncer(rc)
	if err != nil {
		return err
	}
	cms, err := configmaps.New(rc)
	if err != nil {
		return err
	}
	return syncer.Start(rc, pdbs, cms)
}
