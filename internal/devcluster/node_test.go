package devcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/podkit-dev/podkit/internal/ociimage"
)

// busyboxImage writes Debian's static busybox (package busybox-static) as
// an OCI archive with /bin/sh linked to it: the shell the real-node tests
// run in their pods.
func busyboxImage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := ociimage.Write(filepath.Join(dir, "layout"), ociimage.Options{
		Binary: "/bin/busybox", Path: "/bin/busybox", Links: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}, RefName: "dev",
	}); err != nil {
		t.Fatalf("write busybox image (apt-get install busybox-static): %v", err)
	}
	archive := filepath.Join(dir, "busybox.tar")
	if err := ociimage.WriteArchiveFile(archive, filepath.Join(dir, "layout")); err != nil {
		t.Fatal(err)
	}
	return archive
}

// leftovers lists what a stopped real node must not leave behind.
func leftovers(m *Manager, cluster string, st *nodeState, sock string) []string {
	var left []string
	for _, d := range []string{m.Dir(cluster), st.RunDir} {
		if pts, _ := mountsUnder(d); len(pts) > 0 {
			left = append(left, fmt.Sprintf("mounts %v", pts))
		}
	}
	if _, err := os.Stat(st.RunDir); err == nil {
		left = append(left, "directory "+st.RunDir)
	}
	for _, bin := range []string{binContainerd, binShim, binKubelet} {
		if pids := FindProcesses(bin, sock); len(pids) > 0 {
			left = append(left, fmt.Sprintf("%s processes %v", bin, pids))
		}
	}
	if pids := FindProcesses(binRegistryHint, fmt.Sprintf("127.0.0.1:%d", st.RegistryHintPort)); len(pids) > 0 {
		left = append(left, fmt.Sprintf("registryhint processes %v", pids))
	}
	if pids := FindProcesses(binKubelet, st.Name); len(pids) > 0 {
		left = append(left, fmt.Sprintf("kubelet processes %v", pids))
	}
	if _, err := net.InterfaceByName(st.Bridge); err == nil {
		left = append(left, "bridge "+st.Bridge)
	}
	cgs, _ := cgroupMounts()
	for _, cg := range cgs {
		if _, err := os.Stat(filepath.Join(cg, st.CgroupRoot)); err == nil {
			left = append(left, "cgroup "+filepath.Join(cg, st.CgroupRoot))
		}
	}
	if _, err := os.Stat(m.Dir(cluster)); err == nil {
		left = append(left, "directory "+m.Dir(cluster))
	}
	return left
}

// upRealNode creates a cluster with a real node, waiting while another
// test binary's real node runs (one per machine).
func upRealNode(ctx context.Context, t *testing.T, m *Manager, cluster string) (*UpResult, error) {
	t.Helper()
	for {
		res, err := m.Up(ctx, UpOptions{Name: cluster, Nodes: 1, RealNode: true})
		if !errors.Is(err, ErrRealNodeBusy) || ctx.Err() != nil {
			return res, err
		}
		t.Logf("waiting: %v", err)
		time.Sleep(2 * time.Second)
	}
}

// iptablesRules returns the chains and rules of every IPv4 and IPv6
// table, without counters and without the built-in chains' policies.
func iptablesRules(t *testing.T) []string {
	t.Helper()
	var rules []string
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(cmd).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		table := ""
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(l, "*"):
				table = l
			case strings.HasPrefix(l, "-A "):
				rules = append(rules, cmd+" "+table+" "+l)
			case strings.HasPrefix(l, ":"):
				name := strings.Fields(l[1:])[0]
				if !slices.Contains([]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}, name) {
					rules = append(rules, cmd+" "+table+" chain "+name)
				}
			}
		}
	}
	slices.Sort(rules)
	return rules
}

func waitPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	for ctx.Err() == nil {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if done(p) {
				return p
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s never reached the expected state; last status %+v", ns, name, last.Status)
	return nil
}

// TestRealNodeRunsAPodAndLeavesNothingBehind starts a cluster with a real
// node, runs a shell in a pod there, reads its exit code and its log
// through the apiserver, and checks that down removes every process,
// mount, cgroup and interface the node created.
func TestRealNodeRunsAPodAndLeavesNothingBehind(t *testing.T) {
	if err := checkRealNodePrerequisites(); err != nil {
		t.Fatalf("real node prerequisites (make tools; apt-get install containernetworking-plugins busybox-static): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m := &Manager{Workdir: t.TempDir()}
	const cluster = "realnode"
	rulesBefore := iptablesRules(t)
	res, err := upRealNode(ctx, t, m, cluster)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	st, err := m.readNodeState(cluster)
	if err != nil {
		t.Fatal(err)
	}
	sock := m.containerdSocket(cluster)
	downed := false
	t.Cleanup(func() {
		if !downed {
			_ = m.Down(context.Background(), cluster)
		}
	})
	if res.Nodes != 2 {
		t.Errorf("cluster has %d nodes, want the kwok node and the real one", res.Nodes)
	}
	// A second real node on this machine, even for a cluster of the same
	// name in another work directory, is refused with the first one's name,
	// and leaves nothing behind.
	other := &Manager{Workdir: t.TempDir()}
	if _, err := other.Up(ctx, UpOptions{Name: cluster, RealNode: true}); !errors.Is(err, ErrRealNodeBusy) || !strings.Contains(err.Error(), st.Name) {
		t.Errorf("second real node: %v, want ErrRealNodeBusy naming %s", err, st.Name)
	}
	if err := other.Lookup(cluster); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused cluster was left behind: %v", err)
	}
	if err := m.ImportImage(ctx, cluster, busyboxImage(t), "podkit.dev/busybox"); err != nil {
		t.Fatal(err)
	}
	cs, err := m.clientset(cluster)
	if err != nil {
		t.Fatal(err)
	}
	node, err := cs.CoreV1().Nodes().Get(ctx, st.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels[LabelRealNode] != "true" {
		t.Errorf("real node labels %v lack %s=true", node.Labels, LabelRealNode)
	}
	if !slices.ContainsFunc(node.Spec.Taints, func(tn corev1.Taint) bool {
		return tn.Key == LabelRealNode && tn.Value == "true" && tn.Effect == corev1.TaintEffectNoSchedule
	}) {
		t.Errorf("real node taints %v lack %s=true:NoSchedule", node.Spec.Taints, LabelRealNode)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shell", Namespace: "default"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{LabelRealNode: "true"},
			Tolerations:   []corev1.Toleration{RealNodeToleration},
			Containers: []corev1.Container{{
				Name: "sh", Image: "podkit.dev/busybox:dev", ImagePullPolicy: corev1.PullNever,
				Command: []string{"/bin/sh", "-c", `echo "hello from $(busybox hostname) pid $$$$"; exit 3`},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := waitPod(ctx, t, cs, "default", "shell", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	})
	if done.Status.Phase != corev1.PodFailed || len(done.Status.ContainerStatuses) != 1 || done.Status.ContainerStatuses[0].State.Terminated == nil || done.Status.ContainerStatuses[0].State.Terminated.ExitCode != 3 {
		t.Fatalf("pod ended %s with %+v, want Failed with the shell's exit code 3", done.Status.Phase, done.Status.ContainerStatuses)
	}
	if done.Status.PodIP == "" || !strings.HasPrefix(done.Status.PodIP, strings.TrimSuffix(st.Subnet, "0/24")) {
		t.Errorf("pod IP %q is not in the node's subnet %s", done.Status.PodIP, st.Subnet)
	}
	logs, err := cs.CoreV1().Pods("default").GetLogs("shell", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pod log through the apiserver: %v", err)
	}
	if want := "hello from shell pid 1\n"; string(logs) != want {
		t.Errorf("pod log %q, want %q", logs, want)
	}

	// The pod reaches the apiserver through the kubernetes Service, as an
	// in-cluster client does (kube-proxy's rules, the cluster CA's SAN).
	svc := pod.DeepCopy()
	svc.Name = "service-client"
	svc.Spec.Containers[0].Command = []string{"/bin/sh", "-c",
		`nc -w 5 "$${KUBERNETES_SERVICE_HOST}" "$${KUBERNETES_SERVICE_PORT}" </dev/null && echo connected to $${KUBERNETES_SERVICE_HOST}`}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done = waitPod(ctx, t, cs, "default", "service-client", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	})
	logs, _ = cs.CoreV1().Pods("default").GetLogs("service-client", &corev1.PodLogOptions{}).DoRaw(ctx)
	if done.Status.Phase != corev1.PodSucceeded || !strings.Contains(string(logs), "connected to 10.0.0.1") {
		t.Errorf("pod could not reach the kubernetes Service: phase %s, log %q", done.Status.Phase, logs)
	}

	// A pod reaches another pod of the same node through a Service (kube-
	// proxy's DNAT; the reply must come back un-DNATed, br_netfilter or not).
	web := pod.DeepCopy()
	web.Name = "web"
	web.Labels = map[string]string{"app": "web"}
	web.Spec.Containers[0].Command = []string{"/bin/sh", "-c", `while true; do echo "hello from web" | nc -l -p 8080; done`}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	websvc, err := cs.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, cs, "default", "web", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	viaSvc := pod.DeepCopy()
	viaSvc.Name = "via-service"
	viaSvc.Spec.Containers[0].Command = []string{"/bin/sh", "-c",
		fmt.Sprintf(`for i in $(seq 50); do r=$(nc -w 2 %s 80 </dev/null) && [ -n "$r" ] && echo "$r" && exit 0; sleep 0.2; done; exit 1`, websvc.Spec.ClusterIP)}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, viaSvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done = waitPod(ctx, t, cs, "default", "via-service", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
	})
	logs, _ = cs.CoreV1().Pods("default").GetLogs("via-service", &corev1.PodLogOptions{}).DoRaw(ctx)
	if done.Status.Phase != corev1.PodSucceeded || !strings.Contains(string(logs), "hello from web") {
		t.Errorf("pod could not reach a same-node pod through Service %s: phase %s, log %q", websvc.Spec.ClusterIP, done.Status.Phase, logs)
	}

	// A pod whose image was never imported fails to pull it, and the
	// kubelet's message says which command imports it.
	missing := pod.DeepCopy()
	missing.Name = "missing-image"
	missing.Spec.Containers[0].Image = "podkit.dev/never-imported:dev"
	missing.Spec.Containers[0].ImagePullPolicy = corev1.PullIfNotPresent
	if _, err := cs.CoreV1().Pods("default").Create(ctx, missing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waiting := waitPod(ctx, t, cs, "default", "missing-image", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			(p.Status.ContainerStatuses[0].State.Waiting.Reason == "ErrImagePull" || p.Status.ContainerStatuses[0].State.Waiting.Reason == "ImagePullBackOff") &&
			p.Status.ContainerStatuses[0].State.Waiting.Message != ""
	})
	msg := waiting.Status.ContainerStatuses[0].State.Waiting.Message
	if !strings.Contains(msg, "podkit.dev/never-imported:dev is not on this node") || !strings.Contains(msg, "podkit dev import ARCHIVE --as podkit.dev/never-imported") {
		t.Errorf("pull error %q does not name the image and the import command", msg)
	}

	// kwok's nodes keep serving their pods' logs beside the real node.
	onKwok := pod.DeepCopy()
	onKwok.Name = "on-kwok"
	onKwok.Spec.NodeSelector = map[string]string{"type": "kwok"}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, onKwok, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, cs, "default", "on-kwok", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := os.WriteFile(filepath.Join(m.Dir(cluster), LogsFileName), []byte("2026-01-01T00:00:00.000000000Z stdout F served by kwok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if logs, err := cs.CoreV1().Pods("default").GetLogs("on-kwok", &corev1.PodLogOptions{}).DoRaw(ctx); err != nil || !strings.Contains(string(logs), "served by kwok") {
		t.Errorf("log of a pod on a kwok node: %q, %v", logs, err)
	}

	// A long-running pod is still there when down stops the node.
	sleeper := pod.DeepCopy()
	sleeper.Name = "sleeper"
	sleeper.Spec.Containers[0].Command = []string{"/bin/sh", "-c", "busybox sleep 3600"}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, sleeper, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPod(ctx, t, cs, "default", "sleeper", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })

	if err := m.Down(ctx, cluster); err != nil {
		t.Fatalf("Down: %v", err)
	}
	downed = true
	if left := leftovers(m, cluster, st, sock); len(left) > 0 {
		t.Errorf("down left behind: %s", strings.Join(left, "; "))
	}
	if diff := cmp.Diff(rulesBefore, iptablesRules(t)); diff != "" {
		t.Errorf("down left iptables rules or chains behind (-before +after):\n%s", diff)
	}
	if err := m.Lookup(cluster); !errors.Is(err, ErrNotFound) {
		t.Errorf("after down, Lookup = %v, want ErrNotFound", err)
	}
}

// A cluster created without a real node says how to get one instead of
// pretending to add it: the apiserver's kubelet and admission settings are
// fixed at creation.
func TestRealNodeIsNotAddedToAnExistingCluster(t *testing.T) {
	if err := checkRealNodePrerequisites(); err != nil {
		t.Fatalf("real node prerequisites: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := &Manager{Workdir: t.TempDir()}
	const cluster = "kwokonly"
	if _, err := m.Up(ctx, UpOptions{Name: cluster}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Down(context.Background(), cluster) })
	_, err := m.Up(ctx, UpOptions{Name: cluster, RealNode: true})
	if err == nil || !strings.Contains(err.Error(), "podkit dev down --name kwokonly, then podkit dev up --name kwokonly --real-node") {
		t.Fatalf("Up --real-node on a kwok-only cluster: %v, want a refusal that says how", err)
	}
	if m.hasRealNode(cluster) {
		t.Error("a refused Up left real node state behind")
	}
	if st, err := m.Status(ctx, cluster); err != nil || st.State != StateRunning {
		t.Errorf("the cluster stopped running after the refusal: %+v, %v", st, err)
	}
}
