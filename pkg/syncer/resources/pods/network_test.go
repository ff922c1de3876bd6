package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// vcluster's translateDNSConfig (pkg/controllers/resources/pods/translate/
// translator.go) rewrites ClusterFirst pods without the host network and
// ClusterFirstWithHostNet pods to dnsPolicy None with its DNS Service's IP,
// searches <ns>.svc.<domain> svc.<domain> <domain> and ndots 5, keeping the
// pod's own nameservers and searches; Default and None pods are left alone,
// and nothing changes without a DNS address.
func TestVirtualDNSOnlyForClusterFirstPods(t *testing.T) {
	n := synccontext.PodNetwork{DNS: "10.0.0.10"}
	virtual := &corev1.PodDNSConfig{
		Nameservers: []string{"10.0.0.10"},
		Searches:    []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
	}
	tests := []struct {
		name       string
		net        synccontext.PodNetwork
		policy     corev1.DNSPolicy
		hostNet    bool
		own        *corev1.PodDNSConfig
		wantPolicy corev1.DNSPolicy
		wantConfig *corev1.PodDNSConfig
	}{
		{"ClusterFirst", n, corev1.DNSClusterFirst, false, nil, corev1.DNSNone, virtual},
		{"ClusterFirst, no DNS configured", synccontext.PodNetwork{}, corev1.DNSClusterFirst, false, nil, corev1.DNSClusterFirst, nil},
		{"ClusterFirstWithHostNet", n, corev1.DNSClusterFirstWithHostNet, true, nil, corev1.DNSNone, virtual},
		{"ClusterFirst on the host network falls back to Default", n, corev1.DNSClusterFirst, true, nil, corev1.DNSClusterFirst, nil},
		{"Default", n, corev1.DNSDefault, false, nil, corev1.DNSDefault, nil},
		{"None keeps the tenant's resolver", n, corev1.DNSNone, false, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}, corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}},
		{"the tenant's additions follow", n, corev1.DNSClusterFirst, false,
			&corev1.PodDNSConfig{Nameservers: []string{"192.0.2.53"}, Searches: []string{"corp.example"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}}},
			corev1.DNSNone, &corev1.PodDNSConfig{
				Nameservers: []string{"10.0.0.10", "192.0.2.53"},
				Searches:    []string{"team.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"},
				Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}, {Name: "edns0"}},
			}},
		{"another cluster domain", synccontext.PodNetwork{DNS: "10.0.0.10", ClusterDomain: "vc.example"}, corev1.DNSClusterFirst, false, nil, corev1.DNSNone, &corev1.PodDNSConfig{
			Nameservers: []string{"10.0.0.10"},
			Searches:    []string{"team.svc.vc.example", "svc.vc.example", "vc.example"},
			Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("5")}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "p"}, Spec: corev1.PodSpec{
				DNSPolicy: tt.policy, HostNetwork: tt.hostNet, DNSConfig: tt.own,
				Containers: []corev1.Container{{Name: "c"}},
			}}
			p := v.DeepCopy()
			translateNetwork(p, v, tt.net)
			if p.Spec.DNSPolicy != tt.wantPolicy {
				t.Errorf("dnsPolicy %s, want %s", p.Spec.DNSPolicy, tt.wantPolicy)
			}
			if diff := cmp.Diff(tt.wantConfig, p.Spec.DNSConfig); diff != "" {
				t.Errorf("dnsConfig (-want +got):\n%s", diff)
			}
		})
	}
}

// vcluster's translateServicesToEnvironmentVariables and translateContainerEnv
// prepend the KUBERNETES_* variables of its Service to every container's env
// unless the container sets the name itself, and Translate adds the host
// aliases kubernetes, kubernetes.default and kubernetes.default.svc.
func TestAPIServerVariablesPointAtTheVirtualAPIServer(t *testing.T) {
	v := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "p"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init"}},
		Containers:     []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_PORT", Value: "6443"}, {Name: "A", Value: "$(KUBERNETES_SERVICE_HOST)"}}}},
	}}
	p := v.DeepCopy()
	translateNetwork(p, v, synccontext.PodNetwork{APIServer: "10.0.0.20:443"})
	env := map[string]string{}
	for i, e := range p.Spec.Containers[0].Env {
		env[e.Name] = e.Value
		if e.Name == "A" && i != len(p.Spec.Containers[0].Env)-1 {
			t.Errorf("the container's own variables must come last (they may refer to the injected ones): %v", p.Spec.Containers[0].Env)
		}
	}
	want := map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.0.0.20", "KUBERNETES_SERVICE_PORT": "6443", "KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT": "tcp://10.0.0.20:443", "KUBERNETES_PORT_443_TCP": "tcp://10.0.0.20:443",
		"KUBERNETES_PORT_443_TCP_ADDR": "10.0.0.20", "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
		"A": "$(KUBERNETES_SERVICE_HOST)",
	}
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("container env (-want +got):\n%s", diff)
	}
	if len(p.Spec.InitContainers[0].Env) != 8 {
		t.Errorf("init container env %v, want the 8 KUBERNETES_* variables", p.Spec.InitContainers[0].Env)
	}
	wantAlias := []corev1.HostAlias{{IP: "10.0.0.20", Hostnames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc"}}}
	if diff := cmp.Diff(wantAlias, p.Spec.HostAliases); diff != "" {
		t.Errorf("host aliases (-want +got):\n%s", diff)
	}

	unset := v.DeepCopy()
	translateNetwork(unset, v, synccontext.PodNetwork{})
	if diff := cmp.Diff(v.Spec, unset.Spec); diff != "" {
		t.Errorf("without an API server address the pod must not change (-want +got):\n%s", diff)
	}
}
