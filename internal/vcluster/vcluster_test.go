package vcluster_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/vcluster"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

var host *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.APIServer(m, &host)) }

func TestUpRunsADeploymentThroughTheHostAndDownCleansUp(t *testing.T) {
	opts := vcluster.Options{
		Name: "vc1", HostNamespace: "vc1-host", HostConfig: host.Config,
		StateDir: filepath.Join(t.TempDir(), "vc1"), Sync: []string{"configmaps", "pods"},
		// What `podkit dev vcluster up --allow host-path` passes.
		Policy: synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowHostPath}},
	}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(opts.StateDir, "kube-controller-manager.log"))
			if len(log) > 4000 {
				log = log[len(log)-4000:]
			}
			t.Logf("kube-controller-manager log (tail):\n%s", log)
		}
	})
	ready := make(chan string, 1)
	opts.Ready = func(a vcluster.Access) { ready <- a.Kubeconfig }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vcluster.Up(ctx, opts) }()
	finished := false
	t.Cleanup(func() { // stop Up on early failures so the host API server can stop
		cancel()
		if !finished {
			select {
			case <-done:
			case <-time.After(60 * time.Second):
			}
		}
	})
	var kubeconfig string
	select {
	case kubeconfig = <-ready:
	case err := <-done:
		finished = true
		t.Fatalf("Up ended before the virtual cluster was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("virtual cluster not ready within 2 minutes")
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	vcs := kubernetes.NewForConfigOrDie(cfg)
	labels := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx"}}},
			},
		},
	}
	if _, err := vcs.AppsV1().Deployments("default").Create(context.Background(), deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create virtual Deployment: %v", err)
	}
	// The virtual controller manager makes the pods; the syncer puts them on the host.
	testenv.WaitFor(t, 90*time.Second, "2 host pods for the virtual Deployment", func(ctx context.Context) (bool, error) {
		pods, err := host.Clientset.CoreV1().Pods("vc1-host").List(ctx, metav1.ListOptions{LabelSelector: translator.LabelManagedBy + "=vc1," + translator.HostLabelKey("app") + "=web"})
		return err == nil && len(pods.Items) == 2, nil
	})

	// The policy reached the syncer: a hostPath pod, refused by default,
	// is created on the host.
	hostPath := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "logs"},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
			Volumes:    []corev1.Volume{{Name: "logs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}}},
		},
	}
	testenv.WaitFor(t, 60*time.Second, "create virtual hostPath pod", func(ctx context.Context) (bool, error) {
		_, err := vcs.CoreV1().Pods("default").Create(ctx, hostPath, metav1.CreateOptions{})
		return err == nil || apierrors.IsAlreadyExists(err), nil // the default service account may not exist yet
	})
	testenv.WaitFor(t, 60*time.Second, "hostPath pod allowed onto the host", func(ctx context.Context) (bool, error) {
		_, err := host.Clientset.CoreV1().Pods("vc1-host").Get(ctx, "logs-x-default-x-vc1", metav1.GetOptions{})
		return err == nil, nil
	})

	cancel()
	select {
	case err := <-done:
		finished = true
		if err != nil {
			t.Fatalf("Up ended with %v, want nil after cancellation", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Up did not return after cancellation")
	}

	if err := vcluster.Down(context.Background(), opts); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := os.Stat(opts.StateDir); !os.IsNotExist(err) {
		t.Fatalf("state directory still there after Down: %v", err)
	}
	ns, err := host.Clientset.CoreV1().Namespaces().Get(context.Background(), "vc1-host", metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Fatal("host namespace not being deleted after Down")
	}
}
