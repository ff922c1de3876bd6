// Package dev implements `podkit dev`: a local Kubernetes cluster (etcd,
// kube-apiserver, scheduler, controller-manager, kwok nodes) run as plain
// processes from the pinned binaries, for trying podkit and for its tests.
package dev

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/k8sbin"
)

// Extra holds constructors of further `podkit dev` subcommands (for example
// `podkit dev vcluster`), attached by the root command.
type Extra func(context.Context, *common.Common) *cobra.Command

// NewCommand returns `podkit dev` with its subcommands.
func NewCommand(ctx context.Context, c *common.Common, extra ...Extra) *cobra.Command {
	var workdir string
	mgr := func() (*devcluster.Manager, error) {
		dir := workdir
		if dir == "" {
			var err error
			if dir, err = devcluster.DefaultWorkdir(); err != nil {
				return nil, err
			}
		}
		return &devcluster.Manager{Workdir: dir, Log: nil}, nil
	}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a local Kubernetes control plane with simulated nodes",
		Long: `Run a local Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok simulated nodes, as processes built from the pinned
Kubernetes modules (podkit dev tools or make tools; up builds missing ones
first). On kwok nodes pods are scheduled, get an IP and run as far as the
API can tell; no container really starts. With
--real-node one more node runs them for real (kubelet, containerd, runc on
this machine, as root), and podkit dev import loads images into it.`,
	}
	cmd.PersistentFlags().StringVar(&workdir, "workdir", "", "Directory holding the clusters (default $PODKIT_CACHE/kwok or ~/.cache/podkit/kwok)")
	cmd.AddCommand(newUp(c, mgr), newDown(c, mgr), newStatus(c, mgr), newKubeconfig(c, mgr), newList(c, mgr), newImport(c, mgr), newTools(c))
	for _, e := range extra {
		cmd.AddCommand(e(ctx, c))
	}
	return cmd
}

type managerFunc func() (*devcluster.Manager, error)

func addName(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "name", devcluster.DefaultName, "Name of the cluster")
}

func newUp(c *common.Common, mgr managerFunc) *cobra.Command {
	var name string
	var nodes int
	var timeout time.Duration
	var realNode, withKueue bool
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local cluster, or report that it already runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 {
				return clierr.Usagef("--nodes %d: use at least 1", nodes)
			}
			m, err := mgr()
			if err != nil {
				return err
			}
			m.Log = nil
			out := c.Streams.ErrOut
			if err := buildMissing(cmd.Context(), out, realNode); err != nil {
				return err
			}
			what := fmt.Sprintf("%d kwok node(s)", nodes)
			if realNode {
				what += fmt.Sprintf(" and real node %s (kubelet, containerd, runc)", devcluster.RealNodeName(name))
			}
			fmt.Fprintf(out, "Starting cluster %q with %s (etcd, kube-apiserver, controller-manager, scheduler, kwok)...\n", name, what)
			start := time.Now()
			stop := ticker(cmd.Context(), out, start)
			res, err := m.Up(cmd.Context(), devcluster.UpOptions{Name: name, Nodes: nodes, Timeout: timeout, RealNode: realNode})
			stop()
			if err != nil {
				return fmt.Errorf("start cluster %q: %w", name, err)
			}
			switch res.Action {
			case "already running":
				fmt.Fprintf(out, "Cluster %q is already running; nothing to do.\n", name)
			default:
				fmt.Fprintf(out, "Cluster %q %s in %s: %s, %d node(s).\n", name, res.Action, time.Since(start).Round(100*time.Millisecond), res.Version, res.Nodes)
			}
			if withKueue {
				if err := upKueue(cmd.Context(), out, m, name); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.Streams.Out, "export KUBECONFIG=%s\n", res.Kubeconfig)
			return nil
		},
	}
	addName(cmd, &name)
	cmd.Flags().IntVar(&nodes, "nodes", 1, "Number of kwok nodes to create")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "Give up when the cluster is not ready after this long")
	cmd.Flags().BoolVar(&withKueue, "with-kueue", false, "Also install Kueue "+k8sbin.KueueVersion+"'s CRDs and run its manager beside the cluster (built from its Go module on first use; admission webhooks not registered: see docs/kueue.md)")
	cmd.Flags().BoolVar(&realNode, "real-node", false, "Also run one node that really runs containers (kubelet + containerd + runc on this machine; root only), labelled "+devcluster.LabelRealNode+"=true")
	return cmd
}

func newImport(c *common.Common, mgr managerFunc) *cobra.Command {
	var name, as string
	cmd := &cobra.Command{
		Use:   "import ARCHIVE --as NAME",
		Short: "Load an OCI image archive into the real node (no registry)",
		Long: `Load an OCI image archive (make image writes _output/image/*.tar) into the
real node's containerd as NAME:<the archive's tag>. Pods then use it with
imagePullPolicy: Never or IfNotPresent.`,
		Example: `  make image
  podkit dev import _output/image/podkit-entrypoint.tar --as podkit.dev/podkit-entrypoint`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if as == "" {
				return clierr.Usagef("--as is required: the image name without tag, e.g. podkit.dev/podkit-entrypoint")
			}
			m, err := mgr()
			if err != nil {
				return err
			}
			if err := m.ImportImage(cmd.Context(), name, args[0], as); err != nil {
				return fmt.Errorf("import %s into cluster %q: %w", args[0], name, err)
			}
			fmt.Fprintf(c.Streams.ErrOut, "Imported %s as %s into the real node of cluster %q.\n", args[0], as, name)
			return nil
		},
	}
	addName(cmd, &name)
	cmd.Flags().StringVar(&as, "as", "", "Image name to import as, without the tag (the archive's tag is used)")
	return cmd
}

// ticker prints the elapsed time every few seconds until stopped, so a
// slow start never looks hung.
func ticker(ctx context.Context, w io.Writer, start time.Time) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fmt.Fprintf(w, "  ... %s\n", time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { cancel(); <-done }
}

func newDown(c *common.Common, mgr managerFunc) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a local cluster and delete its data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := mgr()
			if err != nil {
				return err
			}
			if err := downKueue(m, name); err != nil {
				return err
			}
			if err := m.Down(cmd.Context(), name); err != nil {
				return fmt.Errorf("delete cluster %q: %w", name, err)
			}
			fmt.Fprintf(c.Streams.ErrOut, "Cluster %q deleted.\n", name)
			return nil
		},
	}
	addName(cmd, &name)
	return cmd
}

func newStatus(c *common.Common, mgr managerFunc) *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether a local cluster is running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			m, err := mgr()
			if err != nil {
				return err
			}
			st, err := m.Status(cmd.Context(), name)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(c.Streams.Out, st)
			}
			return writeTable(c.Streams.Out, []devcluster.Status{*st})
		},
	}
	addName(cmd, &name)
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: empty for a table, or json")
	return cmd
}

func newKubeconfig(c *common.Common, mgr managerFunc) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of a local cluster's kubeconfig",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := mgr()
			if err != nil {
				return err
			}
			if err := m.Lookup(name); err != nil {
				return err
			}
			fmt.Fprintln(c.Streams.Out, m.KubeconfigPath(name))
			return nil
		},
	}
	addName(cmd, &name)
	return cmd
}

func newList(c *common.Common, mgr managerFunc) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List local clusters and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			m, err := mgr()
			if err != nil {
				return err
			}
			names, err := m.List()
			if err != nil {
				return err
			}
			statuses := make([]devcluster.Status, 0, len(names))
			for _, n := range names {
				st, err := m.Status(cmd.Context(), n)
				if err != nil {
					if errors.Is(err, devcluster.ErrNotFound) {
						continue
					}
					return err
				}
				statuses = append(statuses, *st)
			}
			if output == "json" {
				return writeJSON(c.Streams.Out, statuses)
			}
			if len(statuses) == 0 {
				fmt.Fprintln(c.Streams.ErrOut, "No clusters. Start one with: podkit dev up")
				return nil
			}
			return writeTable(c.Streams.Out, statuses)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: empty for a table, or json")
	return cmd
}

func checkOutput(output string) error {
	if output != "" && output != "json" {
		return clierr.Usagef("--output %q is not supported: use json or leave it empty", output)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

func writeTable(w io.Writer, statuses []devcluster.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tVERSION\tNODES\tSERVER\tKUBECONFIG")
	for _, s := range statuses {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.State, dash(s.Version), s.Nodes, dash(s.Server), s.Kubeconfig)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
