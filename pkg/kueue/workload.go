package kueue

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// Labels Kueue reads on a job object (Kueue's docs, "Run a Job" and
// "Workload priority"; sigs.k8s.io/kueue/pkg/constants).
const (
	// LabelQueueName names the LocalQueue (in the Framework's namespace)
	// the Framework is submitted to. Only Frameworks with it are managed.
	LabelQueueName = "kueue.x-k8s.io/queue-name"
	// LabelPriorityClass names a WorkloadPriorityClass whose value becomes
	// the Workload's priority.
	LabelPriorityClass = "kueue.x-k8s.io/priority-class"
	// LabelJobUID is set on the Workload to the Framework's UID, as Kueue's
	// own integrations do.
	LabelJobUID = "kueue.x-k8s.io/job-uid"
)

// Kueue's API group and the version used: v1beta2, its storage version in
// v0.17.0 (the only one usable without Kueue's conversion webhook).
const (
	Group   = "kueue.x-k8s.io"
	Version = "v1beta2"
)

// GroupVersionKinds of the Kueue objects this package reads or writes.
var (
	WorkloadGVK              = schema.GroupVersionKind{Group: Group, Version: Version, Kind: "Workload"}
	ResourceFlavorGVK        = schema.GroupVersionKind{Group: Group, Version: Version, Kind: "ResourceFlavor"}
	WorkloadPriorityClassGVK = schema.GroupVersionKind{Group: Group, Version: Version, Kind: "WorkloadPriorityClass"}
)

// Workload condition types and reasons (Kueue's apis/kueue/v1beta2
// workload_types.go).
const (
	CondQuotaReserved = "QuotaReserved"
	CondAdmitted      = "Admitted"
	CondEvicted       = "Evicted"
	CondFinished      = "Finished"
	CondRequeued      = "Requeued"

	reasonPreempted    = "Preempted"
	reasonNodeFailures = "NodeFailures"
	reasonPending      = "Pending"
	reasonSucceeded    = "Succeeded"
	reasonFailed       = "Failed"
)

// maxPodSets is the most pod sets a Workload holds (its CRD's maxItems).
const maxPodSets = 8

// WorkloadName is the name of the Workload of a Framework.
func WorkloadName(framework string) string {
	name := "framework-" + framework
	if len(name) > 253 {
		name = name[:253]
	}
	return name
}

// newWorkload returns the Workload that queues fw in queue: one pod set per
// task role (name = role, count = taskNumber, template = the role's pod
// template reduced to what Kueue accounts: containers' resources, node
// selector, tolerations, affinity, overhead), owned by fw as controller.
// priority, when not nil, is the value of the WorkloadPriorityClass named
// by LabelPriorityClass.
func newWorkload(fw *v1.Framework, queue string, priority *int32) (*unstructured.Unstructured, error) {
	if n := len(fw.Spec.TaskRoles); n > maxPodSets {
		return nil, fmt.Errorf("framework has %d task roles; a Kueue Workload holds at most %d pod sets", n, maxPodSets)
	}
	var podSets []any
	for _, role := range fw.Spec.TaskRoles {
		tmpl, err := runtime.DefaultUnstructuredConverter.ToUnstructured(accountedTemplate(&role.Task.Pod))
		if err != nil {
			return nil, fmt.Errorf("convert role %s's template: %w", role.Name, err)
		}
		podSets = append(podSets, map[string]any{
			"name":     role.Name,
			"count":    int64(role.TaskNumber),
			"template": tmpl,
		})
	}
	spec := map[string]any{"queueName": queue, "podSets": podSets}
	if pc := fw.Labels[LabelPriorityClass]; pc != "" && priority != nil {
		spec["priorityClassRef"] = map[string]any{"group": Group, "kind": WorkloadPriorityClassGVK.Kind, "name": pc}
		spec["priority"] = int64(*priority)
	}
	wl := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	wl.SetGroupVersionKind(WorkloadGVK)
	wl.SetNamespace(fw.Namespace)
	wl.SetName(WorkloadName(fw.Name))
	wl.SetLabels(map[string]string{LabelJobUID: string(fw.UID)})
	wl.SetOwnerReferences([]metav1.OwnerReference{*metav1.NewControllerRef(fw, v1.GroupVersion.WithKind("Framework"))})
	return wl, nil
}

// accountedTemplate keeps what Kueue reads from a pod template: the
// containers' names and resources (requests, limits), the node selector,
// tolerations, affinity and overhead. Images, commands and env (with their
// {{FC_*}} placeholders) are left out.
func accountedTemplate(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	keep := func(cs []corev1.Container) []corev1.Container {
		var out []corev1.Container
		for _, c := range cs {
			out = append(out, corev1.Container{Name: c.Name, Resources: *c.Resources.DeepCopy(), RestartPolicy: c.RestartPolicy})
		}
		return out
	}
	s := t.Spec.DeepCopy()
	return &corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		InitContainers: keep(s.InitContainers),
		Containers:     keep(s.Containers),
		NodeSelector:   s.NodeSelector,
		Tolerations:    s.Tolerations,
		Affinity:       s.Affinity,
		Overhead:       s.Overhead,
	}}
}

// podSetCounts returns each pod set's count of a Workload, by name.
func podSetCounts(wl *unstructured.Unstructured) map[string]int64 {
	sets, _, _ := unstructured.NestedSlice(wl.Object, "spec", "podSets")
	counts := map[string]int64{}
	for _, s := range sets {
		m, _ := s.(map[string]any)
		name, _ := m["name"].(string)
		counts[name], _ = m["count"].(int64)
	}
	return counts
}

// roleCounts returns each task role's taskNumber, by name.
func roleCounts(fw *v1.Framework) map[string]int64 {
	counts := map[string]int64{}
	for _, r := range fw.Spec.TaskRoles {
		counts[r.Name] = int64(r.TaskNumber)
	}
	return counts
}

// conditions returns a Workload's status.conditions.
func conditions(wl *unstructured.Unstructured) []metav1.Condition {
	raw, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	var out []metav1.Condition
	for _, c := range raw {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		var cond metav1.Condition
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &cond); err == nil {
			out = append(out, cond)
		}
	}
	return out
}

// condition returns the condition of type t, or nil.
func condition(wl *unstructured.Unstructured, t string) *metav1.Condition {
	conds := conditions(wl)
	i := slices.IndexFunc(conds, func(c metav1.Condition) bool { return c.Type == t })
	if i < 0 {
		return nil
	}
	return &conds[i]
}

func isTrue(wl *unstructured.Unstructured, t string) bool {
	c := condition(wl, t)
	return c != nil && c.Status == metav1.ConditionTrue
}

// hasQuotaReservation is Kueue's workload.HasQuotaReservation: condition
// QuotaReserved is True.
func hasQuotaReservation(wl *unstructured.Unstructured) bool {
	return isTrue(wl, CondQuotaReserved)
}

// assignedFlavors returns, for each pod set of status.admission, the names
// of the ResourceFlavors assigned to its resources.
func assignedFlavors(wl *unstructured.Unstructured) map[string][]string {
	psas, _, _ := unstructured.NestedSlice(wl.Object, "status", "admission", "podSetAssignments")
	out := map[string][]string{}
	for _, p := range psas {
		m, _ := p.(map[string]any)
		name, _ := m["name"].(string)
		flavors, _ := m["flavors"].(map[string]any)
		var names []string
		for _, f := range flavors {
			if s, ok := f.(string); ok && !slices.Contains(names, s) {
				names = append(names, s)
			}
		}
		slices.Sort(names)
		out[name] = names
	}
	return out
}

// setConditions replaces the Workload's conditions by conds, each set as
// apimeta.SetStatusCondition would (lastTransitionTime kept when the
// status does not change).
func setConditions(wl *unstructured.Unstructured, conds []metav1.Condition) error {
	var raw []any
	for _, c := range conds {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&c)
		if err != nil {
			return fmt.Errorf("convert condition %s: %w", c.Type, err)
		}
		raw = append(raw, m)
	}
	return unstructured.SetNestedSlice(wl.Object, raw, "status", "conditions")
}

// mergeLabels merges label maps, later ones winning.
func mergeLabels(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}
