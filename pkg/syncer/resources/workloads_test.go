package resources_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/pods"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// waitVirtual waits until the virtual object nn satisfies cond (nil: exists).
func waitVirtual[T client.Object](t *testing.T, obj T, nn types.NamespacedName, what string, cond func(T) bool) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, what, func(ctx context.Context) (bool, error) {
		if err := clusters.Virtual.Client.Get(ctx, nn, obj); err != nil {
			return false, nil
		}
		return cond == nil || cond(obj), nil
	})
}

func TestServiceSpecDownLoadBalancerStatusUp(t *testing.T) {
	exposure := synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowServiceExposure}}
	run := clusters.Start(t, syncertest.Options{Policy: exposure}, builtins("services"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	create(t, clusters.Virtual.Client, v)
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("web", vns)}
	p := &corev1.Service{}
	waitHost(t, p, pNN, "host Service created", nil)
	wantSelector := map[string]string{translator.HostLabelKey("app"): "web", translator.LabelManagedBy: syncertest.VirtualClusterName, translator.LabelNamespace: vns}
	if diff := cmp.Diff(wantSelector, p.Spec.Selector); diff != "" {
		t.Errorf("host selector (-want +got):\n%s", diff)
	}
	// The virtual Service is recreated with the host's address, node ports kept.
	nodePort := v.Spec.Ports[0].NodePort
	if got, _ := waitClusterIP(t, client.ObjectKeyFromObject(v), pNN); got.Spec.Ports[0].NodePort != nodePort {
		t.Errorf("virtual node port %d after recreation, want %d", got.Spec.Ports[0].NodePort, nodePort)
	}

	p.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	if err := clusters.Host.Client.Status().Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitVirtual(t, &corev1.Service{}, client.ObjectKeyFromObject(v), "load-balancer status flows up", func(s *corev1.Service) bool {
		return len(s.Status.LoadBalancer.Ingress) == 1 && s.Status.LoadBalancer.Ingress[0].IP == "203.0.113.7"
	})

	if err := clusters.Virtual.Client.Get(ctx, client.ObjectKeyFromObject(v), v); err != nil {
		t.Fatal(err)
	}
	v.Spec.Ports[0].Port = 81
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "port change flows down", func(s *corev1.Service) bool { return s.Spec.Ports[0].Port == 81 })
}

func TestPodSpecDownStatusUpFakeNodesAndEvents(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("configmaps", "pods", "events"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	create(t, clusters.Virtual.Client, configMap(vns, "cfg", map[string]string{"K": "v"}))
	v := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "app", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: "registry.example/app:1",
			EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
		}}},
	}
	create(t, clusters.Virtual.Client, v)

	// Spec down, references translated, the host schedules.
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("app", vns)}
	p := &corev1.Pod{}
	waitHost(t, p, pNN, "host pod created", nil)
	if got := p.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != hostName("cfg", vns) {
		t.Errorf("host envFrom ConfigMap = %q, want %q", got, hostName("cfg", vns))
	}
	if p.Spec.NodeName != "" || p.Spec.Hostname != "app" {
		t.Errorf("host pod nodeName %q hostname %q, want unscheduled with hostname app", p.Spec.NodeName, p.Spec.Hostname)
	}

	// Act as the host scheduler and kubelet: bind, then report status.
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}, Target: corev1.ObjectReference{Kind: "Node", Name: "node-a"}}
	if err := clusters.Host.Client.SubResource("binding").Create(ctx, p, binding); err != nil {
		t.Fatalf("bind host pod: %v", err)
	}
	waitHost(t, p, pNN, "host pod bound", func(p *corev1.Pod) bool { return p.Spec.NodeName == "node-a" })
	now := metav1.Now()
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: "10.1.2.3", PodIPs: []corev1.PodIP{{IP: "10.1.2.3"}}, HostIP: "192.0.2.1", StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
	}
	if err := clusters.Host.Client.Status().Update(ctx, p); err != nil {
		t.Fatalf("update host pod status: %v", err)
	}
	vPod := &corev1.Pod{}
	waitVirtual(t, vPod, client.ObjectKeyFromObject(v), "status, pod IP and node name flow up", func(v *corev1.Pod) bool {
		return v.Spec.NodeName == "node-a" && v.Status.Phase == corev1.PodRunning && v.Status.PodIP == "10.1.2.3" &&
			len(v.Status.Conditions) == 1 && v.Status.Conditions[0].Type == corev1.PodReady
	})
	node := &corev1.Node{}
	waitVirtual(t, node, types.NamespacedName{Name: "node-a"}, "fake node Ready in the virtual cluster", func(n *corev1.Node) bool {
		return n.Labels[pods.LabelFakeNode] == "true" && len(n.Status.Conditions) > 0 && n.Status.Conditions[0].Status == corev1.ConditionTrue
	})

	// A host event about the pod shows up next to the virtual pod.
	hostEvent := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: p.Name + ".pulled"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		Reason:         "Pulled", Message: "image pulled", Type: corev1.EventTypeNormal, Count: 1,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "kubelet"},
	}
	create(t, clusters.Host.Client, hostEvent)
	vEvent := &corev1.Event{}
	waitVirtual(t, vEvent, types.NamespacedName{Namespace: vns, Name: hostEvent.Name}, "host event copied up", nil)
	if vEvent.InvolvedObject.Name != "app" || vEvent.InvolvedObject.Namespace != vns || vEvent.InvolvedObject.UID != vPod.UID {
		t.Errorf("virtual event involves %+v, want the virtual pod", vEvent.InvolvedObject)
	}

	// Image changes flow down.
	vPod.Spec.Containers[0].Image = "registry.example/app:2"
	if err := clusters.Virtual.Client.Update(ctx, vPod); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "image change flows down", func(p *corev1.Pod) bool { return p.Spec.Containers[0].Image == "registry.example/app:2" })

	// Deleting the virtual pod terminates the host pod; once the host
	// "kubelet" finishes, the virtual pod and its fake node go away.
	if err := clusters.Virtual.Client.Delete(ctx, vPod); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "host pod terminating", func(p *corev1.Pod) bool { return p.DeletionTimestamp != nil })
	if err := clusters.Host.Client.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	waitGone(t, clusters.Virtual.Client, vPod, "virtual pod deleted")
	waitGone(t, clusters.Virtual.Client, node, "fake node deleted")
}

func TestGenericSyncerCopiesAnyKindByGVK(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("gvk:PodTemplate.v1"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := &corev1.PodTemplate{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "tmpl"},
		Template:   corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:1"}}}},
	}
	create(t, clusters.Virtual.Client, v)
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("tmpl", vns)}
	waitHost(t, &corev1.PodTemplate{}, pNN, "host PodTemplate created", func(p *corev1.PodTemplate) bool {
		return p.Template.Spec.Containers[0].Image == "img:1"
	})
	v.Template.Spec.Containers[0].Image = "img:2"
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitHost(t, &corev1.PodTemplate{}, pNN, "host PodTemplate updated", func(p *corev1.PodTemplate) bool {
		return p.Template.Spec.Containers[0].Image == "img:2"
	})
	if err := clusters.Virtual.Client.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitGone(t, clusters.Host.Client, &corev1.PodTemplate{ObjectMeta: metav1.ObjectMeta{Namespace: pNN.Namespace, Name: pNN.Name}}, "host PodTemplate deleted")
}
