package vcluster

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/vcluster"
	"github.com/podkit-dev/podkit/internal/vdns"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

type flags struct {
	name          string
	hostNamespace string
	stateDir      string
	sync          []string
	allow         []string
	workers       int
	dnsAddress    string
	dnsUpstream   string
}

// NewCommand returns `podkit dev vcluster` with `up` and `down`.
func NewCommand(ctx context.Context, c *common.Common) *cobra.Command {
	return newCommand(ctx, c, &flags{})
}

// newCommand builds the command around f, which its flags fill.
func newCommand(ctx context.Context, c *common.Common, f *flags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vcluster",
		Short: "Run a virtual cluster synced into a namespace of the current cluster",
		Long: `Run a virtual cluster: its own etcd, kube-apiserver and kube-controller-manager
(pinned binaries, make tools), with the podkit syncer placing its pods, Services,
ConfigMaps, Secrets and Events in one namespace of the host cluster selected by
--kubeconfig/--context. The host schedules the pods; their status flows back.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.name, "name", syncer.DefaultName, "name of the virtual cluster (suffix of host object names)")
	pf.StringVar(&f.hostNamespace, "host-namespace", "", "host namespace that receives synced objects (default: the name)")
	pf.StringVar(&f.stateDir, "state-dir", "", "directory for etcd data, certificates and the kubeconfig (default ~/.cache/podkit/vclusters/<name>)")

	up := &cobra.Command{
		Use:   "up",
		Short: "Start the virtual cluster and the syncer; runs until interrupted",
		Example: `  podkit dev up
  podkit dev vcluster up --name vc1 --host-namespace vc1 &
  export KUBECONFIG=~/.cache/podkit/vclusters/vc1/kubeconfig
  kubectl create deployment web --image=nginx --replicas=2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUp(cmd.Context(), c, f) },
	}
	up.Flags().StringSliceVar(&f.sync, "sync", resources.Names(), "syncers to enable: "+strings.Join(resources.Names(), ", "))
	up.Flags().StringSliceVar(&f.allow, "allow", nil, "host-level settings virtual objects may carry to the host, as for podkit sync run (default: none): "+strings.Join(permissionNames(), ", "))
	up.Flags().IntVar(&f.workers, "workers", syncer.DefaultWorkers, "concurrent reconciles per syncer")
	up.Flags().StringVar(&f.dnsUpstream, "dns-upstream", "", "IP:port of a resolver for names outside cluster.local, e.g. the host's cluster DNS (default: such names are refused)")
	up.Flags().StringVar(&f.dnsAddress, "dns-address", vdns.DefaultAddr, "host:port of the virtual cluster's DNS server (UDP and TCP); its IP is the synced pods' nameserver (they query port 53)")
	down := &cobra.Command{
		Use:   "down",
		Short: "Delete the virtual cluster's host namespace and its state",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runDown(cmd.Context(), c, f) },
	}
	cmd.AddCommand(up, down)
	cmd.SetContext(ctx)
	return cmd
}

func (f *flags) options(c *common.Common) (vcluster.Options, error) {
	if err := translator.ValidateVirtualClusterName(f.name); err != nil {
		return vcluster.Options{}, clierr.Usagef("--name: %v", err)
	}
	if f.hostNamespace == "" {
		f.hostNamespace = f.name
	}
	if err := resources.Validate(f.sync); err != nil {
		return vcluster.Options{}, clierr.Usagef("--sync: %v", err)
	}
	policy, err := synccontext.ParsePolicy(f.allow)
	if err != nil {
		return vcluster.Options{}, clierr.Usagef("--allow: %v", err)
	}
	if f.workers < 0 {
		return vcluster.Options{}, clierr.Usagef("--workers %d: want at least 1", f.workers)
	}
	if host, _, err := net.SplitHostPort(f.dnsAddress); f.dnsAddress != "" && (err != nil || net.ParseIP(host) == nil) {
		return vcluster.Options{}, clierr.Usagef("--dns-address %q: want IP:port (port 0 picks a free one), e.g. %s", f.dnsAddress, vdns.DefaultAddr)
	}
	if host, _, err := net.SplitHostPort(f.dnsUpstream); f.dnsUpstream != "" && (err != nil || net.ParseIP(host) == nil) {
		return vcluster.Options{}, clierr.Usagef("--dns-upstream %q: want IP:port, e.g. 10.96.0.10:53", f.dnsUpstream)
	}
	cfg, err := c.RESTConfig()
	if err != nil {
		return vcluster.Options{}, fmt.Errorf("host cluster: %w", err)
	}
	return vcluster.Options{
		Name: f.name, HostNamespace: f.hostNamespace, HostConfig: cfg, StateDir: f.stateDir,
		Sync: f.sync, Workers: f.workers, Logger: c.Logger, Policy: policy, DNSAddress: f.dnsAddress,
		DNSUpstream: f.dnsUpstream,
	}, nil
}

func runUp(ctx context.Context, c *common.Common, f *flags) error {
	opts, err := f.options(c)
	if err != nil {
		return err
	}
	opts.Ready = func(a vcluster.Access) {
		fmt.Fprintf(c.Streams.Out, "virtual cluster %s is up; its objects go to host namespace %s\nDNS for %s at %s (UDP and TCP)\nexport KUBECONFIG=%s\n",
			opts.Name, opts.HostNamespace, synccontext.DefaultClusterDomain, a.DNS, a.Kubeconfig)
	}
	return vcluster.Up(ctx, opts)
}

func runDown(ctx context.Context, c *common.Common, f *flags) error {
	f.sync = nil
	opts, err := f.options(c)
	if err != nil {
		return err
	}
	if err := vcluster.Down(ctx, opts); err != nil {
		return err
	}
	fmt.Fprintf(c.Streams.Out, "virtual cluster %s removed (host namespace %s deleted)\n", opts.Name, opts.HostNamespace)
	return nil
}

func permissionNames() []string {
	out := make([]string, 0, len(synccontext.Permissions()))
	for _, p := range synccontext.Permissions() {
		out = append(out, string(p))
	}
	return out
}
