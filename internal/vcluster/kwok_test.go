package vcluster_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/vcluster"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/pods"
)

// TestVirtualPodRunsOnKwokHostNodes runs the virtual cluster on a full
// kwok host cluster: the host schedules the synced pod on a kwok node, and
// the virtual pod becomes Running with the host's pod IP on a fake node.
func TestVirtualPodRunsOnKwokHostNodes(t *testing.T) {
	kwok, err := testenv.Start(context.Background(), testenv.Options{Mode: testenv.ModeCluster, Nodes: 1})
	if err != nil {
		t.Fatalf("start kwok host cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := kwok.Stop(); err != nil {
			t.Errorf("stop kwok host cluster: %v", err)
		}
	})
	opts := vcluster.Options{
		Name: "vck", HostNamespace: "vck-host", HostConfig: kwok.Config,
		StateDir: filepath.Join(t.TempDir(), "vck"),
	}
	ready := make(chan string, 1)
	opts.Ready = func(kubeconfig string) { ready <- kubeconfig }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vcluster.Up(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Up: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("Up did not return after cancellation")
		}
	})
	var kubeconfig string
	select {
	case kubeconfig = <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("Up ended before the virtual cluster was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("virtual cluster not ready within 2 minutes")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	vcs := kubernetes.NewForConfigOrDie(cfg)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	testenv.WaitFor(t, 60*time.Second, "create virtual pod", func(ctx context.Context) (bool, error) {
		_, err := vcs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		return err == nil, nil // the default service account may not exist yet
	})
	var got *corev1.Pod
	testenv.WaitFor(t, 90*time.Second, "virtual pod Running with an IP on a node", func(ctx context.Context) (bool, error) {
		p, err := vcs.CoreV1().Pods("default").Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = p
		return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && p.Spec.NodeName != "", nil
	})
	// The node syncer creates the fake node on its own schedule, which can
	// come just after the pod's status reached the virtual cluster.
	var node *corev1.Node
	testenv.WaitFor(t, 30*time.Second, "fake node "+got.Spec.NodeName+" in the virtual cluster", func(ctx context.Context) (bool, error) {
		n, err := vcs.CoreV1().Nodes().Get(ctx, got.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		node = n
		return true, nil
	})
	if node.Labels[pods.LabelFakeNode] != "true" {
		t.Fatalf("node %s in the virtual cluster is not a fake node: labels %v", got.Spec.NodeName, node.Labels)
	}
	t.Logf("virtual pod on node %s with IP %s", got.Spec.NodeName, got.Status.PodIP)
}
