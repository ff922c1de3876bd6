package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/toolbuild"
)

func newTools(c *common.Common) *cobra.Command {
	var cache string
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

It builds what make tools builds for the control plane, not the real node's
runtime (containerd, runc, pause) that podkit dev up --real-node needs: run
make tools in a checkout for that.`, toolbuild.EtcdVersion, k8sbin.Version, toolbuild.KwokVersion, toolbuild.ControllerGenVersion, k8sbin.Version),
		Example: `  go install github.com/podkit-dev/podkit/cmd/podkit@latest
  podkit dev tools && podkit dev up`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := toolbuild.DefaultDir()
			if cache != "" {
				dir, err = toolbuild.BinDir(cache), nil
			}
			if err != nil {
				return err
			}
			if err := toolbuild.Build(cmd.Context(), toolbuild.Options{Dir: dir, Out: c.Streams.ErrOut}); err != nil {
				return fmt.Errorf("build the control plane: %w", err)
			}
			fmt.Fprintln(c.Streams.Out, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&cache, "cache", "", "podkit cache directory; the binaries go to DIR/k8s-"+k8sbin.Version+"/bin (default $PODKIT_CACHE or ~/.cache/podkit)")
	return cmd
}

// buildMissing builds, into the cache, the binaries a cluster starts from
// that k8sbin finds nowhere, with podkit dev tools' progress.
func buildMissing(ctx context.Context, out io.Writer) error {
	var missing []string
	for _, b := range devcluster.Binaries {
		if _, err := k8sbin.Path(b); errors.Is(err, k8sbin.ErrNotBuilt) {
			missing = append(missing, b)
		} else if err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(out, "Building %s from Go modules (first run only; a cold build takes 15-20 minutes on 2 cores)...\n", strings.Join(missing, ", "))
	if err := toolbuild.Build(ctx, toolbuild.Options{Names: missing, Out: out}); err != nil {
		return fmt.Errorf("build the missing control-plane binaries (fix the cause, then retry, or run: podkit dev tools): %w", err)
	}
	return nil
}
