package testenv

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/podkit-dev/podkit/internal/devcluster"
)

var env *Env

func TestMain(m *testing.M) { os.Exit(APIServer(m, &env)) }

func TestNamespaceIsFreshAndServed(t *testing.T) {
	ns := env.Namespace(t)
	got, err := env.Clientset.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace %s: %v", ns, err)
	}
	if got.Labels["podkit.dev/test"] != "TestNamespaceIsFreshAndServed" {
		t.Errorf("namespace label = %q, want the test name", got.Labels["podkit.dev/test"])
	}
	if other := env.Namespace(t); other == ns {
		t.Errorf("two calls returned the same namespace %s", ns)
	}
}

func TestServerReportsPinnedVersion(t *testing.T) {
	v, err := env.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("server version = %s, want v1.37.2 (built by make tools with version ldflags)", v.GitVersion)
	}
}

// An informer started before the restart must see objects created after it:
// the harness's restart leaves the same address, certificates and data.
func TestWatchResumesAfterAPIServerRestart(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	seen := make(chan string, 16)
	factory := informers.NewSharedInformerFactoryWithOptions(env.Clientset, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().ConfigMaps().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { seen <- obj.(*corev1.ConfigMap).Name },
	}); err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	defer func() { cancel(); factory.Shutdown() }()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("informer never synced")
	}
	create := func(name string) {
		t.Helper()
		_, err := env.Clientset.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create configmap %s: %v", name, err)
		}
	}
	expect := func(name string) {
		t.Helper()
		for {
			select {
			case got := <-seen:
				if got == name {
					return
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("informer never saw configmap %s", name)
			}
		}
	}
	create("before")
	expect("before")
	env.RestartAPIServer(t)
	create("after")
	expect("after")
}

// A second control plane started and stopped inside a test leaves no
// process behind.
func TestStopLeavesNoProcesses(t *testing.T) {
	e, err := Start(context.Background(), Options{Mode: ModeAPIServer, CRDDirectoryPaths: []string{}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	pids := e.PIDs()
	if len(pids) != 2 {
		t.Errorf("running control plane has %d processes %v, want etcd and kube-apiserver", len(pids), pids)
	}
	if err := e.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	assertGone(t, pids)
}

func assertGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for devcluster.Alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d survived Stop", pid)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// The cluster mode schedules pods onto kwok nodes, gives them an IP,
// completes them with the requested exit code, garbage-collects dependents,
// and stops without leaving processes.
func TestClusterModeRunsCompletesAndCollectsPods(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx, Options{Mode: ModeCluster, Nodes: 2, CRDDirectoryPaths: []string{}})
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	pids := c.PIDs()
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		assertGone(t, pids)
	})
	if len(pids) < 5 {
		t.Errorf("cluster has %d processes %v, want etcd, apiserver, controller-manager, scheduler and kwok", len(pids), pids)
	}
	ns := c.Namespace(t)
	pod := func(name string, annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example.com/app:1"}}},
		}
	}
	owner, err := c.Clientset.CoreV1().Pods(ns).Create(ctx, pod("owner", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	WaitFor(t, 60*time.Second, "pod owner Running with an IP", func(ctx context.Context) (bool, error) {
		p, err := c.Clientset.CoreV1().Pods(ns).Get(ctx, "owner", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Spec.NodeName != "", err
	})

	for _, tc := range []struct {
		code  string
		phase corev1.PodPhase
	}{{"0", corev1.PodSucceeded}, {"3", corev1.PodFailed}} {
		name := "exit-" + tc.code
		p := pod(name, nil)
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: owner.Name, UID: owner.UID}}
		if _, err := c.Clientset.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
		WaitFor(t, 60*time.Second, "pod "+name+" Running", func(ctx context.Context) (bool, error) {
			p, err := c.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			return err == nil && p.Status.Phase == corev1.PodRunning, err
		})
		patch := []byte(`{"metadata":{"annotations":{"` + AnnotationExitCode + `":"` + tc.code + `"}}}`)
		if _, err := c.Clientset.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("annotate pod %s: %v", name, err)
		}
		WaitFor(t, 60*time.Second, "pod "+name+" to finish with exit code "+tc.code, func(ctx context.Context) (bool, error) {
			p, err := c.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil || p.Status.Phase != tc.phase || len(p.Status.ContainerStatuses) != 1 {
				return false, err
			}
			term := p.Status.ContainerStatuses[0].State.Terminated
			return term != nil && strconv.Itoa(int(term.ExitCode)) == tc.code, nil
		})
	}

	if err := c.Clientset.CoreV1().Pods(ns).Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete owner: %v", err)
	}
	WaitFor(t, 90*time.Second, "dependent pods garbage-collected", func(ctx context.Context) (bool, error) {
		list, err := c.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: fields.Everything().String()})
		return err == nil && len(list.Items) == 0, err
	})
	_, err = c.Clientset.CoreV1().Pods(ns).Get(ctx, "exit-0", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("get collected pod: err = %v, want NotFound", err)
	}
}
