package k8sbin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathPrefersPodkitK8sBinOverCache(t *testing.T) {
	explicit := t.TempDir()
	cache := t.TempDir()
	cacheBin := filepath.Join(cache, "k8s-"+Version, "bin")
	for _, d := range []string{explicit, cacheBin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, Etcd), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PODKIT_CACHE", cache)
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("PODKIT_K8S_BIN", explicit)

	got, err := Path(Etcd)
	if err != nil {
		t.Fatalf("Path(etcd): %v", err)
	}
	if want := filepath.Join(explicit, Etcd); got != want {
		t.Errorf("Path(etcd) = %s, want %s", got, want)
	}

	t.Setenv("PODKIT_K8S_BIN", "")
	got, err = Path(Etcd)
	if err != nil {
		t.Fatalf("Path(etcd) from cache: %v", err)
	}
	if want := filepath.Join(cacheBin, Etcd); got != want {
		t.Errorf("Path(etcd) = %s, want %s", got, want)
	}
}

func TestMissingBinarySaysHowToBuildIt(t *testing.T) {
	t.Setenv("PODKIT_CACHE", t.TempDir())
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("PODKIT_K8S_BIN", "")
	for _, call := range []func() error{
		func() error { _, err := Path(KubeAPIServer); return err },
		func() error { _, err := Dir(Etcd, KubeAPIServer); return err },
	} {
		err := call()
		if !errors.Is(err, ErrNotBuilt) {
			t.Fatalf("error %v does not wrap ErrNotBuilt", err)
		}
		for _, want := range []string{"podkit dev tools", "make tools"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not tell the user to run %s", err, want)
			}
		}
	}
}

func TestNonExecutableFileIsNotABinary(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, Kubectl), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PODKIT_CACHE", t.TempDir())
	t.Setenv("KUBEBUILDER_ASSETS", "")
	t.Setenv("PODKIT_K8S_BIN", dir)
	if _, err := Path(Kubectl); !errors.Is(err, ErrNotBuilt) {
		t.Errorf("Path on a non-executable file: err = %v, want ErrNotBuilt", err)
	}
}

// The versions hack/tools.sh builds are the ones this package looks for:
// a bump in one place only would make every lookup miss the cache.
func TestToolsScriptBuildsThePinnedVersions(t *testing.T) {
	script, err := os.ReadFile("../../hack/tools.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"K8S_VERSION=" + Version + "\n", "CONTAINERD_VERSION=" + ContainerdVersion + "\n", "RUNC_VERSION=" + RuncVersion + "\n", "HELM_VERSION=" + HelmVersion + "\n", "helmbin=$cache/helm-$HELM_VERSION/bin\n"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("hack/tools.sh lacks %q", strings.TrimSpace(want))
		}
	}
}
