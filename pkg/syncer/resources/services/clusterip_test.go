package services

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cases follow vcluster's services syncer (pkg/controllers/resources/
// services/syncer.go): recreate when the cluster IP differs; translate.go
// keeps headless Services headless. The ClusterIPs list is compared too.
func TestNeedsClusterIPOnlyWhenBothHaveDifferentAddresses(t *testing.T) {
	svc := func(ns, name string, typ corev1.ServiceType, ips ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Type: typ, ClusterIPs: ips}}
		if len(ips) > 0 {
			s.Spec.ClusterIP = ips[0]
		}
		return s
	}
	terminating := svc("ns", "web", corev1.ServiceTypeClusterIP, "10.0.0.5")
	terminating.DeletionTimestamp = &metav1.Time{}
	tests := []struct {
		name   string
		v, p   *corev1.Service
		expect bool
	}{
		{"different address", svc("ns", "web", corev1.ServiceTypeClusterIP, "10.0.0.5"), svc("t", "h", corev1.ServiceTypeClusterIP, "10.0.0.9"), true},
		{"same address", svc("ns", "web", corev1.ServiceTypeClusterIP, "10.0.0.9"), svc("t", "h", corev1.ServiceTypeClusterIP, "10.0.0.9"), false},
		{"second family differs", svc("ns", "web", corev1.ServiceTypeClusterIP, "10.0.0.9", "fd00::5"), svc("t", "h", corev1.ServiceTypeClusterIP, "10.0.0.9", "fd00::9"), true},
		{"LoadBalancer downgraded on the host", svc("ns", "web", corev1.ServiceTypeLoadBalancer, "10.0.0.5"), svc("t", "h", corev1.ServiceTypeClusterIP, "10.0.0.9"), true},
		{"headless", svc("ns", "db", corev1.ServiceTypeClusterIP, corev1.ClusterIPNone), svc("t", "h", corev1.ServiceTypeClusterIP, corev1.ClusterIPNone), false},
		{"headless on the host only", svc("ns", "db", corev1.ServiceTypeClusterIP, "10.0.0.5"), svc("t", "h", corev1.ServiceTypeClusterIP, corev1.ClusterIPNone), false},
		{"ExternalName", svc("ns", "ext", corev1.ServiceTypeExternalName), svc("t", "h", corev1.ServiceTypeExternalName), false},
		{"host has no address yet", svc("ns", "web", corev1.ServiceTypeClusterIP, "10.0.0.5"), svc("t", "h", corev1.ServiceTypeClusterIP), false},
		{"virtual API server's own Service", svc("default", "kubernetes", corev1.ServiceTypeClusterIP, "10.0.0.1"), svc("t", "h", corev1.ServiceTypeClusterIP, "10.0.0.9"), false},
		{"terminating", terminating, svc("t", "h", corev1.ServiceTypeClusterIP, "10.0.0.9"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsClusterIP(tt.v, tt.p); got != tt.expect {
				t.Errorf("needsClusterIP = %v, want %v", got, tt.expect)
			}
		})
	}
}

func TestWithClusterIPsKeepsTheVirtualServiceButItsAddresses(t *testing.T) {
	v := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "old", ResourceVersion: "7", Labels: map[string]string{"app": "web"}},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ClusterIP: "10.0.0.5", ClusterIPs: []string{"10.0.0.5"},
			Ports: []corev1.ServicePort{{Port: 80, NodePort: 30080}},
		},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}}}},
	}
	p := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.9", ClusterIPs: []string{"10.0.0.9"}, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}}}
	next := withClusterIPs(v, p)
	if next.UID != "" || next.ResourceVersion != "" || len(next.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("server-set fields carried over: UID %q resourceVersion %q status %v", next.UID, next.ResourceVersion, next.Status)
	}
	if next.Spec.ClusterIP != "10.0.0.9" || len(next.Spec.ClusterIPs) != 1 || next.Spec.ClusterIPs[0] != "10.0.0.9" || next.Spec.IPFamilies[0] != corev1.IPv4Protocol {
		t.Errorf("addresses %q %v %v, want the host's", next.Spec.ClusterIP, next.Spec.ClusterIPs, next.Spec.IPFamilies)
	}
	if next.Spec.Ports[0].NodePort != 30080 || next.Labels["app"] != "web" || next.Spec.Type != corev1.ServiceTypeNodePort {
		t.Errorf("spec or labels changed: %+v %v", next.Spec, next.Labels)
	}
	next.Spec.ClusterIPs[0] = "changed"
	if p.Spec.ClusterIPs[0] != "10.0.0.9" {
		t.Error("the host Service's list is shared with the new virtual Service")
	}
}
