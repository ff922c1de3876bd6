// Package hostsync holds the create/update steps the built-in syncers share:
// create without ever overwriting, update with the cached resourceVersion so
// a replaced object is never clobbered, and conflicts turned into requeues.
package hostsync

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Recorder returns an event recorder for the virtual cluster, with the same
// source as the engine's events ("podkit-syncer/<name>"); a discarding one
// when ctx has no broadcaster.
func Recorder(ctx *synccontext.RegisterContext, name string) record.EventRecorder {
	if ctx.EventBroadcaster == nil {
		return &record.FakeRecorder{}
	}
	return ctx.EventBroadcaster.NewRecorder(ctx.VirtualManager.GetScheme(), corev1.EventSource{Component: "podkit-syncer/" + name})
}

// conflictRetry is how soon a reconcile that lost a write race runs again.
const conflictRetry = 20 * time.Millisecond

// Create creates the host object pObj. An object of that name that already
// exists is left alone: the host watch brings it back to the engine, which
// syncs it only if it is managed.
func Create(ctx *synccontext.SyncContext, pObj client.Object) (ctrl.Result, error) {
	ctx.Log.V(1).Info("create host object", "hostName", pObj.GetName())
	if err := ctx.PhysicalClient.Create(ctx.Context, pObj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("create host object %s/%s: %w", pObj.GetNamespace(), pObj.GetName(), err)
	}
	return ctrl.Result{}, nil
}

// Update writes obj (read from a cache and changed) with c. A conflict means
// the cache was stale: the reconcile is requeued instead of failing.
func Update(ctx *synccontext.SyncContext, c client.Client, obj client.Object, where string) (ctrl.Result, error) {
	ctx.Log.V(1).Info("update "+where+" object", "objectName", obj.GetName())
	if err := c.Update(ctx.Context, obj); err != nil {
		return Result(err, "update "+where+" object "+obj.GetNamespace()+"/"+obj.GetName())
	}
	return ctrl.Result{}, nil
}

// UpdateStatus writes obj's status subresource with c (see Update).
func UpdateStatus(ctx *synccontext.SyncContext, c client.Client, obj client.Object, where string) (ctrl.Result, error) {
	ctx.Log.V(1).Info("update "+where+" status", "objectName", obj.GetName())
	if err := c.Status().Update(ctx.Context, obj); err != nil {
		return Result(err, "update "+where+" status "+obj.GetNamespace()+"/"+obj.GetName())
	}
	return ctrl.Result{}, nil
}

// Result maps a write error: conflicts and not-found (the object changed
// under a stale cache) requeue, other errors are returned wrapped with what.
func Result(err error, what string) (ctrl.Result, error) {
	switch {
	case err == nil:
		return ctrl.Result{}, nil
	case apierrors.IsConflict(err), apierrors.IsNotFound(err):
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	default:
		return ctrl.Result{}, fmt.Errorf("%s: %w", what, err)
	}
}

// MetadataChanged merges the wanted labels and annotations into pObj and
// reports whether that changed anything. Only keys podkit owns (and tenant
// annotations it wrote before) are replaced or removed; keys others wrote on
// the host object (webhooks, the CNI) are kept (see translator.MergeLabels).
func MetadataChanged(pObj, want client.Object) bool {
	changed := false
	if labels := translator.MergeLabels(pObj.GetLabels(), want.GetLabels()); !equalMaps(pObj.GetLabels(), labels) {
		pObj.SetLabels(labels)
		changed = true
	}
	if annotations := translator.MergeAnnotations(pObj.GetAnnotations(), want.GetAnnotations()); !equalMaps(pObj.GetAnnotations(), annotations) {
		pObj.SetAnnotations(annotations)
		changed = true
	}
	return changed
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Base is what every built-in syncer of a namespaced kind carries: its name,
// the kind, the namespaced translator of its virtual cluster, the policy and
// an event recorder. Embedding it leaves a built-in with only its
// translation and sync steps.
type Base struct {
	*translator.Namespaced
	// Policy is the syncer's policy (RegisterContext.Options.Policy).
	Policy synccontext.Policy
	// Recorder records events on virtual objects.
	Recorder record.EventRecorder

	name  string
	proto client.Object
}

// NewBase returns the Base of the built-in name syncing objects like proto
// from ctx's virtual cluster into its target namespace.
func NewBase(ctx *synccontext.RegisterContext, name string, proto client.Object) (Base, error) {
	t, err := translator.NewNamespaced(ctx.Options.Name, ctx.TargetNamespace)
	if err != nil {
		return Base{}, fmt.Errorf("create %s translator: %w", name, err)
	}
	return Base{Namespaced: t, Policy: ctx.Options.Policy, Recorder: Recorder(ctx, name), name: name, proto: proto}, nil
}

// Name implements syncer.Base.
func (b Base) Name() string { return b.name }

// Resource implements syncer.Syncer: a new empty object of the kind.
func (b Base) Resource() client.Object { return b.proto.DeepCopyObject().(client.Object) }
