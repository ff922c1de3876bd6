package syncer

import (
	"context"
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/podkit-dev/podkit/pkg/syncer/internal/fairqueue"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Event reasons recorded on virtual objects.
const (
	// ReasonHostNameTaken means the host object a virtual object maps to
	// exists but was not created by this syncer; it is left alone.
	ReasonHostNameTaken = "HostNameTaken"
	// ReasonSyncError means a sync step failed and will be retried.
	ReasonSyncError = "SyncError"
	// ReasonPolicyRefused means a virtual object carries a host-level
	// setting the syncer's policy (synccontext.Policy) withholds: a pod is
	// not created on the host, a Service field is cleared or downgraded. The
	// message names the field and the permission that would allow it.
	ReasonPolicyRefused = "PolicyRefused"
)

// RegisterSyncer builds the controller of syncer on the virtual manager: it
// watches Resource in the virtual cluster and in the host (mapped back with
// PhysicalToVirtual), applies ModifyController if implemented, and reconciles
// with ctx.Options.Workers workers.
func RegisterSyncer(ctx *synccontext.RegisterContext, syncer Syncer) error {
	r := &syncerReconciler{rc: ctx, syncer: syncer, recorder: recorderFor(ctx, syncer.Name())}
	mapper := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, pObj client.Object) []reconcile.Request {
		if managed, err := syncer.IsManaged(pObj); err != nil || !managed {
			return nil
		}
		nn := syncer.PhysicalToVirtual(pObj)
		if nn.Name == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: nn}}
	})
	b := newBuilder(ctx, syncer.Name(), syncer.Resource()).
		WatchesRawSource(source.Kind(ctx.PhysicalManager.GetCache(), syncer.Resource(), mapper))
	return complete(ctx, syncer, b, r)
}

// RegisterFakeSyncer builds the controller of syncer on the virtual manager.
// It watches only Resource in the virtual cluster; add the watches that call
// for fake objects in ModifyController.
func RegisterFakeSyncer(ctx *synccontext.RegisterContext, syncer FakeSyncer) error {
	r := &fakeReconciler{rc: ctx, syncer: syncer}
	return complete(ctx, syncer, newBuilder(ctx, syncer.Name(), syncer.Resource()), r)
}

// DeleteObject deletes the host object pObj, but only the very object that
// was read: a precondition on its UID keeps a replacement safe.
func DeleteObject(ctx *synccontext.SyncContext, pObj client.Object) (ctrl.Result, error) {
	ctx.Log.V(1).Info("delete host object without virtual object", "namespace", pObj.GetNamespace(), "name", pObj.GetName())
	uid := pObj.GetUID()
	opts := []client.DeleteOption{}
	if uid != "" {
		opts = append(opts, client.Preconditions{UID: &uid})
	}
	if err := ctx.PhysicalClient.Delete(ctx.Context, pObj, opts...); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return ctrl.Result{}, fmt.Errorf("delete host object %s/%s: %w", pObj.GetNamespace(), pObj.GetName(), err)
	}
	return ctrl.Result{}, nil
}

func newBuilder(ctx *synccontext.RegisterContext, name string, obj client.Object) *builder.Builder {
	workers := 1
	if ctx.Options != nil && ctx.Options.Workers > 0 {
		workers = ctx.Options.Workers
	}
	return builder.ControllerManagedBy(ctx.VirtualManager).
		Named(name).
		For(obj).
		// Round-robin across virtual namespaces: a namespace's backlog
		// (a thousand objects applied at once) does not delay another's.
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, NewQueue: fairqueue.NewRateLimiting})
}

func complete(ctx *synccontext.RegisterContext, b Base, bld *builder.Builder, r reconcile.Reconciler) error {
	if m, ok := b.(ControllerModifier); ok {
		var err error
		if bld, err = m.ModifyController(ctx, bld); err != nil {
			return fmt.Errorf("modify controller of syncer %s: %w", b.Name(), err)
		}
	}
	if err := bld.Complete(r); err != nil {
		return fmt.Errorf("build controller of syncer %s: %w", b.Name(), err)
	}
	return nil
}

func recorderFor(ctx *synccontext.RegisterContext, name string) record.EventRecorder {
	if ctx.EventBroadcaster == nil {
		return &record.FakeRecorder{}
	}
	return ctx.EventBroadcaster.NewRecorder(ctx.VirtualManager.GetScheme(), eventSource(name))
}

// newObject returns an empty object of the same type (and, for
// unstructured objects, the same GVK) as proto.
func newObject(proto client.Object) client.Object {
	obj := reflect.New(reflect.TypeOf(proto).Elem()).Interface().(client.Object)
	if u, ok := proto.(runtime.Unstructured); ok {
		obj.(runtime.Unstructured).GetObjectKind().SetGroupVersionKind(u.GetObjectKind().GroupVersionKind())
	}
	return obj
}

// get reads nn into a new object like proto; it returns nil when absent.
func get(ctx context.Context, c client.Client, nn types.NamespacedName, proto client.Object) (client.Object, error) {
	obj := newObject(proto)
	if err := c.Get(ctx, nn, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return obj, nil
}

type syncerReconciler struct {
	rc       *synccontext.RegisterContext
	syncer   Syncer
	recorder record.EventRecorder
}

func (r *syncerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sctx := r.rc.ToSyncContext(ctx, r.syncer.Name())
	sctx.Log = sctx.Log.WithValues("namespace", req.Namespace, "name", req.Name)
	if s, ok := r.syncer.(Starter); ok {
		skip, err := s.ReconcileStart(sctx, req)
		defer s.ReconcileEnd()
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("start reconcile of %s: %w", req, err)
		}
		if skip {
			return ctrl.Result{}, nil
		}
	}
	proto := r.syncer.Resource()
	vObj, err := get(ctx, sctx.VirtualClient, req.NamespacedName, proto)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get virtual object %s: %w", req, err)
	}
	pNN := r.syncer.VirtualToPhysical(req.NamespacedName, vObj)
	pObj, err := get(ctx, sctx.PhysicalClient, pNN, proto)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get host object %s: %w", pNN, err)
	}
	if pObj != nil {
		managed, err := r.syncer.IsManaged(pObj)
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("check host object %s: %w", pNN, err)
		}
		if !managed {
			if vObj != nil {
				sctx.Log.Info("host object exists and is not managed by this syncer; leaving it alone", "hostName", pNN.String())
				r.recorder.Eventf(vObj, "Warning", ReasonHostNameTaken, "host object %s exists and is not managed by this virtual cluster", pNN)
			}
			return ctrl.Result{}, nil
		}
	}
	switch {
	case vObj != nil && pObj == nil:
		return r.reportError(ctx, vObj)(r.syncer.SyncDown(sctx, vObj))
	case vObj != nil:
		return r.reportError(ctx, vObj)(r.syncer.Sync(sctx, pObj, vObj))
	case pObj != nil:
		if up, ok := r.syncer.(UpSyncer); ok {
			return up.SyncUp(sctx, pObj)
		}
		return DeleteObject(sctx, pObj)
	}
	return ctrl.Result{}, nil
}

// reportError returns a pass-through for a sync step's result that records
// a failure as a ReasonSyncError event on vObj, with the error (and so the
// host API server's message, e.g. a quota or Pod Security rejection): a
// virtual object the host refuses no longer waits without a word. A step
// that failed because the syncer is stopping (ctx done) is not reported: the
// tenant would read "context canceled" as a fault of its object.
func (r *syncerReconciler) reportError(ctx context.Context, vObj client.Object) func(ctrl.Result, error) (ctrl.Result, error) {
	return func(res ctrl.Result, err error) (ctrl.Result, error) {
		if err != nil && ctx.Err() == nil {
			r.recorder.Eventf(vObj, corev1.EventTypeWarning, ReasonSyncError, "%v", err)
		}
		return res, err
	}
}

type fakeReconciler struct {
	rc     *synccontext.RegisterContext
	syncer FakeSyncer
}

func (r *fakeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sctx := r.rc.ToSyncContext(ctx, r.syncer.Name())
	sctx.Log = sctx.Log.WithValues("namespace", req.Namespace, "name", req.Name)
	if s, ok := r.syncer.(Starter); ok {
		skip, err := s.ReconcileStart(sctx, req)
		defer s.ReconcileEnd()
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("start reconcile of %s: %w", req, err)
		}
		if skip {
			return ctrl.Result{}, nil
		}
	}
	vObj, err := get(ctx, sctx.VirtualClient, req.NamespacedName, r.syncer.Resource())
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get virtual object %s: %w", req, err)
	}
	if vObj == nil {
		return r.syncer.FakeSyncUp(sctx, req.NamespacedName)
	}
	return r.syncer.FakeSync(sctx, vObj)
}
