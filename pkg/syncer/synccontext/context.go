package synccontext

import (
	"context"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrl "sigs.k8s.io/controller-runtime/pkg/manager"
)

// Options are the settings every syncer may read while registering.
type Options struct {
	// Name is the virtual cluster's name. Host objects are suffixed with it
	// and marked as managed by it. Required.
	Name string
	// Workers is how many reconciles each syncer's controller runs at once.
	Workers int
	// Policy says which host-level settings virtual objects may carry to the
	// host. The zero value withholds them all.
	Policy Policy
	// PodNetwork says where host pods find the virtual API server and DNS.
	// The zero value leaves them as the host makes them.
	PodNetwork PodNetwork
}

// RegisterContext is handed to syncers while they register. The managers are
// not started during Init and RegisterIndices; they are started (and their
// caches synced) before ModifyController and Register run.
type RegisterContext struct {
	// Context is cancelled when the syncer stops.
	Context context.Context
	// Options are the settings shared by all syncers.
	Options *Options

	// TargetNamespace is the host namespace that receives synced objects.
	TargetNamespace string
	// CurrentNamespace is the host namespace the syncer itself runs in
	// (equal to TargetNamespace unless configured otherwise).
	CurrentNamespace string
	// CurrentNamespaceClient is a client for CurrentNamespace on the host.
	CurrentNamespaceClient client.Client

	// VirtualManager watches and writes the virtual cluster.
	VirtualManager ctrl.Manager
	// PhysicalManager watches the host cluster; its cache is limited to
	// TargetNamespace (and cluster-scoped objects).
	PhysicalManager ctrl.Manager

	// EventBroadcaster records events in the virtual cluster.
	EventBroadcaster record.EventBroadcaster
}

// SyncContext is handed to syncers in each reconcile.
type SyncContext struct {
	// Context is the reconcile's context.
	Context context.Context
	// Log is the reconcile's logger, with the syncer name attached.
	Log logr.Logger

	// PhysicalClient reads from the host cache and writes to the host.
	PhysicalClient client.Client
	// VirtualClient reads from the virtual cache and writes to the virtual cluster.
	VirtualClient client.Client

	// TargetNamespace is the host namespace that receives synced objects.
	TargetNamespace string
	// CurrentNamespace is the host namespace the syncer runs in.
	CurrentNamespace string
	// CurrentNamespaceClient is a client for CurrentNamespace on the host.
	CurrentNamespaceClient client.Client
}

// ToSyncContext returns a SyncContext for one reconcile named logName.
func (r *RegisterContext) ToSyncContext(ctx context.Context, logName string) *SyncContext {
	return &SyncContext{
		Context:                ctx,
		Log:                    logr.FromContextOrDiscard(ctx).WithName(logName),
		PhysicalClient:         r.PhysicalManager.GetClient(),
		VirtualClient:          r.VirtualManager.GetClient(),
		TargetNamespace:        r.TargetNamespace,
		CurrentNamespace:       r.CurrentNamespace,
		CurrentNamespaceClient: r.CurrentNamespaceClient,
	}
}
