package root

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/klog/v2"

	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/cli/version"
	"github.com/podkit-dev/podkit/internal/devcluster"
)

type result struct {
	stdout, stderr string
	code           int
}

// podkit runs the CLI in-process, as a user would from a shell.
func podkit(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	cmd := NewCommand(context.Background(), streams)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("error: " + err.Error() + "\n")
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: clierr.Code(err)}
}

// The whole dev cluster life cycle as a user runs it: up, a second up that
// does nothing, status, kubeconfig, version against it, down, and down
// again of a cluster that no longer exists.
func TestDevClusterLifecycle(t *testing.T) {
	workdir := t.TempDir()
	name := "lifecycle"
	dev := func(args ...string) result {
		return podkit(t, append([]string{"dev", "--workdir", workdir}, args...)...)
	}
	t.Cleanup(func() { dev("down", "--name", name) })

	up := dev("up", "--name", name, "--nodes", "2")
	if up.code != 0 {
		t.Fatalf("dev up exited %d: %s", up.code, up.stderr)
	}
	kubeconfig := filepath.Join(workdir, "clusters", name, "kubeconfig.yaml")
	if want := "export KUBECONFIG=" + kubeconfig + "\n"; up.stdout != want {
		t.Errorf("dev up stdout = %q, want %q", up.stdout, want)
	}

	again := dev("up", "--name", name)
	if again.code != 0 || !strings.Contains(again.stderr, "already running; nothing to do") {
		t.Errorf("second dev up: code %d, stderr %q; want 0 and 'already running; nothing to do'", again.code, again.stderr)
	}

	st := dev("status", "--name", name, "-o", "json")
	var status devcluster.Status
	if err := json.Unmarshal([]byte(st.stdout), &status); err != nil {
		t.Fatalf("dev status -o json: %v (stdout %q, stderr %q)", err, st.stdout, st.stderr)
	}
	if status.State != devcluster.StateRunning || status.Nodes != 2 || status.Version != "v1.37.2" {
		t.Errorf("status = %+v, want Running, 2 nodes, v1.37.2", status)
	}
	if kc := dev("kubeconfig", "--name", name); strings.TrimSpace(kc.stdout) != kubeconfig {
		t.Errorf("dev kubeconfig = %q, want %q", kc.stdout, kubeconfig)
	}
	if list := dev("list"); !strings.Contains(list.stdout, name) || !strings.Contains(list.stdout, "Running") {
		t.Errorf("dev list does not show the running cluster:\n%s", list.stdout)
	}

	v := podkit(t, "version", "--kubeconfig", kubeconfig, "-o", "json")
	var info version.Info
	if err := json.Unmarshal([]byte(v.stdout), &info); err != nil {
		t.Fatalf("version -o json: %v (stderr %q)", err, v.stderr)
	}
	if info.ServerVersion != "v1.37.2" || info.ClientVersion == "" {
		t.Errorf("version = %+v, want server v1.37.2 and a client version", info)
	}

	pids := clusterPIDs(t, workdir)
	if len(pids) < 5 {
		t.Errorf("found %d control-plane processes under %s, want at least 5", len(pids), workdir)
	}
	if down := dev("down", "--name", name); down.code != 0 {
		t.Fatalf("dev down exited %d: %s", down.code, down.stderr)
	}
	// kwokctl signals the components and returns; give them a moment to exit.
	deadline := time.Now().Add(15 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && !zombie(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d survived dev down", pid)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	missing := dev("down", "--name", name)
	if missing.code == 0 || !strings.Contains(missing.stderr, `cluster "lifecycle": cluster not found`) {
		t.Errorf("down of a missing cluster: code %d, stderr %q; want non-zero and 'cluster not found'", missing.code, missing.stderr)
	}
	if st := dev("status", "--name", name); st.code == 0 {
		t.Errorf("status of a deleted cluster exited 0")
	}
}

// A cluster directory left by a run killed during creation is cleaned and
// the cluster created again, never reported as up while broken.
func TestDevUpRecoversHalfCreatedCluster(t *testing.T) {
	workdir := t.TempDir()
	dir := filepath.Join(workdir, "clusters", "stale")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig.yaml"), []byte("garbage: ["), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { podkit(t, "dev", "--workdir", workdir, "down", "--name", "stale") })
	up := podkit(t, "dev", "--workdir", workdir, "up", "--name", "stale")
	if up.code != 0 {
		t.Fatalf("dev up over a stale directory exited %d: %s", up.code, up.stderr)
	}
	if !strings.Contains(up.stderr, `Cluster "stale" created`) {
		t.Errorf("dev up stderr = %q, want the cluster re-created", up.stderr)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"version", "-o", "xml"},
		{"dev", "up", "--nodes", "0"},
		{"version", "--no-such-flag"},
	} {
		r := podkit(t, args...)
		if r.code != clierr.CodeUsage {
			t.Errorf("podkit %v exited %d, want %d (stderr %q)", args, r.code, clierr.CodeUsage, r.stderr)
		}
		if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines != 0 {
			t.Errorf("podkit %v printed %d lines of error, want one: %q", args, lines+1, r.stderr)
		}
	}
}

// podkit --version and version -o yaml, as kubectl users expect them.
func TestVersionFlagAndYAML(t *testing.T) {
	r := podkit(t, "--version")
	if r.code != 0 || r.stdout != "podkit version "+version.Current()+"\n" {
		t.Errorf("podkit --version: code %d, stdout %q", r.code, r.stdout)
	}
	r = podkit(t, "version", "--client", "-o", "yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "clientVersion: "+version.Current()) || !strings.Contains(r.stdout, "goVersion: go") {
		t.Errorf("podkit version --client -o yaml: code %d, stdout %q", r.code, r.stdout)
	}
}

func TestInvalidClusterNameIsRejected(t *testing.T) {
	r := podkit(t, "dev", "--workdir", t.TempDir(), "up", "--name", "Bad_Name")
	if r.code == 0 || !strings.Contains(r.stderr, "invalid cluster name") {
		t.Errorf("code %d, stderr %q; want an invalid cluster name error", r.code, r.stderr)
	}
}

func clusterPIDs(t *testing.T, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
			continue
		}
		if pid, err := strconv.Atoi(e.Name()); err == nil && !zombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombie reports whether pid has exited and only waits to be reaped.
func zombie(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}

// The log flags reach podkit's own logger and klog (client-go's), in the
// format and at the level asked for; bad values are usage errors.
func TestLogFlagsSetLevelAndFormatForPodkitAndKlog(t *testing.T) {
	saved := subcommands
	t.Cleanup(func() { subcommands = saved })
	subcommands = append(slices.Clone(saved), func(_ context.Context, c *common.Common) *cobra.Command {
		return &cobra.Command{Use: "logtest", RunE: func(*cobra.Command, []string) error {
			c.Logger.Debug("podkit debug")
			c.Logger.Info("podkit info")
			klog.Info("klog info")
			klog.V(2).Info("klog v2")
			klog.V(5).Info("klog v5")
			klog.Flush()
			return nil
		}}
	})

	r := podkit(t, "logtest", "--log-format", "json", "-v", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stderr line %q is not JSON: %v", line, err)
		}
		msgs = append(msgs, fmt.Sprint(rec["msg"]))
	}
	if want := []string{"podkit debug", "podkit info", "klog info", "klog v2"}; !slices.Equal(msgs, want) {
		t.Errorf("-v 2 --log-format json logged %q, want %q", msgs, want)
	}

	r = podkit(t, "logtest")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{`msg="podkit info"`, `msg="klog info"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("default logs lack %s:\n%s", want, r.stderr)
		}
	}
	for _, unwanted := range []string{"podkit debug", "klog v2"} {
		if strings.Contains(r.stderr, unwanted) {
			t.Errorf("default logs (info, text) contain %q:\n%s", unwanted, r.stderr)
		}
	}

	r = podkit(t, "logtest", "--log-level", "error")
	if strings.Contains(r.stderr, "info") {
		t.Errorf("--log-level error logged info messages:\n%s", r.stderr)
	}

	for _, bad := range [][]string{{"--log-level", "loud"}, {"--log-format", "xml"}, {"--v", "-1"}} {
		r := podkit(t, append([]string{"logtest"}, bad...)...)
		if r.code != clierr.CodeUsage || !strings.Contains(r.stderr, bad[0]) {
			t.Errorf("%v: exit %d, stderr %q; want usage error naming %s", bad, r.code, r.stderr, bad[0])
		}
	}
}
