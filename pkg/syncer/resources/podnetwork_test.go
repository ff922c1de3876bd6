package resources_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// vcluster's pod translator (pkg/controllers/resources/pods/translate/
// translator.go) gives host containers KUBERNETES_SERVICE_HOST/PORT of the
// virtual API server's Service and host aliases for "kubernetes", makes
// ClusterFirst pods resolve with the virtual DNS (dnsPolicy None, searches
// <ns>.svc.cluster.local svc.cluster.local cluster.local, ndots 5) and reads
// spec.serviceAccountName through an annotation holding the virtual value.
// The host API server accepts every one of these settings.
func TestHostPodReachesTheVirtualAPIServerAndDNS(t *testing.T) {
	network := synccontext.PodNetwork{APIServer: "10.0.0.20:443", DNS: "10.0.0.10"}
	run := clusters.Start(t, syncertest.Options{PodNetwork: network}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, pod(vns, "client", func(p *corev1.Pod) {
		p.Spec.ServiceAccountName = "builder"
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SA", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}}}
	}))
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("client", vns)}, "host pod created", nil)

	env := map[string]corev1.EnvVar{}
	for _, e := range p.Spec.Containers[0].Env {
		env[e.Name] = e
	}
	if env["KUBERNETES_SERVICE_HOST"].Value != "10.0.0.20" || env["KUBERNETES_SERVICE_PORT"].Value != "443" {
		t.Errorf("host container KUBERNETES_SERVICE_HOST=%q PORT=%q, want the virtual API server 10.0.0.20:443", env["KUBERNETES_SERVICE_HOST"].Value, env["KUBERNETES_SERVICE_PORT"].Value)
	}
	if !slices.ContainsFunc(p.Spec.HostAliases, func(a corev1.HostAlias) bool {
		return a.IP == "10.0.0.20" && slices.Contains(a.Hostnames, "kubernetes.default.svc")
	}) {
		t.Errorf("host aliases %v, want kubernetes.default.svc -> 10.0.0.20", p.Spec.HostAliases)
	}
	if p.Spec.DNSPolicy != corev1.DNSNone {
		t.Errorf("host dnsPolicy %s, want None", p.Spec.DNSPolicy)
	}
	wantDNS := &corev1.PodDNSConfig{
		Nameservers: []string{"10.0.0.10"},
		Searches:    []string{vns + ".svc.cluster.local", "svc.cluster.local", "cluster.local"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
	}
	if diff := cmp.Diff(wantDNS, p.Spec.DNSConfig); diff != "" {
		t.Errorf("host dnsConfig (-want +got):\n%s", diff)
	}
	sa := env["SA"].ValueFrom.FieldRef.FieldPath
	key, ok := strings.CutPrefix(sa, "metadata.annotations['")
	if !ok || p.Annotations[strings.TrimSuffix(key, "']")] != "builder" || p.Spec.ServiceAccountName == "builder" {
		t.Errorf("SA reads %s on the host (service account %q there), want the virtual value builder through an annotation", sa, p.Spec.ServiceAccountName)
	}
}

// Without a DNS address the host pod keeps the tenant's dnsPolicy (and so
// resolves with the host's cluster DNS), and no KUBERNETES_* variable is set.
func TestHostPodKeepsHostDNSWhenNoneIsConfigured(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, pod(vns, "plain", nil))
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("plain", vns)}, "host pod created", nil)
	if p.Spec.DNSPolicy != corev1.DNSClusterFirst || p.Spec.DNSConfig != nil || len(p.Spec.HostAliases) != 0 || len(p.Spec.Containers[0].Env) != 0 {
		t.Errorf("host pod dnsPolicy %s dnsConfig %v aliases %v env %v; want the defaults", p.Spec.DNSPolicy, p.Spec.DNSConfig, p.Spec.HostAliases, p.Spec.Containers[0].Env)
	}
}

// A RuntimeClass is a host object that picks the runtime (and may add node
// selectors and tolerations): refused by default with an event naming the
// --allow value, passed with runtime-class.
func TestRuntimeClassIsRefusedUnlessAllowed(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	// Both API servers admit a pod only if its RuntimeClass exists there.
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "unsandboxed-" + vns}, Handler: "runc"}
	for _, c := range []client.Client{clusters.Virtual.Client, clusters.Host.Client} {
		create(t, c, rc.DeepCopy())
		t.Cleanup(func() { _ = c.Delete(context.Background(), rc.DeepCopy()) })
	}
	create(t, clusters.Virtual.Client, pod(vns, "sandboxed", func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To(rc.Name) }))
	msg := waitRefused(t, vns, "sandboxed")
	if !strings.Contains(msg, "spec.runtimeClassName") || !strings.Contains(msg, "--allow="+string(synccontext.AllowRuntimeClass)) {
		t.Errorf("event %q, want it to name spec.runtimeClassName and --allow=runtime-class", msg)
	}
	// The refusal is final until the pod or the policy changes.
	if err := clusters.Host.Client.Get(context.Background(), types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("sandboxed", vns)}, &corev1.Pod{}); err == nil {
		t.Error("pod with a runtimeClassName reached the host")
	}

	allowed := clusters.Start(t, syncertest.Options{Policy: synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowRuntimeClass}}}, builtins("pods"))
	vns2 := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, pod(vns2, "sandboxed", func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To(rc.Name) }))
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: allowed.TargetNamespace, Name: hostName("sandboxed", vns2)}, "allowed pod reaches the host", nil)
	if p.Spec.RuntimeClassName == nil || *p.Spec.RuntimeClassName != rc.Name {
		t.Errorf("host runtimeClassName %v, want %s", p.Spec.RuntimeClassName, rc.Name)
	}
}
