// Command realnode measures the dev cluster's real node: how long a cluster
// takes to start with it and without it, and how long a pod takes from
// create to Running on the real node beside a kwok node, pods alternating
// between the two in the same run.
//
//	go run ./bench/realnode -n 20
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/bench/internal/load"
	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/internal/ociimage"
)

func main() {
	n := flag.Int("n", 20, "pods per node kind, created one at a time, alternating")
	flag.Parse()
	if err := run(*n); err != nil {
		slog.Error("realnode benchmark", "err", err)
		os.Exit(1)
	}
}

func run(n int) error {
	defer load.Report()()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	work, err := os.MkdirTemp("", "podkit-bench-realnode-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	m := &devcluster.Manager{Workdir: work}

	start := time.Now()
	if _, err := m.Up(ctx, devcluster.UpOptions{Name: "kwokonly", Nodes: 1}); err != nil {
		return err
	}
	kwokUp := time.Since(start)
	if err := m.Down(ctx, "kwokonly"); err != nil {
		return err
	}
	start = time.Now()
	if _, err := m.Up(ctx, devcluster.UpOptions{Name: "bench", Nodes: 1, RealNode: true}); err != nil {
		return err
	}
	realUp := time.Since(start)
	defer func() { _ = m.Down(context.Background(), "bench") }()
	fmt.Printf("cluster start: kwok only %s, with the real node %s (+%s)\n", kwokUp.Round(10*time.Millisecond), realUp.Round(10*time.Millisecond), (realUp - kwokUp).Round(10*time.Millisecond))

	archive, err := busybox(work)
	if err != nil {
		return err
	}
	if err := m.ImportImage(ctx, "bench", archive, "podkit.dev/busybox"); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", m.KubeconfigPath("bench"))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var real, kwok []time.Duration
	// One warm-up pod per kind, not counted.
	for i := -1; i < n; i++ {
		for _, onReal := range []bool{true, false} {
			d, err := podStart(ctx, cs, fmt.Sprintf("p%d-%v", i+1, onReal), onReal)
			if err != nil {
				return err
			}
			if i < 0 {
				continue
			}
			if onReal {
				real = append(real, d)
			} else {
				kwok = append(kwok, d)
			}
		}
	}
	rp50, rp99 := pct(real, 50), pct(real, 99)
	kp50, kp99 := pct(kwok, 50), pct(kwok, 99)
	fmt.Printf("pod create → Running (%d pods each): kwok node p50 %s p99 %s | real node p50 %s p99 %s | real/kwok %.1fx p50, %.1fx p99\n",
		n, kp50, kp99, rp50, rp99, float64(rp50)/float64(kp50), float64(rp99)/float64(kp99))
	return nil
}

// podStart creates one pod and returns the time until the API reports it
// Running; the pod is deleted before it returns.
func podStart(ctx context.Context, cs kubernetes.Interface, name string, onReal bool) (time.Duration, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "sh", Image: "podkit.dev/busybox:dev", ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", "sleep 600"},
			}},
		},
	}
	if onReal {
		pod.Spec.NodeSelector = map[string]string{devcluster.LabelRealNode: "true"}
		pod.Spec.Tolerations = []corev1.Toleration{devcluster.RealNodeToleration}
	} else {
		pod.Spec.NodeSelector = map[string]string{"type": "kwok"}
	}
	start := time.Now()
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return 0, err
	}
	w, err := cs.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	var d time.Duration
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok && p.Status.Phase == corev1.PodRunning {
			d = time.Since(start)
			break
		}
	}
	if d == 0 {
		return 0, fmt.Errorf("pod %s never ran", name)
	}
	zero := int64(0)
	if err := cs.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		return 0, err
	}
	return d, nil
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Millisecond)
}

func busybox(dir string) (string, error) {
	layout := filepath.Join(dir, "busybox")
	if _, err := ociimage.Write(layout, ociimage.Options{Binary: "/bin/busybox", Path: "/bin/busybox", Links: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}, RefName: "dev"}); err != nil {
		return "", fmt.Errorf("write busybox image (apt-get install busybox-static): %w", err)
	}
	archive := layout + ".tar"
	return archive, ociimage.WriteArchiveFile(archive, layout)
}
