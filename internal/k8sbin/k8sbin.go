// Package k8sbin locates podkit's pinned control-plane binaries (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok,
// kwokctl, controller-gen). It only finds them: hack/tools.sh (make tools)
// and internal/toolbuild (podkit dev tools) build them.
package k8sbin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Version is the Kubernetes version podkit pins and builds.
const Version = "v1.37.2"

// Versions of the real dev node's container runtime, which hack/tools.sh
// builds into <cache>/NodeDir.
const (
	ContainerdVersion = "v2.4.2"
	RuncVersion       = "v1.4.0"
)

// NodeDir is the cache subdirectory, keyed by the runtime versions, that
// holds containerd, its shim, ctr, runc and the sandbox (pause) binary.
const NodeDir = "node-containerd-" + ContainerdVersion + "-runc-" + RuncVersion

// HelmVersion is the helm that hack/tools.sh builds into <cache>/HelmDir,
// for the chart's tests and make release.
const HelmVersion = "v3.22.0"

// HelmDir is the cache subdirectory, keyed by HelmVersion, that holds helm.
const HelmDir = "helm-" + HelmVersion

// Helm is the name of the helm binary (not in All: podkit dev tools leaves
// it out, since only podkit's own tests and releases use it).
const Helm = "helm"

// KueueVersion is the Kueue (sigs.k8s.io/kueue) whose manager hack/tools.sh
// and toolbuild.BuildKueue build into <cache>/KueueDir/bin, with its CRDs
// in <cache>/KueueDir/crd, for podkit's Kueue integration (pkg/kueue).
const KueueVersion = "v0.17.0"

// KueueDir is the cache subdirectory, keyed by KueueVersion, that holds
// Kueue's manager (bin/kueue) and CRDs (crd/).
const KueueDir = "kueue-" + KueueVersion

// Kueue is the name of Kueue's manager binary (not in All: only the Kueue
// integration uses it).
const Kueue = "kueue"

// Names of the binaries that make tools builds.
const (
	Etcd                  = "etcd"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
	Kubectl               = "kubectl"
	Kwok                  = "kwok"
	Kwokctl               = "kwokctl"
	ControllerGen         = "controller-gen"
)

// All lists every binary make tools builds.
var All = []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler, Kubectl, Kwok, Kwokctl, ControllerGen}

// ErrNotBuilt reports a binary that is in none of the searched directories.
var ErrNotBuilt = errors.New("control-plane binary not found; run: podkit dev tools (or make tools in a checkout)")

// CacheDir returns podkit's cache directory: $PODKIT_CACHE, or
// ~/.cache/podkit.
func CacheDir() (string, error) {
	if d := os.Getenv("PODKIT_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory for the podkit cache (set PODKIT_CACHE): %w", err)
	}
	return filepath.Join(home, ".cache", "podkit"), nil
}

// Dirs returns the directories searched for binaries, in order:
// $PODKIT_K8S_BIN, $KUBEBUILDER_ASSETS, <cache>/k8s-<Version>/bin,
// <cache>/<NodeDir>/bin, then <cache>/<HelmDir>/bin.
func Dirs() []string {
	var dirs []string
	for _, env := range []string{"PODKIT_K8S_BIN", "KUBEBUILDER_ASSETS"} {
		if d := os.Getenv(env); d != "" {
			dirs = append(dirs, d)
		}
	}
	if cache, err := CacheDir(); err == nil {
		dirs = append(dirs, filepath.Join(cache, "k8s-"+Version, "bin"), filepath.Join(cache, NodeDir, "bin"), filepath.Join(cache, HelmDir, "bin"))
	}
	return dirs
}

// Path returns the absolute path of the named binary. When it is missing the
// error wraps ErrNotBuilt and lists where it looked.
func Path(name string) (string, error) {
	dirs := Dirs()
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(p)
			if err != nil {
				return "", fmt.Errorf("resolve %s: %w", p, err)
			}
			return abs, nil
		}
	}
	return "", fmt.Errorf("%s (looked in %v): %w", name, dirs, ErrNotBuilt)
}

// Dir returns the directory that holds every named binary, for tools such
// as envtest that take one directory. It fails like Path for the first
// binary missing from all candidate directories.
func Dir(names ...string) (string, error) {
	for _, d := range Dirs() {
		complete := true
		for _, n := range names {
			if st, err := os.Stat(filepath.Join(d, n)); err != nil || st.IsDir() {
				complete = false
				break
			}
		}
		if complete {
			return filepath.Abs(d)
		}
	}
	for _, n := range names {
		if _, err := Path(n); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no single directory holds all of %v (looked in %v): %w", names, Dirs(), ErrNotBuilt)
}
