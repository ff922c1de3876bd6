package sync

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// defaultSync is what --sync enables when not set.
var defaultSync = []string{"configmaps", "secrets", "services", "pods", "events"}

type flags struct {
	hostKubeconfig    string
	virtualKubeconfig string
	targetNamespace   string
	name              string
	sync              []string
	allow             []string
	apiServerAddress  string
	dnsAddress        string
	clusterDomain     string
	workers           int
	qps               float32
	burst             int
}

// NewCommand returns `podkit sync` with its `run` subcommand.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync a virtual cluster's objects into a host namespace (vcluster style)",
	}
	cmd.AddCommand(newRunCommand(ctx, c))
	return cmd
}

func newRunCommand(ctx context.Context, c *common.Common) *cobra.Command {
	f := &flags{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the syncer until interrupted",
		Long: `Run the syncer between a virtual cluster and one namespace of a host cluster.

Virtual objects are copied to the host as <name>-x-<namespace>-x-<vcluster>
(hashed past 63 characters) and marked as managed; host objects the syncer did
not create are never touched. Pod status, node names and events flow back up.

By default a tenant gets no more than a host namespace under Pod Security
"baseline": privileged pods, host namespaces, hostPath, host ports, extra
capabilities, tolerations, projected tokens and in-tree storage volumes are
refused (a PolicyRefused event on the virtual pod names the field and the
--allow value), NodePort/LoadBalancer Services become ClusterIP and
externalIPs are cleared, and only ConfigMaps and Secrets that synced pods use
are copied. Tenant label keys are rewritten (app -> label.podkit.dev/app).`,
		Example: `  podkit sync run --virtual-kubeconfig virtual.kubeconfig \
    --host-kubeconfig host.kubeconfig --target-namespace vc1 --sync configmaps,secrets,pods`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runE(cmd.Context(), c, f) },
	}
	cmd.SetContext(ctx)
	fs := cmd.Flags()
	fs.StringVar(&f.hostKubeconfig, "host-kubeconfig", "", "kubeconfig of the host cluster (default: --kubeconfig / KUBECONFIG)")
	fs.StringVar(&f.virtualKubeconfig, "virtual-kubeconfig", "", "kubeconfig of the virtual cluster (required)")
	fs.StringVar(&f.targetNamespace, "target-namespace", "", "host namespace that receives synced objects (required)")
	fs.StringVar(&f.name, "name", syncer.DefaultName, "virtual cluster name, the suffix of host object names")
	fs.StringSliceVar(&f.sync, "sync", defaultSync, "syncers to enable: "+strings.Join(resources.Names(), ", ")+", or gvk:Kind.version.group[+status]")
	fs.StringSliceVar(&f.allow, "allow", nil, "host-level settings virtual objects may carry to the host (default: none): "+strings.Join(permissionNames(), ", "))
	fs.StringVar(&f.apiServerAddress, "virtual-apiserver-address", "", "IP:port at which host pods reach the virtual API server (KUBERNETES_SERVICE_HOST/PORT, host alias kubernetes.default.svc); default: the host's variables stay")
	fs.StringVar(&f.dnsAddress, "virtual-dns-address", "", "IP of a DNS server resolving the virtual cluster's Services; ClusterFirst host pods get dnsPolicy None with it (default: the host's cluster DNS)")
	fs.StringVar(&f.clusterDomain, "cluster-domain", synccontext.DefaultClusterDomain, "DNS domain of the virtual cluster, for the search path of --virtual-dns-address")
	fs.IntVar(&f.workers, "workers", syncer.DefaultWorkers, "concurrent reconciles per syncer")
	fs.Float32Var(&f.qps, "qps", syncer.DefaultQPS, "client requests per second, per cluster")
	fs.IntVar(&f.burst, "burst", syncer.DefaultBurst, "client request burst, per cluster")
	return cmd
}

func (f *flags) validate() error {
	if f.virtualKubeconfig == "" {
		return clierr.Usagef("--virtual-kubeconfig is required: the kubeconfig of the virtual cluster")
	}
	if f.targetNamespace == "" {
		return clierr.Usagef("--target-namespace is required: the host namespace that receives synced objects")
	}
	if err := translator.ValidateVirtualClusterName(f.name); err != nil {
		return clierr.Usagef("--name: %v", err)
	}
	if len(f.sync) == 0 {
		return clierr.Usagef("--sync is empty; choose from %s", strings.Join(resources.Names(), ", "))
	}
	if err := resources.Validate(f.sync); err != nil {
		return clierr.Usagef("--sync: %v", err)
	}
	if _, err := synccontext.ParsePolicy(f.allow); err != nil {
		return clierr.Usagef("--allow: %v", err)
	}
	if err := f.podNetwork().Validate(); err != nil {
		return clierr.Usagef("--virtual-apiserver-address / --virtual-dns-address / --cluster-domain: %v", err)
	}
	if f.workers < 1 {
		return clierr.Usagef("--workers %d: want at least 1", f.workers)
	}
	if f.qps <= 0 || f.burst < 1 {
		return clierr.Usagef("--qps %v / --burst %d: want positive numbers", f.qps, f.burst)
	}
	return nil
}

func runE(ctx context.Context, c *common.Common, f *flags) error {
	if err := f.validate(); err != nil {
		return err
	}
	virtualCfg, err := clientcmd.BuildConfigFromFlags("", f.virtualKubeconfig)
	if err != nil {
		return clierr.Usagef("--virtual-kubeconfig %s: %v", f.virtualKubeconfig, err)
	}
	var hostCfg *rest.Config
	if f.hostKubeconfig != "" {
		if hostCfg, err = clientcmd.BuildConfigFromFlags("", f.hostKubeconfig); err != nil {
			return clierr.Usagef("--host-kubeconfig %s: %v", f.hostKubeconfig, err)
		}
	} else if hostCfg, err = c.RESTConfig(); err != nil {
		return fmt.Errorf("host cluster: %w", err)
	}
	policy, _ := synccontext.ParsePolicy(f.allow) // validated above
	logger := logr.FromSlogHandler(c.Logger.Handler())
	ctrllog.SetLogger(logger)
	rc, err := syncer.NewRegisterContext(ctx, syncer.Options{
		VirtualConfig:   virtualCfg,
		HostConfig:      hostCfg,
		TargetNamespace: f.targetNamespace,
		Name:            f.name,
		Workers:         f.workers,
		QPS:             f.qps,
		Burst:           f.burst,
		Logger:          logger,
		Policy:          policy,
		PodNetwork:      f.podNetwork(),
	})
	if err != nil {
		return err
	}
	plugins, err := resources.New(rc, f.sync)
	if err != nil {
		return err
	}
	c.Logger.Info("syncer running", "virtual", virtualCfg.Host, "host", hostCfg.Host, "targetNamespace", f.targetNamespace, "sync", strings.Join(f.sync, ","), "allow", strings.Join(f.allow, ","), "workers", f.workers)
	return syncer.Start(rc, plugins...)
}

func (f *flags) podNetwork() synccontext.PodNetwork {
	return synccontext.PodNetwork{APIServer: f.apiServerAddress, DNS: f.dnsAddress, ClusterDomain: f.clusterDomain}
}

func permissionNames() []string {
	var out []string
	for _, p := range synccontext.Permissions() {
		out = append(out, string(p))
	}
	return out
}
