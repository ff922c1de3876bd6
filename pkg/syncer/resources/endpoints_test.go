package resources_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/services"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// virtualSlices returns the EndpointSlices of the virtual Service svc that
// the syncer copied from the host.
func virtualSlices(ctx context.Context, vns, svc string) ([]discoveryv1.EndpointSlice, error) {
	list := &discoveryv1.EndpointSliceList{}
	err := clusters.Virtual.Client.List(ctx, list, client.InNamespace(vns),
		client.MatchingLabels{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: services.ManagedByHost})
	return list.Items, err
}

// In vcluster a virtual pod reaches a virtual Service at the address the
// host routes: pkg/controllers/resources/services/syncer.go creates the host
// Service first and recreates the virtual one with its spec.clusterIP. Its
// endpoints name virtual pods (pkg/controllers/resources/endpoints/
// translate.go maps every Pod targetRef between host and virtual names).
// podkit copies them up from the host's EndpointSlices, so they exist even
// where the virtual cluster runs no EndpointSlice controller (here: a bare
// API server; the host's controller is played by the test).
func TestServiceResolvesToTheHostClusterIPAndItsEndpointsNameVirtualPods(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("services", "pods"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()

	vPod := pod(vns, "web-0", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} })
	create(t, clusters.Virtual.Client, vPod)
	pPod := &corev1.Pod{}
	waitHost(t, pPod, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("web-0", vns)}, "host pod created", nil)
	// A host pod outside the syncer in the same namespace: its endpoints
	// must never reach the tenant.
	foreign := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: "host-only"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}},
	}
	create(t, clusters.Host.Client, foreign)

	vSvc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	createApart(t, run, vSvc)
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("web", vns)}
	got, pSvc := waitClusterIP(t, client.ObjectKeyFromObject(vSvc), pNN)
	if got.Spec.ClusterIP == "" || got.Spec.ClusterIP != pSvc.Spec.ClusterIP {
		t.Fatalf("virtual Service resolves to %q, host Service to %q; want the same address", got.Spec.ClusterIP, pSvc.Spec.ClusterIP)
	}

	// The host's EndpointSlice controller would write this for the host Service.
	pSlice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: run.TargetNamespace, Name: pNN.Name + "-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: pNN.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node-1"),
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: run.TargetNamespace, Name: pPod.Name, UID: pPod.UID}},
			{Addresses: []string{"10.244.0.9"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: run.TargetNamespace, Name: foreign.Name, UID: foreign.UID}},
			{Addresses: []string{"192.0.2.1"}}, // no pod at all
		},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	create(t, clusters.Host.Client, pSlice)

	var vSlice discoveryv1.EndpointSlice
	testenv.WaitFor(t, waitTimeout, "virtual EndpointSlice copied from the host", func(ctx context.Context) (bool, error) {
		items, err := virtualSlices(ctx, vns, "web")
		if err != nil || len(items) != 1 {
			return false, nil
		}
		vSlice = items[0]
		return true, nil
	})
	wantEndpoints := []discoveryv1.Endpoint{{
		Addresses: []string{"10.244.0.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node-1"),
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: vns, Name: "web-0", UID: vPod.UID},
	}}
	if diff := cmp.Diff(wantEndpoints, vSlice.Endpoints); diff != "" {
		t.Errorf("virtual endpoints (-want +got); only the tenant's pod, by its virtual name:\n%s", diff)
	}
	if diff := cmp.Diff(pSlice.Ports, vSlice.Ports); diff != "" {
		t.Errorf("virtual ports (-host +virtual):\n%s", diff)
	}
	if vSlice.AddressType != discoveryv1.AddressTypeIPv4 || vSlice.Annotations[services.AnnotationHostSlice] != pSlice.Name {
		t.Errorf("address type %s, host slice annotation %q; want IPv4 and %s", vSlice.AddressType, vSlice.Annotations[services.AnnotationHostSlice], pSlice.Name)
	}
	owner := metav1.GetControllerOfNoCopy(&vSlice)
	if len(vSlice.OwnerReferences) != 1 || vSlice.OwnerReferences[0].UID != got.UID || owner != nil {
		t.Errorf("owner references %v, want the virtual Service %s (not as controller)", vSlice.OwnerReferences, got.UID)
	}

	// A new address on the host reaches the virtual slice.
	pSlice.Endpoints[0].Addresses = []string{"10.244.0.8"}
	if err := clusters.Host.Client.Update(ctx, pSlice); err != nil {
		t.Fatalf("update host EndpointSlice: %v", err)
	}
	testenv.WaitFor(t, waitTimeout, "virtual EndpointSlice follows the host's new address", func(ctx context.Context) (bool, error) {
		items, err := virtualSlices(ctx, vns, "web")
		return err == nil && len(items) == 1 && len(items[0].Endpoints) == 1 && slices.Equal(items[0].Endpoints[0].Addresses, []string{"10.244.0.8"}), nil
	})

	// The tenant cannot keep a copy the host no longer has.
	if err := clusters.Host.Client.Delete(ctx, pSlice); err != nil {
		t.Fatalf("delete host EndpointSlice: %v", err)
	}
	testenv.WaitFor(t, waitTimeout, "virtual EndpointSlice deleted with the host's", func(ctx context.Context) (bool, error) {
		items, err := virtualSlices(ctx, vns, "web")
		return err == nil && len(items) == 0, nil
	})
}

// vcluster's endpoints syncer (pkg/controllers/resources/endpoints/
// syncer.go) copies v1 Endpoints down, virtual to host, and only those of
// Services without a selector (ReconcileStart skips the others and deletes
// a host copy it made before the Service got a selector); translate.go
// points Pod targetRefs at the host pods. Nothing flows up: the Endpoints
// of a Service with a selector are each cluster's endpoints controller's.
// Here the copy also needs the service-endpoints permission, as the
// EndpointSlice copy does.
func TestSelectorlessServiceEndpointsReachTheHostOnlyWhenAllowed(t *testing.T) {
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "ext"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}}
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	create(t, clusters.Virtual.Client, ext)
	create(t, clusters.Virtual.Client, web)
	endpoints := func(ns, name, ip, pod string) *corev1.Endpoints {
		return &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Subsets: []corev1.EndpointSubset{{
				Addresses: []corev1.EndpointAddress{{IP: ip, TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod, UID: "some-uid"}}},
				Ports:     []corev1.EndpointPort{{Port: 8080, Protocol: corev1.ProtocolTCP}},
			}},
		}
	}
	vExt := endpoints(vns, "ext", "10.1.2.3", "app")
	create(t, clusters.Virtual.Client, vExt)
	// What the virtual cluster's endpoints controller writes for a Service
	// with a selector.
	create(t, clusters.Virtual.Client, endpoints(vns, "web", "10.244.0.5", "web-0"))

	// By default the tenant's addresses stay in the virtual cluster.
	run := clusters.Start(t, syncertest.Options{}, builtins("services", "endpoints"))
	if msg := waitRefused(t, vns, "ext"); !strings.Contains(msg, "--allow=service-endpoints") {
		t.Errorf("event message %q does not name the permission", msg)
	}
	pExtNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext", vns)}
	if err := clusters.Host.Client.Get(ctx, pExtNN, &corev1.Endpoints{}); !apierrors.IsNotFound(err) {
		t.Errorf("host Endpoints after the refusal: %v, want not found", err)
	}
	run.Stop(t)

	allow := synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowServiceEndpoints}}
	run = clusters.Start(t, syncertest.Options{Policy: allow}, builtins("services", "endpoints"))
	// What the host's endpoints controller writes for the host copy of web.
	pWeb := endpoints(run.TargetNamespace, hostName("web", vns), "10.244.0.5", hostName("web-0", vns))
	create(t, clusters.Host.Client, pWeb)

	// Allowed, the Endpoints reach the host under the host Service's name,
	// pointing at the host pod.
	pExtNN.Namespace = run.TargetNamespace
	p := &corev1.Endpoints{}
	waitHost(t, p, pExtNN, "host Endpoints created", nil)
	want := []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: "10.1.2.3", TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: run.TargetNamespace, Name: hostName("app", vns)}}},
		Ports:     []corev1.EndpointPort{{Port: 8080, Protocol: corev1.ProtocolTCP}},
	}}
	if diff := cmp.Diff(want, p.Subsets); diff != "" {
		t.Errorf("host subsets (-want +got):\n%s", diff)
	}

	vExt.Subsets[0].Addresses[0].IP = "10.1.2.4"
	if err := clusters.Virtual.Client.Update(ctx, vExt); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pExtNN, "address change flows down", func(e *corev1.Endpoints) bool {
		return len(e.Subsets) == 1 && len(e.Subsets[0].Addresses) == 1 && e.Subsets[0].Addresses[0].IP == "10.1.2.4"
	})

	// Once the Service selects pods, its Endpoints are the host
	// controller's again. (Edit it once it has its host address: adopting
	// one recreates it.)
	vExtSvc, _ := waitClusterIP(t, client.ObjectKeyFromObject(ext), types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("ext", vns)})
	vExtSvc.Spec.Selector = map[string]string{"app": "ext"}
	if err := clusters.Virtual.Client.Update(ctx, vExtSvc); err != nil {
		t.Fatal(err)
	}
	waitGone(t, clusters.Host.Client, p, "host Endpoints deleted when the Service gets a selector")

	// The host controller's Endpoints of a Service with a selector were
	// neither touched nor reported as a name taken from the tenant.
	got := &corev1.Endpoints{}
	if err := clusters.Host.Client.Get(ctx, client.ObjectKeyFromObject(pWeb), got); err != nil || !cmp.Equal(got.Subsets, pWeb.Subsets) {
		t.Errorf("host Endpoints of web: %v, %+v; want untouched %+v", err, got.Subsets, pWeb.Subsets)
	}
	events := &corev1.EventList{}
	if err := clusters.Virtual.Client.List(ctx, events, client.InNamespace(vns)); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		if e.InvolvedObject.Name == "web" && e.Reason == syncer.ReasonHostNameTaken {
			t.Errorf("event %s on web: %s", e.Reason, e.Message)
		}
	}
}
