package integration

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/barrier"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1alpha1.AddToScheme)
	}))
}

// role is a task role of a test Framework.
type role struct {
	name string
	n    int32
}

// createFramework creates a Framework with the given roles (no status).
func createFramework(t *testing.T, ns, name string, roles ...role) *v1alpha1.Framework {
	t.Helper()
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for _, r := range roles {
		f.Spec.TaskRoles = append(f.Spec.TaskRoles, v1alpha1.TaskRoleSpec{
			Name: r.name, TaskNumber: r.n,
			Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "app", Image: "busybox"}},
			}}},
		})
	}
	if err := env.Client.Create(context.Background(), f); err != nil {
		t.Fatalf("create framework %s/%s: %v", ns, name, err)
	}
	return f
}

// setPodIPs writes the status subresource so that task i of each role has
// ips[role][i] as its pod IP ("" for none), as the controller would.
func setPodIPs(t *testing.T, nn types.NamespacedName, ips map[string][]string) {
	t.Helper()
	ctx := context.Background()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var f v1alpha1.Framework
		if err := env.Client.Get(ctx, nn, &f); err != nil {
			return err
		}
		f.Status = statusWithIPs(&f, ips)
		return env.Client.Status().Update(ctx, &f)
	})
	if err != nil {
		t.Fatalf("set pod IPs of framework %s: %v", nn, err)
	}
}

func statusWithIPs(f *v1alpha1.Framework, ips map[string][]string) *v1alpha1.FrameworkStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	st := &v1alpha1.FrameworkStatus{
		StartTime: now, TransitionTime: now, State: v1alpha1.FrameworkAttemptPreparing,
		AttemptStatus: v1alpha1.FrameworkAttemptStatus{StartTime: now, ConfigMapName: v1alpha1.ConfigMapName(f.Name)},
	}
	for _, r := range f.Spec.TaskRoles {
		rs := v1alpha1.TaskRoleStatus{Name: r.Name}
		for i := int32(0); i < r.TaskNumber; i++ {
			ts := v1alpha1.TaskStatus{
				Index: i, StartTime: now, TransitionTime: now, State: v1alpha1.TaskAttemptPreparing,
				AttemptStatus: v1alpha1.TaskAttemptStatus{StartTime: now, PodName: v1alpha1.PodName(f.Name, r.Name, i)},
			}
			if int(i) < len(ips[r.Name]) && ips[r.Name][i] != "" {
				ts.AttemptStatus.PodIP = ptr.To(ips[r.Name][i])
				ts.State = v1alpha1.TaskAttemptRunning
			}
			rs.TaskStatuses = append(rs.TaskStatuses, ts)
		}
		st.AttemptStatus.TaskRoleStatuses = append(st.AttemptStatus.TaskRoleStatuses, rs)
	}
	return st
}

// ipsFor returns n pod IPs 10.<subnet>.x.y.
func ipsFor(subnet, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("10.%d.%d.%d", subnet, i/250, i%250+1)
	}
	return out
}

// config returns a barrier Config for the Framework that reads the test
// apiserver's kubeconfig, as a user's KUBECONFIG would.
func config(ns, name string) barrier.Config {
	return barrier.Config{KubeConfigFilePath: env.Kubeconfig, FrameworkNamespace: ns, FrameworkName: name}
}

// result is what a Wait returned.
type result struct {
	f   *v1alpha1.Framework
	err error
}

// startWait runs barrier.Wait in the background; the returned channel gets
// its result and the other channel every progress report. The wait is
// canceled when the test ends.
func startWait(t *testing.T, ctx context.Context, cfg barrier.Config, opts ...barrier.Option) (<-chan result, <-chan barrier.Progress) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	progress := make(chan barrier.Progress, 100)
	opts = append(opts, barrier.WithProgress(func(p barrier.Progress) {
		select {
		case progress <- p:
		default:
		}
	}))
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		f, err := barrier.Wait(ctx, cfg, opts...)
		done <- result{f, err}
	}()
	t.Cleanup(func() { cancel(); <-finished })
	return done, progress
}

// await returns the wait's result, failing the test after timeout.
func await(t *testing.T, done <-chan result, timeout time.Duration) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(timeout):
		t.Fatalf("barrier did not return within %s", timeout)
		return result{}
	}
}

// awaitProgress returns the next progress report, failing after timeout.
func awaitProgress(t *testing.T, progress <-chan barrier.Progress, timeout time.Duration) barrier.Progress {
	t.Helper()
	select {
	case p := <-progress:
		return p
	case <-time.After(timeout):
		t.Fatalf("no progress report within %s", timeout)
		return barrier.Progress{}
	}
}
