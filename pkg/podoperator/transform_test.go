package podoperator_test

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podkit-dev/podkit/pkg/podoperator"
)

func templatePod(name, image string) *corev1.Pod {
	grace := int64(30)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: types.UID("uid-" + name),
			Labels:      map[string]string{"app": "web", "pod-template-hash": "abc"},
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{…}", "team": "a"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply,
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "rs-uid"}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "web", Image: image,
				Env:       []corev1.EnvVar{{Name: "A", Value: "1"}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
			}},
			Tolerations:                   []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: &grace,
			NodeName:                      "node-" + name,
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
}

func TestDefaultTransformStripsAndSharesEqualPartsWithoutChangingContent(t *testing.T) {
	tr := podoperator.NewDefaultTransform()
	a, b, other := templatePod("a", "web:1"), templatePod("b", "web:1"), templatePod("c", "web:2")
	want := map[*corev1.Pod]*corev1.Pod{}
	for _, p := range []*corev1.Pod{a, b, other} {
		w := p.DeepCopy()
		w.ManagedFields = nil
		delete(w.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
		want[p] = w
		if _, err := tr(p); err != nil {
			t.Fatalf("transform: %v", err)
		}
	}
	for p, w := range want {
		if diff := cmp.Diff(w, p); diff != "" {
			t.Errorf("pod %s changed beyond stripping (-want +got):\n%s", p.Name, diff)
		}
	}
	same := func(x, y any) bool { return reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer() }
	shared := []struct {
		what string
		x, y any
	}{
		{"containers", a.Spec.Containers, b.Spec.Containers},
		{"labels", a.Labels, b.Labels},
		{"annotations", a.Annotations, b.Annotations},
		{"owner references", a.OwnerReferences, b.OwnerReferences},
		{"tolerations", a.Spec.Tolerations, b.Spec.Tolerations},
		{"grace period", a.Spec.TerminationGracePeriodSeconds, b.Spec.TerminationGracePeriodSeconds},
	}
	for _, s := range shared {
		if !same(s.x, s.y) {
			t.Errorf("%s of equal pods are not shared", s.what)
		}
	}
	if same(a.Spec.Containers, other.Spec.Containers) {
		t.Error("containers with different images are shared")
	}
}

func TestTransformsPassOtherObjectsThrough(t *testing.T) {
	tombstone := "not a pod"
	for name, tr := range map[string]func(any) (any, error){
		"default": podoperator.NewDefaultTransform(), "strip": podoperator.StripTransform, "none": podoperator.NoTransform,
	} {
		got, err := tr(tombstone)
		if err != nil || got != tombstone {
			t.Errorf("%s transform(%q) = %v, %v; want it unchanged", name, tombstone, got, err)
		}
	}
}

func TestDefaultTransformSharesOnlyPartsThatAreExactlyEqual(t *testing.T) {
	// Each case changes one pod of a pair the way protobuf would not see
	// (nil against empty) or deep inside a part; neither may be shared.
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		part   func(*corev1.Pod) any
	}{
		{"empty args against nil", func(p *corev1.Pod) { p.Spec.Containers[0].Args = []string{} },
			func(p *corev1.Pod) any { return p.Spec.Containers }},
		{"another env value", func(p *corev1.Pod) { p.Spec.Containers[0].Env[0].Value = "2" },
			func(p *corev1.Pod) any { return p.Spec.Containers }},
		{"another resource amount", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("200m")
		}, func(p *corev1.Pod) any { return p.Spec.Containers }},
		{"another label value", func(p *corev1.Pod) { p.Labels["pod-template-hash"] = "abd" },
			func(p *corev1.Pod) any { return p.Labels }},
		{"toleration seconds", func(p *corev1.Pod) { s := int64(5); p.Spec.Tolerations[0].TolerationSeconds = &s },
			func(p *corev1.Pod) any { return p.Spec.Tolerations }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := podoperator.NewDefaultTransform()
			a, b := templatePod("a", "web:1"), templatePod("b", "web:1")
			tc.change(b)
			want := b.DeepCopy()
			want.ManagedFields = nil
			delete(want.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
			for _, p := range []*corev1.Pod{a, b} {
				if _, err := tr(p); err != nil {
					t.Fatalf("transform: %v", err)
				}
			}
			if reflect.ValueOf(tc.part(a)).UnsafePointer() == reflect.ValueOf(tc.part(b)).UnsafePointer() {
				t.Error("parts that differ are shared")
			}
			if diff := cmp.Diff(want, b); diff != "" {
				t.Errorf("pod b changed beyond stripping (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultTransformOfAPodAlreadyTransformedWritesNothing(t *testing.T) {
	// client-go's watch-list sync transforms each object twice; the second
	// time, handlers may be reading the parts the pod shares (run with
	// -race).
	tr := podoperator.NewDefaultTransform()
	a, b := templatePod("a", "web:1"), templatePod("b", "web:1")
	for _, p := range []*corev1.Pod{a, b} {
		if _, err := tr(p); err != nil {
			t.Fatalf("transform: %v", err)
		}
	}
	want := b.DeepCopy()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			_ = a.Annotations["team"] + a.Labels["app"] + a.Spec.Containers[0].Image
		}
	}()
	for range 100 {
		if _, err := tr(b); err != nil {
			t.Fatalf("transform again: %v", err)
		}
	}
	<-done
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("a second transform changed the pod (-want +got):\n%s", diff)
	}
}
