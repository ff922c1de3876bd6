package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/toolbuild"
)

func newTools(c *common.Common) *cobra.Command {
	var cache string
	var realNode, kueue bool
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "Build the pinned control plane from Go modules into the podkit cache",
		Long: fmt.Sprintf(`Build podkit's pinned control plane with the go command alone: etcd %s,
kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet and
kube-proxy %s, kwok and kwokctl %s, and controller-gen %s, into
<cache>/k8s-%s/bin, where podkit dev up looks. Binaries already there are
skipped. The module pins are embedded in podkit, so a go-installed podkit
needs no checkout; it needs Go 1.26 or newer. A cold build takes 15-20
minutes on 2 cores; after that this is a no-op. It prints the directory.

With --real-node it also builds the runtime of podkit dev up --real-node
into <cache>/%s/bin: containerd, its runc shim and ctr %s, runc %s
(cgo with libseccomp: apt-get install gcc pkg-config libseccomp-dev), and
podkit's pause and registryhint from sources embedded in podkit. It then
prints both directories.`, toolbuild.EtcdVersion, k8sbin.Version, toolbuild.KwokVersion, toolbuild.ControllerGenVersion, k8sbin.Version, k8sbin.NodeDir, k8sbin.ContainerdVersion, k8sbin.RuncVersion),
		Example: `  go install github.com/podkit-dev/podkit/cmd/podkit@latest
  podkit dev tools && podkit dev up

  # a node that really runs containers too (root, cgroup v1)
  podkit dev tools --real-node && podkit dev up --real-node`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cache == "" {
				var err error
				if cache, err = k8sbin.CacheDir(); err != nil {
					return err
				}
			}
			dir := toolbuild.BinDir(cache)
			if err := toolbuild.Build(cmd.Context(), toolbuild.Options{Dir: dir, Out: c.Streams.ErrOut}); err != nil {
				return fmt.Errorf("build the control plane: %w", err)
			}
			fmt.Fprintln(c.Streams.Out, dir)
			if realNode {
				nodeDir := toolbuild.NodeBinDir(cache)
				if err := toolbuild.BuildNode(cmd.Context(), toolbuild.Options{Dir: nodeDir, Out: c.Streams.ErrOut}); err != nil {
					return fmt.Errorf("build the real node's runtime: %w", err)
				}
				fmt.Fprintln(c.Streams.Out, nodeDir)
			}
			if kueue {
				kueueDir := toolbuild.KueueDir(cache)
				if err := toolbuild.BuildKueue(cmd.Context(), toolbuild.Options{Dir: kueueDir, Out: c.Streams.ErrOut}); err != nil {
					return fmt.Errorf("build kueue: %w", err)
				}
				fmt.Fprintln(c.Streams.Out, kueueDir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cache, "cache", "", "podkit cache directory; the binaries go to DIR/k8s-"+k8sbin.Version+"/bin (default $PODKIT_CACHE or ~/.cache/podkit)")
	cmd.Flags().BoolVar(&kueue, "kueue", false, "also build Kueue "+k8sbin.KueueVersion+"'s manager from its Go module into DIR/"+k8sbin.KueueDir+"/bin, with its CRDs in DIR/"+k8sbin.KueueDir+"/crd (podkit dev up --with-kueue)")
	cmd.Flags().BoolVar(&realNode, "real-node", false, "also build the real node's runtime (containerd, runc, pause, registryhint) into DIR/"+k8sbin.NodeDir+"/bin")
	return cmd
}

// buildMissing builds, into the cache, the binaries a cluster starts from
// that k8sbin finds nowhere, with podkit dev tools' progress; with
// realNode, those of the real node too.
func buildMissing(ctx context.Context, out io.Writer, realNode bool) error {
	want := devcluster.Binaries
	if realNode {
		want = append(slices.Clone(want), devcluster.RealNodeBinaries...)
	}
	var missing, missingNode []string
	for _, b := range want {
		if _, err := k8sbin.Path(b); errors.Is(err, k8sbin.ErrNotBuilt) {
			if slices.Contains(toolbuild.NodeNames(), b) {
				missingNode = append(missingNode, b)
			} else if !slices.Contains(missing, b) {
				missing = append(missing, b)
			}
		} else if err != nil {
			return err
		}
	}
	if len(missing)+len(missingNode) == 0 {
		return nil
	}
	fmt.Fprintf(out, "Building %s from Go modules (first run only; a cold build takes 15-20 minutes on 2 cores)...\n", strings.Join(append(slices.Clone(missing), missingNode...), ", "))
	if len(missing) > 0 {
		if err := toolbuild.Build(ctx, toolbuild.Options{Names: missing, Out: out}); err != nil {
			return fmt.Errorf("build the missing control-plane binaries (fix the cause, then retry, or run: podkit dev tools): %w", err)
		}
	}
	if len(missingNode) > 0 {
		if err := toolbuild.BuildNode(ctx, toolbuild.Options{Names: missingNode, Out: out}); err != nil {
			return fmt.Errorf("build the missing real-node binaries (fix the cause, then retry, or run: podkit dev tools --real-node): %w", err)
		}
	}
	return nil
}
