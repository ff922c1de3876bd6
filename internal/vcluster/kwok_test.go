package vcluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/vcluster"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/pods"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/services"
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
	ready := make(chan vcluster.Access, 1)
	opts.Ready = func(a vcluster.Access) { ready <- a }
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
	var access vcluster.Access
	select {
	case access = <-ready:
	case err := <-done:
		done <- err
		t.Fatalf("Up ended before the virtual cluster was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("virtual cluster not ready within 2 minutes")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", access.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	vcs := kubernetes.NewForConfigOrDie(cfg)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", Labels: map[string]string{"app": "hello"}},
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

	// A virtual Service of the pod resolves to the address the host routes
	// (vcluster's services syncer recreates the virtual Service with the
	// host's spec.clusterIP), and its endpoints, built by the host's
	// EndpointSlice controller from the kwok pod, name the virtual pod
	// (vcluster's endpoints translate.go maps Pod targetRefs).
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "hello"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if _, err := vcs.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create virtual Service: %v", err)
	}
	var hostIP string
	testenv.WaitFor(t, 60*time.Second, "host Service with a cluster IP", func(ctx context.Context) (bool, error) {
		h, err := kwok.Clientset.CoreV1().Services(opts.HostNamespace).Get(ctx, "hello-x-default-x-vck", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		hostIP = h.Spec.ClusterIP
		return hostIP != "", nil
	})
	testenv.WaitFor(t, 60*time.Second, "virtual Service resolves to the host's cluster IP "+hostIP, func(ctx context.Context) (bool, error) {
		v, err := vcs.CoreV1().Services("default").Get(ctx, "hello", metav1.GetOptions{})
		return err == nil && v.Spec.ClusterIP == hostIP, nil
	})
	testenv.WaitFor(t, 90*time.Second, "virtual EndpointSlice with the pod's address naming the virtual pod", func(ctx context.Context) (bool, error) {
		list, err := vcs.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=hello"})
		if err != nil {
			return false, nil
		}
		for _, es := range list.Items {
			if es.Labels[discoveryv1.LabelManagedBy] != services.ManagedByHost {
				return false, fmt.Errorf("EndpointSlice %s managed by %q: the virtual cluster builds its own", es.Name, es.Labels[discoveryv1.LabelManagedBy])
			}
			for _, ep := range es.Endpoints {
				if slices.Contains(ep.Addresses, got.Status.PodIP) && ep.TargetRef != nil && ep.TargetRef.Name == "hello" && ep.TargetRef.Namespace == "default" {
					return true, nil
				}
			}
		}
		return false, nil
	})

	// v1 Endpoints of a Service with a selector are the virtual cluster's
	// own endpoints controller's, from the virtual pod whose IP flowed up
	// (vcluster's endpoints syncer leaves them to it); the endpoints syncer
	// neither copies them nor reports the host controller's Endpoints of
	// the host copy as a name taken.
	testenv.WaitFor(t, 60*time.Second, "virtual Endpoints of hello with the pod IP", func(ctx context.Context) (bool, error) {
		ep, err := vcs.CoreV1().Endpoints("default").Get(ctx, "hello", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				if a.IP == got.Status.PodIP && a.TargetRef != nil && a.TargetRef.Name == "hello" {
					return true, nil
				}
			}
		}
		return false, nil
	})
	events, err := vcs.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.Reason == syncer.ReasonHostNameTaken || e.Reason == syncer.ReasonSyncError {
			t.Errorf("event %s on %s %s: %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
		}
	}

	// The host pod asks the virtual cluster's DNS server (the syncer's
	// PodNetwork.DNS is the server's IP, as vcluster points pods at its
	// CoreDNS).
	pPod, err := kwok.Clientset.CoreV1().Pods(opts.HostNamespace).Get(context.Background(), "hello-x-default-x-vck", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get host pod: %v", err)
	}
	dnsIP, _, _ := net.SplitHostPort(access.DNS)
	if pPod.Spec.DNSPolicy != corev1.DNSNone || pPod.Spec.DNSConfig == nil || !slices.Equal(pPod.Spec.DNSConfig.Nameservers, []string{dnsIP}) {
		t.Errorf("host pod dnsPolicy %s, dnsConfig %+v; want None with nameserver %s", pPod.Spec.DNSPolicy, pPod.Spec.DNSConfig, dnsIP)
	}

	// Kwok pods send no packets, so the test resolves as a pod's stub
	// resolver would, from this process (the issue: "addresses resolve;
	// traffic needs real pods"). Expectations: kubernetes/dns
	// docs/specification.md (§2.3 Service A/SRV, §2.4 headless A) and
	// CoreDNS's kubernetes plugin (NXDOMAIN for unknown names).
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, access.DNS)
	}}
	const name = "hello.default.svc.cluster.local."
	testenv.WaitFor(t, 30*time.Second, name+" resolves to the host cluster IP "+hostIP, func(ctx context.Context) (bool, error) {
		ips, err := r.LookupHost(ctx, name)
		return err == nil && slices.Equal(ips, []string{hostIP}), nil
	})
	_, srvs, err := r.LookupSRV(context.Background(), "http", "tcp", name)
	if err != nil || len(srvs) != 1 || srvs[0].Port != 80 || srvs[0].Target != name {
		t.Errorf("SRV _http._tcp.%s = %v, %v; want port 80 at %s", name, srvs, err, name)
	}

	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello-pods"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "hello"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if _, err := vcs.CoreV1().Services("default").Create(context.Background(), headless, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create virtual headless Service: %v", err)
	}
	const headlessName = "hello-pods.default.svc.cluster.local."
	testenv.WaitFor(t, 90*time.Second, headlessName+" resolves to the pod IP "+got.Status.PodIP, func(ctx context.Context) (bool, error) {
		ips, err := r.LookupHost(ctx, headlessName)
		return err == nil && slices.Equal(ips, []string{got.Status.PodIP}), nil
	})

	_, err = r.LookupHost(context.Background(), "nope.default.svc.cluster.local.")
	if dnsErr := (*net.DNSError)(nil); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("unknown Service: %v, want NXDOMAIN (not found)", err)
	}

	if err := vcs.CoreV1().Services("default").Delete(context.Background(), "hello", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete virtual Service: %v", err)
	}
	testenv.WaitFor(t, 30*time.Second, name+" stops resolving once the Service is deleted", func(ctx context.Context) (bool, error) {
		_, err := r.LookupHost(ctx, name)
		var dnsErr *net.DNSError
		return errors.As(err, &dnsErr) && dnsErr.IsNotFound, nil
	})
}
