package kueue

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// ControllerName names the controller in logs and events.
const ControllerName = "podkit-kueue"

// Event reasons recorded on the Framework.
const (
	ReasonQueued    = "KueueQueued"
	ReasonAdmitted  = "KueueAdmitted"
	ReasonEvicted   = "KueueEvicted"
	ReasonNotQueued = "KueueNotQueued"
)

// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=workloads,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=workloads/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kueue.x-k8s.io,resources=resourceflavors;workloadpriorityclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=podkit.dev,resources=frameworks,verbs=get;list;watch;patch

// Options configure a Reconciler. The zero value is valid.
type Options struct {
	// MaxConcurrentReconciles is how many Frameworks are reconciled at
	// once. Default 2.
	MaxConcurrentReconciles int
}

func (o *Options) setDefaults() {
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = 2
	}
}

func (o *Options) validate() error {
	if o.MaxConcurrentReconciles < 0 {
		return fmt.Errorf("options: MaxConcurrentReconciles is %d; use 0 for the default (2) or a positive number", o.MaxConcurrentReconciles)
	}
	return nil
}

// Reconciler is the Kueue integration of Frameworks (podkit.dev/v1alpha1).
// It acts as Kueue's own job integrations do (Kueue's jobframework
// reconciler, whose steps the comments in Reconcile name) on the
// Framework's spec.suspend, which pkg/framework implements with batch/v1
// Job's semantics: a suspended Framework has no pods and a suspension is
// not a retry.
type Reconciler struct {
	client   client.Client
	recorder events.EventRecorder
	opts     Options
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler with validated, defaulted options.
func New(opts Options) (*Reconciler, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Reconciler{opts: opts}, nil
}

// SetupWithManager watches Frameworks and the Workloads they own. The
// cluster must serve Kueue's kueue.x-k8s.io/v1beta2 (Kueue's CRDs); the
// manager's scheme must include v1alpha1.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.client = mgr.GetClient()
	r.recorder = mgr.GetEventRecorder(ControllerName)
	if _, err := mgr.GetRESTMapper().RESTMapping(WorkloadGVK.GroupKind(), WorkloadGVK.Version); err != nil {
		return fmt.Errorf("set up kueue integration: the cluster does not serve %s (install Kueue's CRDs: podkit dev up --with-kueue, or Kueue's own install): %w", WorkloadGVK, err)
	}
	wl := &unstructured.Unstructured{}
	wl.SetGroupVersionKind(WorkloadGVK)
	err := ctrl.NewControllerManagedBy(mgr).
		Named("kueueframework").
		For(&v1.Framework{}).
		Owns(wl).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.opts.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up kueue integration: %w", err)
	}
	return nil
}

// Reconcile moves one Framework and its Workload one step.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	nn := req.NamespacedName
	logger := log.FromContext(ctx).WithValues("controller", ControllerName, "namespace", nn.Namespace, "name", nn.Name)
	ctx = log.IntoContext(ctx, logger)

	fw := &v1.Framework{}
	if err := r.client.Get(ctx, nn, fw); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	queue := fw.Labels[LabelQueueName]
	if queue == "" || !fw.DeletionTimestamp.IsZero() || (fw.Spec.ManagedBy != "" && fw.Spec.ManagedBy != v1.ManagedByPodkit) {
		return reconcile.Result{}, nil
	}
	wl := &unstructured.Unstructured{}
	wl.SetGroupVersionKind(WorkloadGVK)
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: fw.Namespace, Name: WorkloadName(fw.Name)}, wl); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("get workload of framework %s: %w", nn, err)
		}
		wl = nil
	}
	if wl != nil && !metav1.IsControlledBy(wl, fw) {
		r.event(fw, corev1.EventTypeWarning, ReasonNotQueued, "Workload %s exists and is not this Framework's; delete it or rename the Framework", wl.GetName())
		return reconcile.Result{}, nil
	}

	// Step "handle job is finished": the Workload is declared Finished,
	// which releases its quota.
	var st v1.FrameworkStatus
	if fw.Status != nil {
		st = *fw.Status
	}
	if st.State == v1.FrameworkCompleted {
		if wl == nil || isTrue(wl, CondFinished) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, r.finish(ctx, st, wl)
	}

	// Step "handle workload is nil": the job is held suspended and its
	// Workload created.
	if wl == nil {
		if err := r.suspend(ctx, fw); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.createWorkload(ctx, fw, queue)
	}

	// A changed taskNumber no longer matches the pod sets: a Workload not
	// holding quota is replaced (Kueue's integrations do the same for a
	// job whose pod sets changed).
	if !maps.Equal(podSetCounts(wl), roleCounts(fw)) && !hasQuotaReservation(wl) {
		if err := r.client.Delete(ctx, wl, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("delete outdated workload %s: %w", wl.GetName(), err)
		}
		return reconcile.Result{}, nil
	}

	// Step "handle eviction": stop the job; once it has no pods, clear
	// the Workload's quota reservation so that Kueue queues it again.
	if ev := condition(wl, CondEvicted); ev != nil && ev.Status == metav1.ConditionTrue {
		if !fw.Spec.Suspend {
			r.event(fw, corev1.EventTypeNormal, ReasonEvicted, "Kueue evicted Workload %s (%s: %s): suspending", wl.GetName(), ev.Reason, ev.Message)
		}
		if err := r.suspend(ctx, fw); err != nil {
			return reconcile.Result{}, err
		}
		if hasQuotaReservation(wl) && stopped(fw, st) {
			return reconcile.Result{}, r.clearAdmission(ctx, wl, ev)
		}
		return reconcile.Result{}, nil
	}

	// Step "handle job is suspended": start it once admitted.
	if fw.Spec.Suspend {
		if !isTrue(wl, CondAdmitted) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, r.start(ctx, fw, wl)
	}

	// Step "handle job is unsuspended": a running job whose Workload is
	// not admitted is stopped.
	if !isTrue(wl, CondAdmitted) {
		return reconcile.Result{}, r.suspend(ctx, fw)
	}
	return reconcile.Result{}, nil
}

// stopped reports whether fw is suspended and the Framework controller
// says, for this very generation, that no pod is left: a Suspended
// condition written before the latest spec.suspend change (a resume and a
// quick eviction) does not count.
func stopped(fw *v1.Framework, st v1.FrameworkStatus) bool {
	c := apimeta.FindStatusCondition(st.Conditions, v1.ConditionSuspended)
	return fw.Spec.Suspend && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == fw.Generation
}

// suspend sets spec.suspend and removes the node selectors of an
// admission (Kueue's stopJob restores the pod templates).
func (r *Reconciler) suspend(ctx context.Context, fw *v1.Framework) error {
	if fw.Spec.Suspend && fw.Annotations[v1.AnnotationRoleNodeSelectors] == "" {
		return nil
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{v1.AnnotationRoleNodeSelectors: nil}},
		"spec":     map[string]any{"suspend": true},
	}
	if err := r.patch(ctx, fw, patch); err != nil {
		return fmt.Errorf("suspend framework %s/%s: %w", fw.Namespace, fw.Name, err)
	}
	log.FromContext(ctx).Info("framework suspended until Kueue admits it")
	return nil
}

// start writes the node labels of the assigned flavors (per role) and
// clears spec.suspend in one patch: pkg/framework's next attempt creates
// the pods with them.
func (r *Reconciler) start(ctx context.Context, fw *v1.Framework, wl *unstructured.Unstructured) error {
	selectors := map[string]map[string]string{}
	for podSet, flavors := range assignedFlavors(wl) {
		var labels []map[string]string
		for _, name := range flavors {
			rf := &unstructured.Unstructured{}
			rf.SetGroupVersionKind(ResourceFlavorGVK)
			if err := r.client.Get(ctx, types.NamespacedName{Name: name}, rf); err != nil {
				return fmt.Errorf("get resource flavor %s assigned to %s: %w", name, wl.GetName(), err)
			}
			nl, _, _ := unstructured.NestedStringMap(rf.Object, "spec", "nodeLabels")
			labels = append(labels, nl)
		}
		if sel := mergeLabels(labels...); len(sel) > 0 {
			selectors[podSet] = sel
		}
	}
	annotations := map[string]any{v1.AnnotationRoleNodeSelectors: nil}
	if len(selectors) > 0 {
		data, err := json.Marshal(selectors)
		if err != nil {
			return fmt.Errorf("encode node selectors: %w", err)
		}
		annotations[v1.AnnotationRoleNodeSelectors] = string(data)
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": annotations},
		"spec":     map[string]any{"suspend": false},
	}
	if err := r.patch(ctx, fw, patch); err != nil {
		return fmt.Errorf("start admitted framework %s/%s: %w", fw.Namespace, fw.Name, err)
	}
	r.event(fw, corev1.EventTypeNormal, ReasonAdmitted, "Kueue admitted Workload %s: resuming with node selectors %v", wl.GetName(), selectors)
	log.FromContext(ctx).Info("framework admitted by Kueue", "nodeSelectors", selectors)
	return nil
}

func (r *Reconciler) createWorkload(ctx context.Context, fw *v1.Framework, queue string) error {
	var priority *int32
	if pc := fw.Labels[LabelPriorityClass]; pc != "" {
		wpc := &unstructured.Unstructured{}
		wpc.SetGroupVersionKind(WorkloadPriorityClassGVK)
		if err := r.client.Get(ctx, types.NamespacedName{Name: pc}, wpc); err != nil {
			if apierrors.IsNotFound(err) {
				r.event(fw, corev1.EventTypeWarning, ReasonNotQueued, "WorkloadPriorityClass %s not found", pc)
			}
			return fmt.Errorf("get workload priority class %s: %w", pc, err)
		}
		v, _, _ := unstructured.NestedInt64(wpc.Object, "value")
		p := int32(v)
		priority = &p
	}
	wl, err := newWorkload(fw, queue, priority)
	if err != nil {
		r.event(fw, corev1.EventTypeWarning, ReasonNotQueued, "%v", err)
		return nil // a retry cannot help until the Framework changes
	}
	if err := r.client.Create(ctx, wl); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("create workload %s/%s: %w", wl.GetNamespace(), wl.GetName(), err)
	}
	r.event(fw, corev1.EventTypeNormal, ReasonQueued, "created Workload %s in LocalQueue %s", wl.GetName(), queue)
	return nil
}

// clearAdmission is what Kueue's integrations do once an evicted job has
// stopped: condition Requeued (True after a preemption or node failures),
// QuotaReserved False (reason Pending), Admitted False and no
// status.admission.
func (r *Reconciler) clearAdmission(ctx context.Context, wl *unstructured.Unstructured, ev *metav1.Condition) error {
	wl = wl.DeepCopy()
	conds := conditions(wl)
	now := metav1.Now()
	requeued := metav1.ConditionFalse
	if ev.Reason == reasonPreempted || ev.Reason == reasonNodeFailures {
		requeued = metav1.ConditionTrue
	}
	gen := wl.GetGeneration()
	for _, c := range []metav1.Condition{
		{Type: CondRequeued, Status: requeued, Reason: ev.Reason, Message: ev.Message, ObservedGeneration: gen, LastTransitionTime: now},
		{Type: CondQuotaReserved, Status: metav1.ConditionFalse, Reason: reasonPending, Message: ev.Message, ObservedGeneration: gen, LastTransitionTime: now},
		{Type: CondAdmitted, Status: metav1.ConditionFalse, Reason: "NoReservation", Message: "The workload has no reservation", ObservedGeneration: gen, LastTransitionTime: now},
	} {
		apimeta.SetStatusCondition(&conds, c)
	}
	if err := setConditions(wl, conds); err != nil {
		return err
	}
	unstructured.RemoveNestedField(wl.Object, "status", "admission")
	if err := r.client.Status().Update(ctx, wl); err != nil {
		return fmt.Errorf("clear the admission of evicted workload %s/%s: %w", wl.GetNamespace(), wl.GetName(), err)
	}
	log.FromContext(ctx).Info("evicted framework stopped; workload requeued", "reason", ev.Reason)
	return nil
}

// finish sets the Workload's Finished condition from the Framework's
// Succeeded or Failed condition.
func (r *Reconciler) finish(ctx context.Context, st v1.FrameworkStatus, wl *unstructured.Unstructured) error {
	wl = wl.DeepCopy()
	reason, message := reasonFailed, "the framework failed"
	if c := apimeta.FindStatusCondition(st.Conditions, v1.ConditionSucceeded); c != nil && c.Status == metav1.ConditionTrue {
		reason, message = reasonSucceeded, c.Message
	} else if c := apimeta.FindStatusCondition(st.Conditions, v1.ConditionFailed); c != nil {
		message = c.Message
	}
	if message == "" {
		message = "the framework completed"
	}
	conds := conditions(wl)
	apimeta.SetStatusCondition(&conds, metav1.Condition{Type: CondFinished, Status: metav1.ConditionTrue, Reason: reason, Message: message, ObservedGeneration: wl.GetGeneration(), LastTransitionTime: metav1.Now()})
	if err := setConditions(wl, conds); err != nil {
		return err
	}
	if err := r.client.Status().Update(ctx, wl); err != nil {
		return fmt.Errorf("finish workload %s/%s: %w", wl.GetNamespace(), wl.GetName(), err)
	}
	log.FromContext(ctx).Info("workload finished", "reason", reason)
	return nil
}

// patch merge-patches fw: no resourceVersion, so that it never conflicts
// with pkg/framework's status writes.
func (r *Reconciler) patch(ctx context.Context, fw *v1.Framework, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("encode patch: %w", err)
	}
	return r.client.Patch(ctx, fw, client.RawPatch(types.MergePatchType, data))
}

func (r *Reconciler) event(fw *v1.Framework, eventType, reason, note string, args ...any) {
	if r.recorder != nil {
		r.recorder.Eventf(fw, nil, eventType, reason, "Queue", note, args...)
	}
}
