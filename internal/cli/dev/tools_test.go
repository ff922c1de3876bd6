package dev_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/dev"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/toolbuild"
)

// run runs `podkit dev args...` and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &common.Common{
		Flags:   genericclioptions.NewConfigFlags(true),
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Logger:  slog.New(slog.NewTextHandler(&errOut, nil)),
	}
	cmd := dev.NewCommand(context.Background(), c)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

// isolate points every binary lookup at an empty cache of the test's own.
func isolate(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	t.Setenv("PODKIT_CACHE", cache)
	t.Setenv("PODKIT_K8S_BIN", "")
	t.Setenv("KUBEBUILDER_ASSETS", "")
	return cache
}

func TestToolsPrintsOneLinePerBinaryAndTheDirectory(t *testing.T) {
	isolate(t)
	cache := t.TempDir() // --cache wins over PODKIT_CACHE
	bin := filepath.Join(cache, "k8s-"+k8sbin.Version, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range toolbuild.Names() {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr, err := run(t, "tools", "--cache", cache)
	if err != nil {
		t.Fatalf("podkit dev tools: %v\n%s", err, stderr)
	}
	if stdout != bin+"\n" {
		t.Errorf("stdout = %q, want the directory %q", stdout, bin)
	}
	want := fmt.Sprintf("tools: control plane %s, etcd %s, kwok %s into %s\n", k8sbin.Version, toolbuild.EtcdVersion, toolbuild.KwokVersion, bin)
	for _, n := range toolbuild.Names() {
		want += fmt.Sprintf("  %-26s cached\n", n)
	}
	want += "tools: done in 0s\n"
	if stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
}

// up with a binary missing builds it first; when that fails (here: no go on
// PATH) it says why and names podkit dev tools, and starts nothing.
func TestUpWithoutGoSaysInstallGoAndNamesDevTools(t *testing.T) {
	cache := isolate(t)
	t.Setenv("PATH", t.TempDir())
	stdout, stderr, err := run(t, "up", "--workdir", filepath.Join(cache, "kwok"))
	if err == nil {
		t.Fatalf("podkit dev up without binaries nor go succeeded:\n%s", stderr)
	}
	for _, want := range []string{"podkit dev tools", "install Go", "build the missing control-plane binaries"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if !strings.Contains(stderr, "Building etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kwokctl from Go modules") {
		t.Errorf("stderr does not announce the build:\n%s", stderr)
	}
	if strings.Contains(stderr, "Starting cluster") || stdout != "" {
		t.Errorf("up went on after the build failed: stdout %q, stderr:\n%s", stdout, stderr)
	}
}

// --real-node builds the node's runtime too, into its own directory, and
// prints both directories: what is there is cached, podkit's own pause and
// registryhint are rebuilt from the sources embedded in podkit.
func TestToolsRealNodeBuildsTheNodeRuntimeAndPrintsBothDirectories(t *testing.T) {
	isolate(t)
	cache := t.TempDir()
	bin := filepath.Join(cache, "k8s-"+k8sbin.Version, "bin")
	nodeBin := filepath.Join(cache, k8sbin.NodeDir, "bin")
	for dir, names := range map[string][]string{bin: toolbuild.Names(), nodeBin: {"containerd", "containerd-shim-runc-v2", "ctr", "runc"}} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	stdout, stderr, err := run(t, "tools", "--real-node", "--cache", cache)
	if err != nil {
		t.Fatalf("podkit dev tools --real-node: %v\n%s", err, stderr)
	}
	if want := bin + "\n" + nodeBin + "\n"; stdout != want {
		t.Errorf("stdout = %q, want both directories %q", stdout, want)
	}
	for _, want := range []string{
		"tools: real node runtime containerd " + k8sbin.ContainerdVersion + ", runc " + k8sbin.RuncVersion + " into " + nodeBin + "\n",
		fmt.Sprintf("  %-26s cached\n", "containerd"),
		fmt.Sprintf("  %-26s cached\n", "runc"),
		fmt.Sprintf("  %-26s built in ", "pause"),
		fmt.Sprintf("  %-26s built in ", "registryhint"),
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	out, err := exec.Command(filepath.Join(nodeBin, "pause"), "-v").Output()
	if err != nil || string(out) != "podkit pause\n" {
		t.Errorf("built pause -v = %q, %v", out, err)
	}
}
