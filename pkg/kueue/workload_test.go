package kueue

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

func TestWorkloadHasOnePodSetPerRoleWithCountAndAccountedTemplate(t *testing.T) {
	gpu := resource.MustParse("2")
	role := func(name string, n int32) v1.TaskRoleSpec {
		return v1.TaskRoleSpec{Name: name, TaskNumber: n, Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}},
			Spec: corev1.PodSpec{
				NodeSelector: map[string]string{"zone": "z1"},
				Containers: []corev1.Container{{
					Name: "main", Image: "busybox", Command: []string{"echo", "{{FC_TASK_INDEX}}"},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": gpu}},
				}},
			},
		}}}
	}
	fw := &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fw", UID: "uid-1", Labels: map[string]string{LabelPriorityClass: "high"}},
		Spec:       v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{role("ps", 1), role("worker", 4)}},
	}
	wl, err := newWorkload(fw, "q", ptr.To[int32](1000))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"ps": 1, "worker": 4}, podSetCounts(wl)); diff != "" {
		t.Errorf("pod set counts (-want +got):\n%s", diff)
	}
	sets, _, _ := unstructured.NestedSlice(wl.Object, "spec", "podSets")
	want := map[string]any{
		"metadata": map[string]any{},
		"spec": map[string]any{
			"nodeSelector": map[string]any{"zone": "z1"},
			"containers":   []any{map[string]any{"name": "main", "resources": map[string]any{"limits": map[string]any{"nvidia.com/gpu": "2"}}}},
		},
	}
	if diff := cmp.Diff(want, sets[1].(map[string]any)["template"]); diff != "" {
		t.Errorf("worker template (-want +got):\n%s", diff)
	}
	if q, _, _ := unstructured.NestedString(wl.Object, "spec", "queueName"); q != "q" {
		t.Errorf("queueName %q, want q", q)
	}
	if p, _, _ := unstructured.NestedInt64(wl.Object, "spec", "priority"); p != 1000 {
		t.Errorf("priority %d, want 1000", p)
	}
	if ref := metav1.GetControllerOf(wl); ref == nil || ref.UID != "uid-1" || ref.Kind != "Framework" {
		t.Errorf("controller reference %+v, want the Framework", ref)
	}
	if wl.GetLabels()[LabelJobUID] != "uid-1" {
		t.Errorf("labels %v lack %s", wl.GetLabels(), LabelJobUID)
	}
}

func TestWorkloadRefusesMoreRolesThanKueuePodSets(t *testing.T) {
	fw := &v1.Framework{ObjectMeta: metav1.ObjectMeta{Name: "fw"}}
	for i := range maxPodSets + 1 {
		fw.Spec.TaskRoles = append(fw.Spec.TaskRoles, v1.TaskRoleSpec{Name: string(rune('a' + i)), TaskNumber: 1})
	}
	if _, err := newWorkload(fw, "q", nil); err == nil {
		t.Fatal("a workload of 9 pod sets was built; Kueue's CRD allows 8")
	}
}

func TestAssignedFlavorsPerPodSet(t *testing.T) {
	wl := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"admission": map[string]any{
		"clusterQueue": "cq",
		"podSetAssignments": []any{
			map[string]any{"name": "ps", "flavors": map[string]any{"cpu": "default"}},
			map[string]any{"name": "worker", "flavors": map[string]any{"cpu": "default", "nvidia.com/gpu": "a100"}},
		},
	}}}}
	want := map[string][]string{"ps": {"default"}, "worker": {"a100", "default"}}
	if diff := cmp.Diff(want, assignedFlavors(wl)); diff != "" {
		t.Errorf("flavors (-want +got):\n%s", diff)
	}
}
