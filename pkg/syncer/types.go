package syncer

import (
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	context "github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Base identifies a plug-in by name. Everything else is additive: a plug-in
// may implement any of the interfaces below, and one that implements only
// Initializer or IndicesRegisterer is valid too.
type Base interface {
	Name() string
}

// Syncer is a controller on the virtual cluster, fed by events of Resource in
// the virtual cluster and, mapped back through PhysicalToVirtual, of the
// managed host objects. For each virtual name the engine calls exactly one
// of SyncDown (virtual only), Sync (both), SyncUp or DeleteObject (host only).
type Syncer interface {
	Base
	translator.NameTranslator

	// Resource is the typed resource (e.g. &corev1.Pod{}) synced between the
	// host and the virtual cluster, namespaced or cluster-scoped.
	Resource() client.Object

	// SyncDown is called when the virtual object exists and its host object
	// does not; typically it creates the host object. vObj may be terminating.
	SyncDown(ctx *context.SyncContext, vObj client.Object) (ctrl.Result, error)

	// Sync is called when both objects exist and either may have changed.
	// It reconciles without knowing which changed: spec usually flows down
	// (virtual → host) and status up (host → virtual).
	Sync(ctx *context.SyncContext, pObj client.Object, vObj client.Object) (ctrl.Result, error)
}

// UpSyncer takes control of the case where only the (managed) host object
// exists. Without it, the engine deletes that host object.
type UpSyncer interface {
	// SyncUp is called when a managed host object has no virtual object.
	SyncUp(ctx *context.SyncContext, pObj client.Object) (ctrl.Result, error)
}

// FakeSyncer is a controller on the virtual cluster that creates objects the
// virtual cluster needs but the host does not share, such as Nodes named by
// pods' spec.nodeName. It usually implements ControllerModifier to watch the
// objects that need the fake ones.
type FakeSyncer interface {
	Base

	// Resource is the typed resource (e.g. &corev1.Node{}) created in the
	// virtual cluster.
	Resource() client.Object

	// FakeSyncUp is called when the object req does not exist in the virtual cluster.
	FakeSyncUp(ctx *context.SyncContext, req types.NamespacedName) (ctrl.Result, error)

	// FakeSync is called when the object exists in the virtual cluster.
	FakeSync(ctx *context.SyncContext, vObj client.Object) (ctrl.Result, error)
}

// Starter runs before and after every reconcile of a Syncer or FakeSyncer.
type Starter interface {
	// ReconcileStart runs before the reconcile; returning true skips the rest
	// of it, an error fails it (and requeues).
	ReconcileStart(ctx *context.SyncContext, req ctrl.Request) (bool, error)
	// ReconcileEnd runs after every reconcile that ReconcileStart began.
	ReconcileEnd()
}

// Initializer runs first, before the managers start: their clients cannot
// read yet, so build a client from ctx.VirtualManager.GetConfig() if needed.
// The order is Init, then RegisterIndices, then ModifyController.
type Initializer interface {
	Init(registerContext *context.RegisterContext) error
}

// IndicesRegisterer adds cache indices, after Init and before the managers start.
type IndicesRegisterer interface {
	RegisterIndices(ctx *context.RegisterContext) error
}

// ControllerModifier changes a Syncer's or FakeSyncer's controller (extra
// watches, options). The caches are synced when it runs.
type ControllerModifier interface {
	ModifyController(ctx *context.RegisterContext, builder *builder.Builder) (*builder.Builder, error)
}

// HostReader names host kinds a plug-in reads through the host cache
// besides a Syncer's Resource (e.g. a ControllerStarter that watches host
// EndpointSlices): CheckHostAccess checks them too, so a missing permission
// is named at start rather than found as a cache that never syncs.
type HostReader interface {
	HostResources() []client.Object
}

// ControllerStarter registers a controller of its own, for use cases the
// Syncer abstraction does not fit. The caches are synced when it runs.
type ControllerStarter interface {
	Register(ctx *context.RegisterContext) error
}
