package syncer_test

import (
	"context"
	"log"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources"
)

// Run the built-in ConfigMap and Pod syncers between a virtual cluster and
// the host namespace "vc1" until ctx ends. Add your own plug-ins (any
// syncer.Syncer, FakeSyncer or ControllerStarter) to the same Start call.
func Example() {
	ctx := context.Background()
	virtualCfg, err := clientcmd.BuildConfigFromFlags("", "virtual.kubeconfig")
	if err != nil {
		log.Fatal(err)
	}
	hostCfg, err := clientcmd.BuildConfigFromFlags("", "host.kubeconfig")
	if err != nil {
		log.Fatal(err)
	}
	rc, err := syncer.NewRegisterContext(ctx, syncer.Options{
		VirtualConfig:   virtualCfg,
		HostConfig:      hostCfg,
		TargetNamespace: "vc1",
		Name:            "vc1",
		Workers:         8,
	})
	if err != nil {
		log.Fatal(err)
	}
	plugins, err := resources.New(rc, []string{"configmaps", "pods"})
	if err != nil {
		log.Fatal(err)
	}
	if err := syncer.Start(rc, plugins...); err != nil {
		log.Fatal(err)
	}
}
