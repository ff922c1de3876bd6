package barrier

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/cli/clierr"
	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1alpha1.AddToScheme)
	}))
}

// run executes `podkit barrier args...` in-process with a clean barrier
// environment plus envs, and returns the exit code, stdout and stderr.
func run(t *testing.T, ctx context.Context, envs map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for _, k := range []string{"FC_FRAMEWORK_NAMESPACE", "FC_FRAMEWORK_NAME", "FC_TASKROLE_NAME", "FC_TASK_INDEX",
		"BARRIER_CHECK_INTERVAL_SEC", "BARRIER_CHECK_TIMEOUT_SEC", "KUBE_APISERVER_ADDRESS", "KUBECONFIG"} {
		t.Setenv(k, envs[k])
	}
	var out, errOut bytes.Buffer
	c := &common.Common{
		Flags:   genericclioptions.NewConfigFlags(true),
		Streams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		Logger:  slog.New(slog.NewTextHandler(&errOut, nil)),
	}
	root := &cobra.Command{Use: "podkit", SilenceUsage: true, SilenceErrors: true}
	c.Flags.AddFlags(root.PersistentFlags())
	root.AddCommand(NewCommand(ctx, c))
	root.SetArgs(append([]string{"barrier"}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(ctx)
	if err != nil {
		errOut.WriteString("error: " + err.Error() + "\n")
	}
	return clierr.Code(err), out.String(), errOut.String()
}

func createFramework(t *testing.T, ns, name string, ips ...string) {
	t.Helper()
	ctx := context.Background()
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	f.Spec.TaskRoles = []v1alpha1.TaskRoleSpec{{Name: "worker", TaskNumber: int32(len(ips)),
		Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		}}}}}
	if err := env.Client.Create(ctx, f); err != nil {
		t.Fatalf("create framework: %v", err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	f.Status = &v1alpha1.FrameworkStatus{StartTime: now, TransitionTime: now, State: v1alpha1.FrameworkAttemptRunning,
		AttemptStatus: v1alpha1.FrameworkAttemptStatus{StartTime: now, ConfigMapName: name + "-attempt"}}
	rs := v1alpha1.TaskRoleStatus{Name: "worker"}
	for i, ip := range ips {
		ts := v1alpha1.TaskStatus{Index: int32(i), StartTime: now, TransitionTime: now, State: v1alpha1.TaskAttemptRunning,
			AttemptStatus: v1alpha1.TaskAttemptStatus{StartTime: now, PodName: v1alpha1.PodName(name, "worker", int32(i))}}
		if ip != "" {
			ts.AttemptStatus.PodIP = ptr.To(ip)
		}
		rs.TaskStatuses = append(rs.TaskStatuses, ts)
	}
	f.Status.AttemptStatus.TaskRoleStatuses = []v1alpha1.TaskRoleStatus{rs}
	if err := env.Client.Status().Update(ctx, f); err != nil {
		t.Fatalf("update framework status: %v", err)
	}
}

func TestBarrierReleasesAndWritesFiles(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "fw", "10.0.0.1", "10.0.0.2")
	dir := t.TempDir()
	code, out, errOut := run(t, context.Background(),
		map[string]string{"FC_FRAMEWORK_NAMESPACE": ns, "FC_FRAMEWORK_NAME": "fw", "FC_TASKROLE_NAME": "worker", "FC_TASK_INDEX": "1"},
		"--kubeconfig", env.Kubeconfig, "--dir", dir, "--hostfile")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "2/2 tasks ready") || !strings.Contains(out, "barrier released") {
		t.Errorf("stdout %q / stderr %q lack the progress and release lines", out, errOut)
	}
	script, err := os.ReadFile(filepath.Join(dir, "injector.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FB_WORKER_IPS='10.0.0.1,10.0.0.2'", "FB_INDEX='1'", "FB_HOSTFILE="} {
		if !strings.Contains(string(script), want) {
			t.Errorf("injector.sh lacks %s:\n%s", want, script)
		}
	}
}

func TestBarrierExitCodes(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "partial", "10.0.0.1", "")
	base := map[string]string{"FC_FRAMEWORK_NAMESPACE": ns, "FC_FRAMEWORK_NAME": "partial"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	kubeconfig := []string{"--kubeconfig", env.Kubeconfig, "--dir", t.TempDir()}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		deadline time.Duration
		code     int
		reason   string
	}{
		{"invalid interval in env", with("BARRIER_CHECK_INTERVAL_SEC", "3"), kubeconfig, 0, 210, "BARRIER_CHECK_INTERVAL_SEC=3"},
		{"unparsable timeout in env", with("BARRIER_CHECK_TIMEOUT_SEC", "10m"), kubeconfig, 0, 210, `BARRIER_CHECK_TIMEOUT_SEC="10m"`},
		{"invalid task index in env", with("FC_TASKROLE_NAME", "worker", "FC_TASK_INDEX", "x"), kubeconfig, 0, 210, "FC_TASK_INDEX"},
		{"missing framework name", with("FC_FRAMEWORK_NAME", ""), kubeconfig, 0, 210, "FC_FRAMEWORK_NAME is not set"},
		{"invalid interval flag", base, append([]string{"--check-interval-sec", "1"}, kubeconfig...), 0, 210, "--check-interval-sec=1"},
		{"framework does not exist", base, append([]string{"nope"}, kubeconfig...), 0, 210, ns + "/nope does not exist"},
		{"timeout", base, kubeconfig, 2 * time.Second, 201, "1/2 tasks ready; waiting for worker-1"},
		{"unusable kubeconfig", base, []string{"--kubeconfig", filepath.Join(t.TempDir(), "missing")}, 0, 1, "kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.deadline)
				defer cancel()
			}
			code, _, errOut := run(t, ctx, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			last := errOut[strings.LastIndex(strings.TrimSuffix(errOut, "\n"), "\n")+1:]
			if !strings.HasPrefix(last, "error: ") || !strings.Contains(last, tt.reason) {
				t.Errorf("last stderr line = %q, want a one-line reason containing %q", last, tt.reason)
			}
		})
	}
}

// framework.json leaves the pod templates out (they may name secrets) unless
// --pod-templates asks for them, as FrameworkController's barrier writes
// the whole Framework (microsoft/frameworkcontroller pkg/barrier/barrier.go,
// dumpFramework).
func TestPodTemplatesInFrameworkJSONOnlyWhenAsked(t *testing.T) {
	ns := env.Namespace(t)
	createFramework(t, ns, "fw", "10.0.0.1")
	vars := map[string]string{"FC_FRAMEWORK_NAMESPACE": ns, "FC_FRAMEWORK_NAME": "fw", "FC_TASKROLE_NAME": "worker", "FC_TASK_INDEX": "0"}
	for _, asked := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"--kubeconfig", env.Kubeconfig, "--dir", dir}
		if asked {
			args = append(args, "--pod-templates")
		}
		if code, _, errOut := run(t, context.Background(), vars, args...); code != 0 {
			t.Fatalf("--pod-templates=%v: exit code %d, stderr:\n%s", asked, code, errOut)
		}
		data, err := os.ReadFile(filepath.Join(dir, "framework.json"))
		if err != nil {
			t.Fatal(err)
		}
		var f v1alpha1.Framework
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("decode framework.json: %v", err)
		}
		if len(f.Spec.TaskRoles) != 1 || f.Spec.TaskRoles[0].TaskNumber != 1 {
			t.Fatalf("--pod-templates=%v: task roles %+v", asked, f.Spec.TaskRoles)
		}
		if got := len(f.Spec.TaskRoles[0].Task.Pod.Spec.Containers) == 1; got != asked {
			t.Errorf("--pod-templates=%v: framework.json has the pod template: %v\n%s", asked, got, data)
		}
	}
}
