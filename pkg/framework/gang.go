package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// Gang placement uses the upstream API of Kubernetes 1.37 (KEP-4671,
// scheduling.k8s.io/v1beta1, feature gate GenericWorkload): per framework
// attempt the controller creates one standalone PodGroup (no Workload: the
// Framework is the template that a Workload would be) whose gang policy's
// minCount is the number of the attempt's unfinished tasks, and every task
// pod created before the gang is placed names it in
// spec.schedulingGroup.podGroupName. The scheduler's GangScheduling plugin
// then binds none of them until all of them fit. The group is the
// attempt's: owned by the Framework, deleted with the attempt, and a retry
// (or a resume after a suspension) gets a new one.
//
// Once the gang is placed (the PodGroup's PodGroupInitiallyScheduled
// condition, terminal upstream, is True), pods of retried tasks join no
// group: the scheduler counts only the group's live pods, so a lone
// replacement of a gang whose other tasks already finished would wait
// forever for a minCount it can never reach. Before the gang is placed,
// minCount follows the attempt's unfinished task count (a rescale, a pod
// refused at creation), which the API allows to change.
//
// The API's presence is read once, from discovery, when the controller is
// set up: a cluster that starts serving it later needs a controller
// restart. Without it the Framework runs barrier-only and its
// GangScheduled condition says so.

// +kubebuilder:rbac:groups=scheduling.k8s.io,resources=podgroups,verbs=get;list;watch;create;patch;delete

// GangMode says whether a Reconciler places Frameworks all-or-nothing.
type GangMode int

const (
	// GangAuto places every attempt as a gang when the cluster serves
	// scheduling.k8s.io/v1beta1 PodGroups, and runs barrier-only otherwise.
	GangAuto GangMode = iota
	// GangOff never creates PodGroups: pods are placed one by one and only
	// the barrier holds them back.
	GangOff
)

// gangGroupVersion is the upstream API gang placement needs.
var gangGroupVersion = schedulingv1beta1.SchemeGroupVersion

// ServesGangAPI reports whether the apiserver of cfg serves
// scheduling.k8s.io/v1beta1 PodGroups, from discovery.
func ServesGangAPI(cfg *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, fmt.Errorf("discovery client: %w", err)
	}
	list, err := dc.ServerResourcesForGroupVersion(gangGroupVersion.String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", gangGroupVersion, err)
	}
	for _, res := range list.APIResources {
		if res.Name == "podgroups" {
			return true, nil
		}
	}
	return false, nil
}

// servesGangKind is ServesGangAPI asked of a REST mapper: whether it maps
// scheduling.k8s.io/v1beta1 PodGroup.
func servesGangKind(mapper meta.RESTMapper) (bool, error) {
	gk := schema.GroupKind{Group: gangGroupVersion.Group, Kind: "PodGroup"}
	_, err := mapper.RESTMapping(gk, gangGroupVersion.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	}
	return false, fmt.Errorf("discover %s: %w", gangGroupVersion, err)
}

// gangEnabled reports whether this Reconciler creates PodGroups.
func (r *Reconciler) gangEnabled() bool {
	return r.opts.Gang == GangAuto && r.gangAPI
}

// listPodGroups fills s.podGroups with the Framework's PodGroups in the
// cache, by name.
func (r *Reconciler) listPodGroups(ctx context.Context, s *syncState) error {
	s.podGroups = map[string]*schedulingv1beta1.PodGroup{}
	if !r.gangEnabled() {
		return nil
	}
	var list schedulingv1beta1.PodGroupList
	if err := r.client.List(ctx, &list, client.InNamespace(s.fw.Namespace), client.MatchingLabels{v1.LabelFrameworkName: s.fw.Name}); err != nil {
		return fmt.Errorf("list podgroups of framework %s/%s: %w", s.fw.Namespace, s.fw.Name, err)
	}
	for i := range list.Items {
		pg := &list.Items[i]
		if metav1.IsControlledBy(pg, s.fw) {
			s.podGroups[pg.Name] = pg
		}
	}
	return nil
}

// gangSize is the gang's minCount: the current attempt's unfinished tasks.
func gangSize(s *syncState) int32 {
	var n int32
	_ = s.forEachTask(func(_ *v1.TaskRoleSpec, ts *v1.TaskStatus) error {
		if ts.State != v1.TaskCompleted && !ts.DeletionPending {
			n++
		}
		return nil
	})
	return n
}

// gangPlaced reports whether the scheduler placed pg's gang; the condition
// never goes back to False upstream.
func gangPlaced(pg *schedulingv1beta1.PodGroup) bool {
	return pg != nil && meta.IsStatusConditionTrue(pg.Status.Conditions, schedulingv1beta1.PodGroupInitiallyScheduled)
}

// ensurePodGroup makes sure the current attempt's PodGroup exists, deletes
// older attempts' PodGroups, and returns the group new pods join: "" when
// they join none (gang placement off or unavailable, the gang already
// placed, or a stranger's PodGroup with the name).
func (r *Reconciler) ensurePodGroup(ctx context.Context, s *syncState) (string, error) {
	if !r.gangEnabled() {
		return "", nil
	}
	att := &s.fw.Status.AttemptStatus
	name := v1.PodGroupName(s.fw.Name, att.ID)
	for other, pg := range s.podGroups {
		if other != name && pg.DeletionTimestamp == nil {
			if err := r.deleteObject(ctx, pg, nil); err != nil {
				return "", err
			}
		}
	}
	size := gangSize(s)
	pg := s.podGroups[name]
	if pg == nil {
		if size == 0 {
			return "", nil
		}
		want := newPodGroup(s.fw, att.ID, size)
		want.OwnerReferences = []metav1.OwnerReference{ownerRef(s.fw, r.opts.API.gvk())}
		err := r.client.Create(ctx, want)
		switch {
		case err == nil:
			log.FromContext(ctx).V(1).Info("created pod group", "podGroup", name, "minCount", size)
			r.metrics.podGroupCreations.Inc()
			return name, nil
		case apierrors.IsAlreadyExists(err):
			live := &schedulingv1beta1.PodGroup{}
			if err := r.reader.Get(ctx, s.podKey(name), live); err != nil {
				return "", fmt.Errorf("get podgroup %s/%s: %w", s.fw.Namespace, name, err)
			}
			if !metav1.IsControlledBy(live, s.fw) {
				r.event(s.fw, corev1.EventTypeWarning, ReasonPodGroupConflict, actionCreate, "podgroup %s exists and is not owned by this framework: its pods are placed one by one", name)
				return "", nil
			}
			pg = live
		default:
			return "", fmt.Errorf("create podgroup %s/%s: %w", s.fw.Namespace, name, err)
		}
	}
	if gangPlaced(pg) {
		return "", nil
	}
	if g := pg.Spec.SchedulingPolicy.Gang; g != nil && g.MinCount != size && size > 0 {
		if err := r.setMinCount(ctx, pg, size); err != nil {
			return "", err
		}
	}
	return name, nil
}

// setMinCount changes the gang's minCount, which the API keeps mutable.
func (r *Reconciler) setMinCount(ctx context.Context, pg *schedulingv1beta1.PodGroup, n int32) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": pg.UID},
		"spec":     map[string]any{"schedulingPolicy": map[string]any{"gang": map[string]any{"minCount": n}}},
	})
	if err != nil {
		return fmt.Errorf("encode minCount patch: %w", err)
	}
	obj := &schedulingv1beta1.PodGroup{ObjectMeta: metav1.ObjectMeta{Namespace: pg.Namespace, Name: pg.Name}}
	if err := r.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("set minCount of podgroup %s/%s to %d: %w", pg.Namespace, pg.Name, n, err)
	}
	return nil
}

// deletePodGroups deletes the Framework's PodGroups (with its attempt).
func (r *Reconciler) deletePodGroups(ctx context.Context, s *syncState) error {
	for _, pg := range s.podGroups {
		if pg.DeletionTimestamp == nil {
			if err := r.deleteObject(ctx, pg, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// newPodGroup builds the gang of a framework attempt.
func newPodGroup(fw *v1.Framework, attemptID, minCount int32) *schedulingv1beta1.PodGroup {
	return &schedulingv1beta1.PodGroup{
		ObjectMeta: metav1.ObjectMeta{
			Name:            v1.PodGroupName(fw.Name, attemptID),
			Namespace:       fw.Namespace,
			Labels:          map[string]string{v1.LabelFrameworkName: fw.Name},
			Annotations:     map[string]string{v1.AnnotationFrameworkAttemptID: strconv.Itoa(int(attemptID))},
			OwnerReferences: []metav1.OwnerReference{ownerRef(fw, v1.FrameworkGroupVersionKind)},
		},
		Spec: schedulingv1beta1.PodGroupSpec{
			SchedulingPolicy: schedulingv1beta1.PodGroupSchedulingPolicy{
				Gang: &schedulingv1beta1.GangSchedulingPolicy{MinCount: minCount},
			},
		},
	}
}

// joinGroup makes pod a member of the named PodGroup ("" leaves it alone).
func joinGroup(pod *corev1.Pod, group string) {
	if group != "" {
		pod.Spec.SchedulingGroup = &corev1.PodSchedulingGroup{PodGroupName: &group}
	}
}

// setGangCondition sets ConditionGangScheduled, when this reconcile knows
// it, before a status write.
func (r *Reconciler) setGangCondition(s *syncState) {
	c := r.gangCondition(s)
	if c == nil {
		return
	}
	c.Type = v1.ConditionGangScheduled
	c.ObservedGeneration = s.fw.Generation
	c.LastTransitionTime = s.now
	meta.SetStatusCondition(&s.fw.Status.Conditions, *c)
}

const barrierOnly = "pods are placed one by one and only the barrier holds them back until all run"

// gangCondition is ConditionGangScheduled as this reconcile sees it, or nil
// to keep what the status says (no current gang, or not observed).
func (r *Reconciler) gangCondition(s *syncState) *metav1.Condition {
	st := s.fw.Status
	switch {
	case r.opts.Gang == GangOff:
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v1.ReasonGangDisabled,
			Message: "the controller runs with gang placement off: " + barrierOnly}
	case !r.gangAPI:
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v1.ReasonGangAPIUnavailable,
			Message: fmt.Sprintf("the cluster does not serve %s PodGroups (kube-apiserver --runtime-config=%s=true and feature gate GenericWorkload on kube-apiserver, kube-controller-manager and kube-scheduler): %s", gangGroupVersion, gangGroupVersion, barrierOnly)}
	case s.podGroups == nil || st.AttemptStatus.ConfigMapUID == nil || completing(st.State) || st.State == v1.FrameworkCompleted:
		return nil
	}
	name := v1.PodGroupName(s.fw.Name, st.AttemptStatus.ID)
	pg := s.podGroups[name]
	if pg == nil {
		return nil
	}
	var bound int
	for _, p := range s.pods {
		if p.Spec.SchedulingGroup != nil && p.Spec.SchedulingGroup.PodGroupName != nil && *p.Spec.SchedulingGroup.PodGroupName == name && p.Spec.NodeName != "" {
			bound++
		}
	}
	minCount := int32(0)
	if g := pg.Spec.SchedulingPolicy.Gang; g != nil {
		minCount = g.MinCount
	}
	if gangPlaced(pg) || (minCount > 0 && int32(bound) >= minCount) {
		return &metav1.Condition{Status: metav1.ConditionTrue, Reason: v1.ReasonGangPlaced,
			Message: fmt.Sprintf("podgroup %s: the gang of %d pods of attempt %d was placed together", name, minCount, st.AttemptStatus.ID)}
	}
	if c := meta.FindStatusCondition(pg.Status.Conditions, schedulingv1beta1.PodGroupInitiallyScheduled); c != nil && c.Status == metav1.ConditionFalse {
		reason := v1.ReasonUnschedulable
		if c.Reason == schedulingv1beta1.PodGroupReasonSchedulerError {
			reason = v1.ReasonSchedulerError
		}
		return &metav1.Condition{Status: metav1.ConditionFalse, Reason: reason,
			Message: truncate(fmt.Sprintf("podgroup %s (minCount %d, %d bound): %s", name, minCount, bound, c.Message))}
	}
	return &metav1.Condition{Status: metav1.ConditionFalse, Reason: v1.ReasonGangWaiting,
		Message: fmt.Sprintf("podgroup %s: %d of %d pods bound; waiting for the scheduler to place the gang", name, bound, minCount)}
}
