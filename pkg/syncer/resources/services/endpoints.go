package services

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/fairqueue"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// EndpointsName is the name of the controller that copies host
// EndpointSlices up; it runs with the services syncer.
const EndpointsName = "service-endpointslices"

// ManagedByHost is the endpointslice.kubernetes.io/managed-by value of the
// virtual EndpointSlices copied from the host: a virtual EndpointSlice
// controller leaves them alone, and the endpointslices syncer never copies
// them back down.
const ManagedByHost = "host.syncer.podkit.dev"

// AnnotationHostSlice, on a virtual EndpointSlice, names the host slice it
// was copied from.
const AnnotationHostSlice = "podkit.dev/host-endpointslice"

// missingPodRetry is how soon a Service is looked at again when a host
// slice names a pod the caches do not have yet.
const missingPodRetry = time.Second

// EndpointSlicesUp copies the EndpointSlices the host builds for the host
// copy of a virtual Service with a selector into the virtual cluster: the
// addresses are the host pods' (which are the virtual pods' too, since pod
// status flows up), each targetRef names the virtual pod, and endpoints of
// any pod that is not a synced pod of the Service's virtual namespace are
// left out. Services without a selector keep the endpoints the tenant writes
// (see the endpointslices syncer).
type EndpointSlicesUp struct {
	t *translator.Namespaced
}

var (
	_ syncer.ControllerStarter = (*EndpointSlicesUp)(nil)
	_ syncer.HostReader        = (*EndpointSlicesUp)(nil)
)

// NewEndpointSlicesUp returns the controller for ctx's virtual cluster and
// target namespace.
func NewEndpointSlicesUp(ctx *synccontext.RegisterContext) (*EndpointSlicesUp, error) {
	t, err := translator.NewNamespaced(ctx.Options.Name, ctx.TargetNamespace)
	if err != nil {
		return nil, fmt.Errorf("create %s translator: %w", EndpointsName, err)
	}
	return &EndpointSlicesUp{t: t}, nil
}

// Name implements syncer.Base.
func (e *EndpointSlicesUp) Name() string { return EndpointsName }

// HostResources implements syncer.HostReader: it reads host EndpointSlices,
// Services and Pods.
func (e *EndpointSlicesUp) HostResources() []client.Object {
	return []client.Object{&discoveryv1.EndpointSlice{}, &corev1.Service{}, &corev1.Pod{}}
}

// Register implements syncer.ControllerStarter: one reconcile per virtual
// Service, fed by virtual Services, host EndpointSlices (through the host
// Service they belong to) and the virtual slices it wrote.
func (e *EndpointSlicesUp) Register(rc *synccontext.RegisterContext) error {
	hostCache := rc.PhysicalManager.GetClient()
	fromHost := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		name := obj.GetLabels()[discoveryv1.LabelServiceName]
		if name == "" {
			return nil
		}
		pSvc := &corev1.Service{}
		if err := hostCache.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}, pSvc); err != nil {
			return nil
		}
		if managed, err := e.t.IsManaged(pSvc); err != nil || !managed {
			return nil
		}
		if nn := e.t.PhysicalToVirtual(pSvc); nn.Name != "" {
			return []reconcile.Request{{NamespacedName: nn}}
		}
		return nil
	})
	fromVirtualSlice := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		l := obj.GetLabels()
		if l[discoveryv1.LabelManagedBy] != ManagedByHost || l[discoveryv1.LabelServiceName] == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: l[discoveryv1.LabelServiceName]}}}
	})
	workers := 1
	if rc.Options != nil && rc.Options.Workers > 0 {
		workers = rc.Options.Workers
	}
	r := &endpointsReconciler{rc: rc, t: e.t}
	err := ctrl.NewControllerManagedBy(rc.VirtualManager).
		Named(EndpointsName).
		For(&corev1.Service{}).
		Watches(&discoveryv1.EndpointSlice{}, fromVirtualSlice).
		WatchesRawSource(source.Kind(rc.PhysicalManager.GetCache(), client.Object(&discoveryv1.EndpointSlice{}), fromHost)).
		WatchesRawSource(source.Kind(rc.PhysicalManager.GetCache(), client.Object(&corev1.Service{}), fromHost)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, NewQueue: fairqueue.NewRateLimiting}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("build controller %s: %w", EndpointsName, err)
	}
	return nil
}

type endpointsReconciler struct {
	rc *synccontext.RegisterContext
	t  *translator.Namespaced
}

// Reconcile makes the virtual slices of the virtual Service req those of
// its host copy, translated.
func (r *endpointsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sctx := r.rc.ToSyncContext(ctx, EndpointsName)
	want, retry, err := r.desired(sctx, req.NamespacedName)
	if err != nil {
		return ctrl.Result{}, err
	}
	have := &discoveryv1.EndpointSliceList{}
	if err := sctx.VirtualClient.List(ctx, have, client.InNamespace(req.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: req.Name, discoveryv1.LabelManagedBy: ManagedByHost}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list virtual EndpointSlices of Service %s: %w", req, err)
	}
	for i := range have.Items {
		cur := &have.Items[i]
		w, ok := want[cur.Name]
		delete(want, cur.Name)
		if ok && w.AddressType == cur.AddressType {
			if err := r.update(sctx, cur, w); err != nil {
				return ctrl.Result{}, err
			}
			continue
		}
		uid := cur.UID
		if err := sctx.VirtualClient.Delete(ctx, cur, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return ctrl.Result{}, fmt.Errorf("delete virtual EndpointSlice %s/%s: %w", cur.Namespace, cur.Name, err)
		}
		if ok {
			want[cur.Name] = w // immutable address type: created again below
		}
	}
	for _, w := range want {
		if err := sctx.VirtualClient.Create(ctx, w); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return ctrl.Result{RequeueAfter: missingPodRetry}, nil // a deletion still in flight
			}
			return ctrl.Result{}, fmt.Errorf("create virtual EndpointSlice %s/%s: %w", w.Namespace, w.Name, err)
		}
	}
	if retry {
		return ctrl.Result{RequeueAfter: missingPodRetry}, nil
	}
	return ctrl.Result{}, nil
}

// update writes want's endpoints, ports, labels and owner to cur if they differ.
func (r *endpointsReconciler) update(sctx *synccontext.SyncContext, cur, want *discoveryv1.EndpointSlice) error {
	if equality.Semantic.DeepEqual(cur.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(cur.Ports, want.Ports) &&
		equality.Semantic.DeepEqual(cur.OwnerReferences, want.OwnerReferences) && cur.Annotations[AnnotationHostSlice] == want.Annotations[AnnotationHostSlice] {
		return nil
	}
	next := cur.DeepCopy()
	next.Endpoints, next.Ports, next.OwnerReferences = want.Endpoints, want.Ports, want.OwnerReferences
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[AnnotationHostSlice] = want.Annotations[AnnotationHostSlice]
	if err := sctx.VirtualClient.Update(sctx.Context, next); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update virtual EndpointSlice %s/%s: %w", cur.Namespace, cur.Name, err)
	}
	return nil // a conflict comes back with the slice's watch event
}

// desired returns the virtual slices the virtual Service nn should have, by
// name: none when it is gone, has no selector, or has no host copy. retry
// reports that a host endpoint named a pod the caches do not know yet.
func (r *endpointsReconciler) desired(sctx *synccontext.SyncContext, nn types.NamespacedName) (map[string]*discoveryv1.EndpointSlice, bool, error) {
	want := map[string]*discoveryv1.EndpointSlice{}
	vSvc := &corev1.Service{}
	if err := sctx.VirtualClient.Get(sctx.Context, nn, vSvc); err != nil {
		if apierrors.IsNotFound(err) {
			return want, false, nil
		}
		return nil, false, fmt.Errorf("get virtual Service %s: %w", nn, err)
	}
	if vSvc.DeletionTimestamp != nil || len(vSvc.Spec.Selector) == 0 {
		return want, false, nil
	}
	pNN := r.t.VirtualToPhysical(nn, vSvc)
	pSvc := &corev1.Service{}
	if err := sctx.PhysicalClient.Get(sctx.Context, pNN, pSvc); err != nil {
		if apierrors.IsNotFound(err) {
			return want, false, nil
		}
		return nil, false, fmt.Errorf("get host Service %s: %w", pNN, err)
	}
	if managed, err := r.t.IsManaged(pSvc); err != nil || !managed {
		return want, false, err
	}
	hostSlices := &discoveryv1.EndpointSliceList{}
	if err := sctx.PhysicalClient.List(sctx.Context, hostSlices, client.InNamespace(pNN.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: pNN.Name}); err != nil {
		return nil, false, fmt.Errorf("list host EndpointSlices of Service %s: %w", pNN, err)
	}
	retry := false
	for i := range hostSlices.Items {
		vSlice, missing, err := r.translateUp(sctx, &hostSlices.Items[i], vSvc)
		if err != nil {
			return nil, false, err
		}
		retry = retry || missing
		want[vSlice.Name] = vSlice
	}
	return want, retry, nil
}

// virtualSliceName is the name of the virtual copy of the host slice
// pSlice of the virtual Service svcName: the Service's name (as the
// EndpointSlice controller prefixes its slices) and a hash of the host name.
func virtualSliceName(svcName, pSlice string) string {
	sum := sha256.Sum256([]byte(pSlice))
	return svcName + "-" + hex.EncodeToString(sum[:5])
}

// translateUp returns the virtual copy of the host slice pSlice of the
// virtual Service vSvc. missing reports an endpoint left out because its
// pod is not (yet) in the caches.
func (r *endpointsReconciler) translateUp(sctx *synccontext.SyncContext, pSlice *discoveryv1.EndpointSlice, vSvc *corev1.Service) (*discoveryv1.EndpointSlice, bool, error) {
	vSlice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: vSvc.Namespace,
			Name:      virtualSliceName(vSvc.Name, pSlice.Name),
			Labels: map[string]string{
				discoveryv1.LabelServiceName: vSvc.Name,
				discoveryv1.LabelManagedBy:   ManagedByHost,
			},
			Annotations:     map[string]string{AnnotationHostSlice: pSlice.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: vSvc.Name, UID: vSvc.UID}},
		},
		AddressType: pSlice.AddressType,
		Ports:       pSlice.DeepCopy().Ports,
	}
	missing := false
	for _, ep := range pSlice.Endpoints {
		ref := ep.TargetRef
		if ref == nil || ref.Kind != "Pod" || ref.Name == "" || (ref.Namespace != "" && ref.Namespace != pSlice.Namespace) {
			continue // not a pod of the tenant's
		}
		vRef, absent, err := r.virtualPod(sctx, types.NamespacedName{Namespace: pSlice.Namespace, Name: ref.Name}, vSvc.Namespace)
		if err != nil {
			return nil, false, err
		}
		if vRef == nil {
			missing = missing || absent
			continue
		}
		out := *ep.DeepCopy()
		out.TargetRef = vRef
		vSlice.Endpoints = append(vSlice.Endpoints, out)
	}
	return vSlice, missing, nil
}

// virtualPod returns a reference to the virtual pod of the host pod pNN if
// that is a synced pod of the virtual namespace vns, nil otherwise; absent
// reports that a cache does not have one of the two pods (yet).
func (r *endpointsReconciler) virtualPod(sctx *synccontext.SyncContext, pNN types.NamespacedName, vns string) (ref *corev1.ObjectReference, absent bool, err error) {
	pPod := &corev1.Pod{}
	if err := sctx.PhysicalClient.Get(sctx.Context, pNN, pPod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("get host pod %s: %w", pNN, err)
	}
	if managed, err := r.t.IsManaged(pPod); err != nil || !managed {
		return nil, false, err
	}
	vNN := r.t.PhysicalToVirtual(pPod)
	if vNN.Name == "" || vNN.Namespace != vns {
		return nil, false, nil
	}
	vPod := &corev1.Pod{}
	if err := sctx.VirtualClient.Get(sctx.Context, vNN, vPod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("get virtual pod %s: %w", vNN, err)
	}
	return &corev1.ObjectReference{Kind: "Pod", Namespace: vNN.Namespace, Name: vNN.Name, UID: vPod.UID}, false, nil
}
