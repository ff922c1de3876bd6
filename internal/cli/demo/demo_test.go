package demo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

// syncBuffer is a bytes.Buffer safe for the demo's goroutines, calling
// onWrite after each write.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	onWrite func(string)
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	s := b.buf.String()
	b.mu.Unlock()
	if b.onWrite != nil {
		b.onWrite(s)
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type invocation struct {
	kubeconfig string
	namespace  string
	as         string
	args       []string
	out        io.Writer
}

// runDemo runs `podkit demo` in-process as the root command would.
func runDemo(ctx context.Context, t *testing.T, inv invocation) (string, error) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &inv.kubeconfig
	flags.Namespace = &inv.namespace
	flags.Impersonate = &inv.as
	out := &syncBuffer{}
	var w io.Writer = out
	if inv.out != nil {
		w = io.MultiWriter(out, inv.out)
	}
	var errOut bytes.Buffer
	c := &common.Common{
		Flags:   flags,
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: w, ErrOut: &errOut},
		Logger:  slog.New(slog.NewTextHandler(&errOut, nil)),
	}
	cmd := NewCommand(ctx, c)
	args := append([]string{"--config-dir", filepath.Join(root, "config"), "--output-dir", t.TempDir(), "--timeout", "90s"}, inv.args...)
	cmd.SetArgs(args)
	cmd.SetOut(w)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.ExecuteContext(ctx)
	t.Logf("demo output:\n%s\nstderr:\n%s", out.String(), errOut.String())
	return out.String(), err
}

func TestDemoReachesSummaryWithEveryStepOK(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := runDemo(ctx, t, invocation{kubeconfig: env.Kubeconfig, namespace: ns})
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}
	for _, want := range []string{
		"Summary",
		"simulating task completion",
		"system:serviceaccount:podkit-system:podkit-framework-controller",
		"FB_MASTER_IPS=",
		"MASTER_ADDR=",
		"kubectl delete namespace " + ns,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, step := range []string{"cluster", "namespace", "install CRD", "install RBAC", "controller", "apply samples", "tasks running", "barrier", "complete samples", "fork"} {
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(step) + `\s+ok\s`)
		if !row.MatchString(out) {
			t.Errorf("summary has no ok row for step %q", step)
		}
	}
	if !strings.Contains(out, "pytorch-mnist Succeeded") || !strings.Contains(out, "tf-parameter-server Succeeded") {
		t.Errorf("summary does not show both samples succeeded")
	}
	if !regexp.MustCompile(`child podkit-demo-parent-worker-\S+ Succeeded with exit code 0`).MatchString(out) {
		t.Errorf("fork result missing or not a success")
	}

	// A second run in the same namespace starts afresh.
	out, err = runDemo(ctx, t, invocation{kubeconfig: env.Kubeconfig, namespace: ns})
	if err != nil {
		t.Fatalf("second demo run failed: %v", err)
	}
	if !strings.Contains(out, "removed 3 objects of an earlier run") {
		t.Errorf("second run did not report removing the first run's samples and parent pod")
	}
}

func TestDemoInterruptedStopsCleanlyAndSaysClusterIsUp(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	demoCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	trigger := &syncBuffer{onWrite: func(s string) {
		if strings.Contains(s, "==> tasks running") {
			interrupt() // Ctrl-C while the samples come up
		}
	}}
	out, err := runDemo(demoCtx, t, invocation{kubeconfig: env.Kubeconfig, namespace: ns, out: trigger})
	if code := clierr.Code(err); code != CodeInterrupted {
		t.Fatalf("exit code %d (err %v), want %d", code, err, CodeInterrupted)
	}
	for _, want := range []string{"interrupted; the cluster is still up", "Summary", "kubectl delete namespace " + ns} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The cluster answers: nothing was torn down.
	if _, err := env.Clientset.Discovery().ServerVersion(); err != nil {
		t.Errorf("cluster unreachable after an interrupted demo: %v", err)
	}
}

func TestDemoWithoutRightsFailsWithOneLineError(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runDemo(ctx, t, invocation{kubeconfig: env.Kubeconfig, namespace: ns, as: "jane"})
	if err == nil {
		t.Fatal("demo as a user without rights succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
	for _, want := range []string{`user "jane" may not create frameworks.podkit.dev in namespace ` + ns, "cluster-admin kubeconfig"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}

func TestDemoOnClusterWithoutCRDAndNoRightsSaysWhoMustInstallIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bare, err := testenv.Start(ctx, testenv.Options{Mode: testenv.ModeAPIServer, CRDDirectoryPaths: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bare.Stop(); err != nil {
			t.Errorf("stop API server: %v", err)
		}
	})
	_, err = runDemo(ctx, t, invocation{kubeconfig: bare.Kubeconfig, namespace: "default", as: "jane"})
	if err == nil {
		t.Fatal("demo succeeded on a cluster without the CRD")
	}
	want := `the cluster has no Framework CRD (frameworks.podkit.dev) and user "jane" may not install it: ask a cluster admin to run: kubectl apply --server-side -f config/crd/bases`
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
}

func TestDemoUnreachableClusterNamesTheServer(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	data := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(kubeconfig, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := runDemo(ctx, t, invocation{kubeconfig: kubeconfig})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the cluster at https://127.0.0.1:1") {
		t.Errorf("error = %v, want it to name the unreachable server", err)
	}
}

func TestFlagsValidateRejectsBadValuesAsUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		f    flags
		want string
	}{
		{"no nodes", flags{nodes: 0, timeout: time.Minute}, "--nodes 0"},
		{"zero timeout", flags{nodes: 1}, "--timeout 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.validate()
			if clierr.Code(err) != clierr.CodeUsage || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validate() = %v (code %d), want a usage error naming %q", err, clierr.Code(err), tt.want)
			}
		})
	}
}

func TestFindConfigDirRejectsDirectoryWithoutSamples(t *testing.T) {
	_, err := findConfigDir(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "--config-dir") {
		t.Errorf("findConfigDir(empty dir) = %v, want an error naming --config-dir", err)
	}
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	got, err := findConfigDir(filepath.Join(root, "config"))
	if err != nil || got != filepath.Join(root, "config") {
		t.Errorf("findConfigDir(repo config) = %q, %v", got, err)
	}
}

func TestReadManifestsSplitsDocumentsAndSkipsEmptyOnes(t *testing.T) {
	f := filepath.Join(t.TempDir(), "m.yaml")
	data := "# comment only\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := readManifests(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("names = %v, want [a b]", names)
	}
	if _, err := readManifests(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
}

func TestPickBarrierTaskPrefersMasterRole(t *testing.T) {
	ps := &v1.Framework{}
	ps.Name = "ps"
	ps.Spec.TaskRoles = []v1.TaskRoleSpec{{Name: "ps"}, {Name: "worker"}}
	torch := &v1.Framework{}
	torch.Name = "torch"
	torch.Spec.TaskRoles = []v1.TaskRoleSpec{{Name: "worker"}, {Name: "master"}}
	tests := []struct {
		name string
		fws  []*v1.Framework
		want barrierTask
	}{
		{"master role anywhere", []*v1.Framework{ps, torch}, barrierTask{framework: "torch", role: "master", torch: true}},
		{"no master role", []*v1.Framework{ps}, barrierTask{framework: "ps", role: "ps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickBarrierTask(tt.fws); got != tt.want {
				t.Errorf("pickBarrierTask = %+v, want %+v", got, tt.want)
			}
		})
	}
}
