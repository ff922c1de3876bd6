package resources_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/endpointslices"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/services"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// waitEvent waits for an event with reason on the virtual object name in
// vns and returns it.
func waitEvent(t *testing.T, vns, name, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	testenv.WaitFor(t, waitTimeout, reason+" event on virtual "+name, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := clusters.Virtual.Client.List(ctx, events, client.InNamespace(vns)); err != nil {
			return false, nil
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == name && e.Reason == reason {
				found = e
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// waitClusterIP waits until the virtual Service key has the cluster IPs of
// its host copy pNN, and returns both.
func waitClusterIP(t *testing.T, key, pNN types.NamespacedName) (v, p *corev1.Service) {
	t.Helper()
	p = &corev1.Service{}
	waitHost(t, p, pNN, "host Service created", nil)
	v = &corev1.Service{}
	waitVirtual(t, v, key, "virtual Service has the host's cluster IP "+p.Spec.ClusterIP, func(s *corev1.Service) bool {
		return s.Spec.ClusterIP == p.Spec.ClusterIP && slices.Equal(s.Spec.ClusterIPs, p.Spec.ClusterIPs)
	})
	return v, p
}

// createApart creates the virtual Service v with an address its host copy
// cannot get: one a host Service outside the syncer holds. (If the virtual
// cluster uses that address already, v gets whatever it allocates.)
func createApart(t *testing.T, run *syncertest.Run, v *corev1.Service) {
	t.Helper()
	taken := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: "taken-" + v.Name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	create(t, clusters.Host.Client, taken)
	v.Spec.ClusterIP = taken.Spec.ClusterIP
	if err := clusters.Virtual.Client.Create(context.Background(), v); err != nil {
		if !apierrors.IsInvalid(err) {
			t.Fatalf("create virtual Service %s: %v", v.Name, err)
		}
		v.Spec.ClusterIP = ""
		create(t, clusters.Virtual.Client, v)
		return
	}
	deleteLater(t, clusters.Virtual.Client, v)
}

// vcluster's services syncer (pkg/controllers/resources/services/syncer.go,
// Sync) recreates the virtual Service when its spec.clusterIP differs from
// the host Service's, since the field is immutable; its translate.go leaves
// the host to allocate, and keeps headless Services headless.
func TestVirtualServiceGetsTheHostClusterIP(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("services"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web", Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	createApart(t, run, v)
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432}}},
	}
	create(t, clusters.Virtual.Client, headless)
	oldUID, oldIP := v.UID, v.Spec.ClusterIP

	got, p := waitClusterIP(t, client.ObjectKeyFromObject(v), types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("web", vns)})
	if p.Spec.ClusterIP == oldIP {
		t.Fatalf("host copy got the virtual Service's own address %s; the test needs them to differ", oldIP)
	}
	// The virtual API server accepts the host's address: both envtest API
	// servers serve the same service CIDR (10.0.0.0/24), as vcluster
	// configures its virtual API server with the host's.
	if got.UID == oldUID {
		t.Errorf("virtual Service kept UID %s; adopting an address means a new object", oldUID)
	}
	if diff := cmp.Diff(v.Labels, got.Labels); diff != "" {
		t.Errorf("labels after recreation (-want +got):\n%s", diff)
	}
	if got.Annotations["team"] != "a" || !cmp.Equal(got.Spec.Selector, v.Spec.Selector) || !cmp.Equal(got.Spec.Ports, v.Spec.Ports) {
		t.Errorf("recreated Service annotations %v selector %v ports %v, want those of the original", got.Annotations, got.Spec.Selector, got.Spec.Ports)
	}
	e := waitEvent(t, vns, "web", services.ReasonClusterIPAdopted)
	if e.Type != corev1.EventTypeNormal || !strings.Contains(e.Message, p.Spec.ClusterIP) || !strings.Contains(e.Message, string(oldUID)) {
		t.Errorf("event %s %q, want Normal naming %s and the old UID %s", e.Type, e.Message, p.Spec.ClusterIP, oldUID)
	}

	// Later edits reach the host as before.
	got.Spec.Ports[0].Port = 81
	if err := clusters.Virtual.Client.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, client.ObjectKeyFromObject(p), "port change flows down", func(s *corev1.Service) bool { return s.Spec.Ports[0].Port == 81 })

	// Headless stays headless on both sides, and is never recreated.
	pHeadless := &corev1.Service{}
	waitHost(t, pHeadless, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("db", vns)}, "host headless Service created", nil)
	barrier := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "after"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	create(t, clusters.Virtual.Client, barrier)
	waitClusterIP(t, client.ObjectKeyFromObject(barrier), types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("after", vns)})
	vHeadless := &corev1.Service{}
	if err := clusters.Virtual.Client.Get(ctx, client.ObjectKeyFromObject(headless), vHeadless); err != nil {
		t.Fatal(err)
	}
	if pHeadless.Spec.ClusterIP != corev1.ClusterIPNone || vHeadless.Spec.ClusterIP != corev1.ClusterIPNone || vHeadless.UID != headless.UID {
		t.Errorf("headless: host %q, virtual %q (UID %s, was %s); want None on both and the same object", pHeadless.Spec.ClusterIP, vHeadless.Spec.ClusterIP, vHeadless.UID, headless.UID)
	}
}

// A virtual API server that refuses the host's address (a different service
// CIDR would, as would the admission policy here) keeps the virtual Service
// as it is and says so. vcluster's Sync returns the recreate error instead.
func TestVirtualServiceKeepsItsClusterIPWhenTheVirtualClusterRefusesTheHosts(t *testing.T) {
	ctx := context.Background()
	vns := clusters.Virtual.Namespace(t)
	const label = "podkit.dev.test/refuse-cluster-ip"
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "refuse-cluster-ip-" + vns},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
				Operations: []admissionv1.OperationType{admissionv1.Create},
				Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"services"}},
			}}}},
			Validations: []admissionv1.Validation{{Expression: "!object.metadata.name.startsWith('podkit-clusterip-probe-')", Message: "test policy refuses host cluster IPs"}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": vns}},
				ObjectSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{label: "true"}},
			},
		},
	}
	for _, obj := range []client.Object{policy, binding} {
		create(t, clusters.Virtual.Client, obj)
		t.Cleanup(func() { _ = clusters.Virtual.Client.Delete(context.Background(), obj) })
	}
	// The policy takes effect asynchronously: wait until it refuses a probe.
	testenv.WaitFor(t, waitTimeout, "admission policy in effect", func(ctx context.Context) (bool, error) {
		probe := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: vns, GenerateName: "podkit-clusterip-probe-", Labels: map[string]string{label: "true"}},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}
		err := clusters.Virtual.Client.Create(ctx, probe, client.DryRunAll)
		return apierrors.IsInvalid(err) || apierrors.IsForbidden(err), nil
	})

	run := clusters.Start(t, syncertest.Options{}, builtins("services"))
	v := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "pinned", Labels: map[string]string{label: "true"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
	createApart(t, run, v)
	p := &corev1.Service{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("pinned", vns)}, "host Service created", nil)
	if p.Spec.ClusterIP == v.Spec.ClusterIP {
		t.Fatalf("host and virtual got the same address %s by chance; nothing to refuse", p.Spec.ClusterIP)
	}
	e := waitEvent(t, vns, "pinned", services.ReasonClusterIPNotAdopted)
	if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, p.Spec.ClusterIP) || !strings.Contains(e.Message, "test policy refuses") {
		t.Errorf("event %s %q, want a Warning naming %s and the virtual API server's reason", e.Type, e.Message, p.Spec.ClusterIP)
	}
	got := &corev1.Service{}
	if err := clusters.Virtual.Client.Get(ctx, client.ObjectKeyFromObject(v), got); err != nil {
		t.Fatalf("virtual Service after a refused adoption: %v", err)
	}
	if got.UID != v.UID || got.Spec.ClusterIP != v.Spec.ClusterIP {
		t.Errorf("virtual Service UID %s IP %s, want it untouched (UID %s, IP %s)", got.UID, got.Spec.ClusterIP, v.UID, v.Spec.ClusterIP)
	}
}

// vcluster's endpointslices syncer (pkg/controllers/resources/endpointslices/
// syncer.go, ReconcileStart) copies the slices of Services without a
// selector to the host, and leaves those of Services with a selector to the
// clusters' own controllers; it copies nothing up. Here the copy also needs
// the service-endpoints permission.
func TestSelectorlessServiceEndpointSlicesReachTheHostOnlyWhenAllowed(t *testing.T) {
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	for _, svc := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "ext"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}},
	} {
		create(t, clusters.Virtual.Client, svc)
	}
	slice := func(name, svc string) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: vns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{
				Addresses: []string{"10.1.2.3"},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: vns, Name: "app", UID: "virtual-uid"},
			}},
			Ports: []discoveryv1.EndpointPort{{Name: new(""), Port: new(int32(8080)), Protocol: new(corev1.ProtocolTCP)}},
		}
	}
	vExt := slice("ext-1", "ext")
	create(t, clusters.Virtual.Client, vExt)
	create(t, clusters.Virtual.Client, slice("web-1", "web"))

	// By default the tenant's addresses stay in the virtual cluster.
	run := clusters.Start(t, syncertest.Options{}, builtins("services", "endpointslices"))
	if msg := waitRefused(t, vns, "ext-1"); !strings.Contains(msg, "--allow=service-endpoints") {
		t.Errorf("event message %q does not name the permission", msg)
	}
	pExtNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext-1", vns)}
	if err := clusters.Host.Client.Get(ctx, pExtNN, &discoveryv1.EndpointSlice{}); !apierrors.IsNotFound(err) {
		t.Errorf("host slice after the refusal: %v, want not found", err)
	}
	run.Stop(t)

	// Allowed, the slice reaches the host for the host Service, pointing at the host pod.
	allow := synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowServiceEndpoints}}
	run = clusters.Start(t, syncertest.Options{Policy: allow}, builtins("services", "endpointslices"))
	pExtNN.Namespace = run.TargetNamespace
	p := &discoveryv1.EndpointSlice{}
	waitHost(t, p, pExtNN, "host EndpointSlice created", nil)
	if p.Labels[discoveryv1.LabelServiceName] != hostName("ext", vns) || p.Labels[discoveryv1.LabelManagedBy] != endpointslices.ManagedBy {
		t.Errorf("host slice labels %v, want service %s managed by %s", p.Labels, hostName("ext", vns), endpointslices.ManagedBy)
	}
	wantRef := &corev1.ObjectReference{Kind: "Pod", Namespace: run.TargetNamespace, Name: hostName("app", vns)}
	if len(p.Endpoints) != 1 || !cmp.Equal(p.Endpoints[0].Addresses, []string{"10.1.2.3"}) || !cmp.Equal(p.Endpoints[0].TargetRef, wantRef) {
		t.Errorf("host endpoints %+v, want 10.1.2.3 pointing at %+v", p.Endpoints, wantRef)
	}
	// The slice of a Service with a selector is never copied (it has no
	// event to wait for: checked once the other slice is there).
	if err := clusters.Host.Client.Get(ctx, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("web-1", vns)}, &discoveryv1.EndpointSlice{}); !apierrors.IsNotFound(err) {
		t.Errorf("host copy of the slice of a Service with a selector: %v, want not found", err)
	}

	vExt.Endpoints[0].Addresses = []string{"10.1.2.4"}
	if err := clusters.Virtual.Client.Update(ctx, vExt); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pExtNN, "address change flows down", func(s *discoveryv1.EndpointSlice) bool {
		return len(s.Endpoints) == 1 && cmp.Equal(s.Endpoints[0].Addresses, []string{"10.1.2.4"})
	})

	// Once the Service selects pods, its slices are the controllers' again.
	// (Edit it once it has its host address: adopting one recreates it.)
	ext, _ := waitClusterIP(t, types.NamespacedName{Namespace: vns, Name: "ext"}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext", vns)})
	ext.Spec.Selector = map[string]string{"app": "ext"}
	if err := clusters.Virtual.Client.Update(ctx, ext); err != nil {
		t.Fatal(err)
	}
	waitGone(t, clusters.Host.Client, p, "host slice deleted when the Service gets a selector")
}

// A virtual cluster with an EndpointSliceMirroring controller (podkit dev
// vcluster's) turns a tenant's Endpoints into a slice of its own. With the
// endpoints syncer on, those Endpoints reach the host as Endpoints (which
// the host mirrors), so the endpointslices syncer leaves the mirrored slice
// alone rather than give the host the same addresses twice; on its own it
// copies it like any slice. (The mirroring controller is played by the test.)
func TestMirroredSliceTravelsOnceWhenEndpointsAreSynced(t *testing.T) {
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "ext"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
	create(t, clusters.Virtual.Client, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "ext-mirrored", Labels: map[string]string{
			discoveryv1.LabelServiceName: "ext", discoveryv1.LabelManagedBy: endpointslices.ManagedByMirroring,
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}}},
	})
	// A slice the tenant wrote itself: once its host copy is there, the
	// endpointslices syncer has seen the mirrored one too.
	create(t, clusters.Virtual.Client, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: vns, Name: "ext-own", Labels: map[string]string{discoveryv1.LabelServiceName: "ext"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.9"}}},
	})
	create(t, clusters.Virtual.Client, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "ext"},
		Subsets:    []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.1.2.3"}}, Ports: []corev1.EndpointPort{{Port: 80}}}},
	})
	allow := synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowServiceEndpoints}}

	run := clusters.Start(t, syncertest.Options{Policy: allow}, builtins("services", "endpoints", "endpointslices"))
	waitHost(t, &corev1.Endpoints{}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext", vns)}, "host Endpoints created", nil)
	waitHost(t, &discoveryv1.EndpointSlice{}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext-own", vns)}, "the tenant's own slice copied", nil)
	mirroredNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext-mirrored", vns)}
	if err := clusters.Host.Client.Get(context.Background(), mirroredNN, &discoveryv1.EndpointSlice{}); !apierrors.IsNotFound(err) {
		t.Errorf("host copy of the mirrored slice with the endpoints syncer on: %v, want not found", err)
	}
	run.Stop(t)

	run = clusters.Start(t, syncertest.Options{Policy: allow}, builtins("services", "endpointslices"))
	mirroredNN.Namespace = run.TargetNamespace
	waitHost(t, &discoveryv1.EndpointSlice{}, mirroredNN, "mirrored slice copied by endpointslices alone", nil)
}
