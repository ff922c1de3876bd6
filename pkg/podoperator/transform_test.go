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
