package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/api/v1alpha1"
	clibarrier "github.com/podkit-dev/podkit/internal/cli/barrier"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/barrier"
	"github.com/podkit-dev/podkit/pkg/framework"
)

// childEnv marks a re-executed test binary that runs one barrier, as a task
// pod's init container would.
const childEnv = "PODKIT_BARRIER_E2E_CHILD"

var env *testenv.Env

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runBarrier())
	}
	os.Exit(testenv.Cluster(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1alpha1.AddToScheme)
	}))
}

// runBarrier is the child: the seed's entry point, configured by env only.
func runBarrier() int {
	b, err := barrier.FromEnv()
	if err == nil {
		err = b.RunContext(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "barrier:", err)
	}
	return clibarrier.ExitCode(err)
}

// startController runs the Framework controller until the test ends. It
// publishes the release for every size (by default only from
// v1alpha1.BarrierReleaseMinTasks tasks), so that the in-process waiter
// that asks for the metadata-only path (WithMetadataWatch(0)) meets a real
// controller's annotation; the barrier processes keep their default, the
// whole-object watch.
func startController(t *testing.T) {
	t.Helper()
	fwtest.Start(t, env, fwtest.Options{Reconciler: framework.Options{ReleaseMinTasks: -1}})
}

func TestBarrierProcessesOfEveryTaskReleaseTogether(t *testing.T) {
	startController(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	roles := []struct {
		name string
		n    int32
	}{{"ps", 1}, {"workergpu", 3}, {"2nd", 2}}
	fw := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gang"}}
	for _, r := range roles {
		fw.Spec.TaskRoles = append(fw.Spec.TaskRoles, v1alpha1.TaskRoleSpec{Name: r.name, TaskNumber: r.n,
			Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "app", Image: "busybox"}},
			}}}})
	}
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("create framework: %v", err)
	}

	// Start one barrier per task as soon as its pod exists, with the pod's
	// own FC_* environment, as its init container would run.
	var pods corev1.PodList
	testenv.WaitFor(t, time.Minute, "all 6 task pods created", func(ctx context.Context) (bool, error) {
		err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelFrameworkName: "gang"})
		return len(pods.Items) == 6, err
	})
	// Beside the processes (which watch this small Framework whole), one
	// in-process barrier takes the metadata-only path on the release the
	// controller publishes: it must release on the same addresses, after
	// exactly one LIST, one metadata WATCH and one GET.
	var reqs []string
	var reqsMu sync.Mutex
	rc := rest.CopyConfig(env.Config)
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			kind := r.Method
			if r.URL.Query().Get("watch") == "true" {
				kind = "WATCH"
				if strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadata") {
					kind = "WATCH(metadata)"
				}
			} else if strings.HasSuffix(r.URL.Path, "/frameworks") {
				kind = "LIST"
			}
			reqsMu.Lock()
			reqs = append(reqs, kind)
			reqsMu.Unlock()
			return rt.RoundTrip(r)
		})
	})
	type waited struct {
		f   *v1alpha1.Framework
		err error
	}
	inProcess := make(chan waited, 1)
	go func() {
		f, err := barrier.Wait(ctx, barrier.Config{FrameworkNamespace: ns, FrameworkName: "gang", BarrierCheckTimeoutSec: 120},
			barrier.WithRESTConfig(rc), barrier.WithMetadataWatch(0))
		inProcess <- waited{f, err}
	}()

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type child struct {
		pod    string
		dir    string
		err    error
		stderr bytes.Buffer
	}
	children := make([]*child, len(pods.Items))
	var wg sync.WaitGroup
	for i, pod := range pods.Items {
		c := &child{pod: pod.Name, dir: t.TempDir()}
		children[i] = c
		cmd := exec.Command(self)
		cmd.Dir = c.dir
		cmd.Env = []string{childEnv + "=1", "KUBECONFIG=" + env.Kubeconfig, "PATH=" + os.Getenv("PATH"),
			barrier.EnvNameBarrierCheckTimeoutSec + "=120"}
		for _, e := range pod.Spec.Containers[0].Env {
			if e.ValueFrom == nil && strings.HasPrefix(e.Name, "FC_") {
				cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
			}
		}
		cmd.Stderr = &c.stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start barrier for %s: %v", pod.Name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.err = cmd.Wait()
		}()
	}
	wg.Wait()

	// Every barrier released, and all agree with the pods' IPs.
	if err := env.Client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelFrameworkName: "gang"}); err != nil {
		t.Fatal(err)
	}
	podIP := map[string]string{}
	for _, p := range pods.Items {
		podIP[p.Name] = p.Status.PodIP
	}
	var want []barrier.RolePeers
	for _, r := range roles {
		rp := barrier.RolePeers{Name: r.name}
		for i := range r.n {
			rp.IPs = append(rp.IPs, podIP[v1alpha1.PodName("gang", r.name, i)])
		}
		want = append(want, rp)
	}
	select {
	case w := <-inProcess:
		if w.err != nil {
			t.Errorf("in-process barrier: %v", w.err)
			break
		}
		if got, err := barrier.PeersOf(w.f); err != nil || !cmp.Equal(want, got) {
			t.Errorf("in-process barrier released on peers %v (%v), want %v", got, err, want)
		}
		if got := w.f.Annotations[v1alpha1.AnnotationBarrierRelease]; got != "0/"+v1alpha1.BarrierReleased {
			t.Errorf("in-process barrier released on a Framework whose %s is %q, want 0/released", v1alpha1.AnnotationBarrierRelease, got)
		}
		reqsMu.Lock()
		if got := strings.Join(reqs, " "); got != "LIST WATCH(metadata) GET" {
			t.Errorf("in-process barrier requests %q, want LIST WATCH(metadata) GET", got)
		}
		reqsMu.Unlock()
	case <-time.After(time.Minute):
		t.Errorf("in-process barrier did not return within a minute of the processes")
	}
	for _, c := range children {
		if c.err != nil {
			var exit *exec.ExitError
			code := -1
			if errors.As(c.err, &exit) {
				code = exit.ExitCode()
			}
			t.Errorf("barrier for %s exited %d: %s", c.pod, code, c.stderr.String())
			continue
		}
		data, err := os.ReadFile(filepath.Join(c.dir, "framework.json"))
		if err != nil {
			t.Errorf("barrier for %s: %v", c.pod, err)
			continue
		}
		var f v1alpha1.Framework
		if err := json.Unmarshal(data, &f); err != nil {
			t.Errorf("barrier for %s: decode framework.json: %v", c.pod, err)
			continue
		}
		got, err := barrier.PeersOf(&f)
		if err != nil {
			t.Errorf("barrier for %s: %v", c.pod, err)
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("barrier for %s: framework.json peers differ from the pods' IPs (-want +got):\n%s", c.pod, d)
		}
		// The pod templates are left out unless --pod-templates asks for
		// them (issue #21: a peer needs addresses, not the templates'
		// secrets and commands).
		for _, r := range f.Spec.TaskRoles {
			if len(r.Task.Pod.Spec.Containers) > 0 || bytes.Contains(data, []byte(`"pod":`)) {
				t.Errorf("barrier for %s: framework.json holds role %s's pod template", c.pod, r.Name)
			}
		}
		script, err := os.ReadFile(filepath.Join(c.dir, "injector.sh"))
		if err != nil {
			t.Errorf("barrier for %s: %v", c.pod, err)
			continue
		}
		var p corev1.Pod
		for _, q := range pods.Items {
			if q.Name == c.pod {
				p = q
			}
		}
		wantRole := fmt.Sprintf("FB_ROLE='%s'\n", p.Labels[v1alpha1.LabelTaskRoleName])
		wantIndex := fmt.Sprintf("FB_INDEX='%s'\n", p.Labels[v1alpha1.LabelTaskIndex])
		if !strings.Contains(string(script), wantRole) || !strings.Contains(string(script), wantIndex) {
			t.Errorf("barrier for %s: injector.sh lacks %q or %q:\n%s", c.pod, wantRole, wantIndex, script)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
