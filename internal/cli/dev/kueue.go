package dev

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/kueuemanager"
	"github.com/podkit-dev/podkit/internal/toolbuild"
)

// kueueDir is where a cluster's Kueue manager keeps its configuration,
// certificates, log and pid file.
func kueueDir(m *devcluster.Manager, cluster string) string {
	return filepath.Join(m.Dir(cluster), "kueue")
}

// upKueue builds Kueue's manager and CRDs when the cache lacks them and
// runs the manager beside the cluster (unless one runs already), detached:
// podkit dev down stops it.
func upKueue(ctx context.Context, out io.Writer, m *devcluster.Manager, cluster string) error {
	dir := kueueDir(m, cluster)
	if pid := kueuemanager.Running(dir); pid != 0 {
		fmt.Fprintf(out, "Kueue %s already runs (pid %d).\n", k8sbin.KueueVersion, pid)
		return nil
	}
	if err := toolbuild.BuildKueue(ctx, toolbuild.Options{Out: out}); err != nil {
		return fmt.Errorf("build kueue (fix the cause, then retry): %w", err)
	}
	mgr, err := kueuemanager.Start(ctx, kueuemanager.Options{Kubeconfig: m.KubeconfigPath(cluster), Dir: dir, Detach: true})
	if err != nil {
		return fmt.Errorf("start kueue: %w", err)
	}
	fmt.Fprintf(out, "Kueue %s runs (pid %d, log %s); run podkit controller with --kueue.\n", k8sbin.KueueVersion, mgr.Pid(), mgr.LogPath())
	return nil
}

// downKueue stops the cluster's Kueue manager, if one runs.
func downKueue(m *devcluster.Manager, cluster string) error {
	return kueuemanager.StopDir(kueueDir(m, cluster))
}
