package endpointslices

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/services"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Name is the syncer's name, as --sync spells it.
const Name = "endpointslices"

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of host
// slices: the host's EndpointSlice controller leaves them alone.
const ManagedBy = "syncer.podkit.dev"

// ManagedByMirroring is the endpointslice.kubernetes.io/managed-by value of
// the slices Kubernetes' EndpointSliceMirroring controller writes for
// Endpoints of Services without a selector.
const ManagedByMirroring = "endpointslicemirroring-controller.k8s.io"

// Syncer copies the EndpointSlices of selector-less virtual Services to the
// host, for the host copy of the Service, when the policy allows it.
type Syncer struct {
	hostsync.Base
	// LeaveMirrored leaves the virtual slices the virtual cluster's
	// mirroring controller made from Endpoints to the endpoints syncer
	// (resources.New sets it when both run), so the host does not get the
	// same addresses twice. Default: false, they are copied like others.
	LeaveMirrored bool
}

var (
	_ syncer.Syncer             = (*Syncer)(nil)
	_ syncer.ControllerModifier = (*Syncer)(nil)
)

// New returns the EndpointSlice syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	base, err := hostsync.NewBase(ctx, Name, &discoveryv1.EndpointSlice{})
	if err != nil {
		return nil, err
	}
	return &Syncer{Base: base}, nil
}

// ModifyController implements syncer.ControllerModifier: a change of a
// virtual Service (a selector added or removed, the Service created after
// its slices) reconciles the slices labelled with its name.
func (s *Syncer) ModifyController(ctx *synccontext.RegisterContext, b *builder.Builder) (*builder.Builder, error) {
	c := ctx.VirtualManager.GetClient()
	return b.Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, svc client.Object) []reconcile.Request {
		list := &discoveryv1.EndpointSliceList{}
		if err := c.List(ctx, list, client.InNamespace(svc.GetNamespace()), client.MatchingLabels{discoveryv1.LabelServiceName: svc.GetName()}); err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(list.Items))
		for _, e := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: e.Namespace, Name: e.Name}})
		}
		return reqs
	})), nil
}

// selectorless returns the virtual Service vSlice belongs to if that
// Service exists and has no selector, nil otherwise (and for a slice the
// services syncer copied up from the host).
func (s *Syncer) selectorless(ctx *synccontext.SyncContext, vSlice *discoveryv1.EndpointSlice) (*corev1.Service, error) {
	name := vSlice.Labels[discoveryv1.LabelServiceName]
	if name == "" || vSlice.Labels[discoveryv1.LabelManagedBy] == services.ManagedByHost {
		return nil, nil
	}
	if s.LeaveMirrored && vSlice.Labels[discoveryv1.LabelManagedBy] == ManagedByMirroring {
		return nil, nil
	}
	return hostsync.SelectorlessService(ctx, types.NamespacedName{Namespace: vSlice.Namespace, Name: name}, "EndpointSlice "+vSlice.Name)
}

// translate returns the host slice for vSlice of the virtual Service svc:
// metadata translated, labelled for the host copy of svc and as podkit's,
// addresses and ports as they are, pod references pointed at the host pods
// (references to anything else dropped).
func (s *Syncer) translate(vSlice *discoveryv1.EndpointSlice, svc *corev1.Service) *discoveryv1.EndpointSlice {
	pSlice := s.TranslateMetadata(vSlice).(*discoveryv1.EndpointSlice)
	pSlice.Labels[discoveryv1.LabelServiceName] = s.VirtualToPhysical(client.ObjectKeyFromObject(svc), svc).Name
	pSlice.Labels[discoveryv1.LabelManagedBy] = ManagedBy
	for i := range pSlice.Endpoints {
		if ref := pSlice.Endpoints[i].TargetRef; ref != nil {
			pSlice.Endpoints[i].TargetRef = s.HostPodRef(ref, vSlice.Namespace)
		}
	}
	return pSlice
}

// SyncDown implements syncer.Syncer: it creates the host slice, or records
// a syncer.ReasonPolicyRefused event when the policy withholds it.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	vSlice := vObj.(*discoveryv1.EndpointSlice)
	return s.SyncDownEndpoints(ctx, vSlice,
		func() (*corev1.Service, error) { return s.selectorless(ctx, vSlice) },
		func(svc *corev1.Service) client.Object { return s.translate(vSlice, svc) })
}

// Sync implements syncer.Syncer: addresses, ports and labels flow down; the
// host slice is deleted once the Service has a selector (or is gone) or the
// policy no longer allows it.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	vSlice := vObj.(*discoveryv1.EndpointSlice)
	pSlice := pObj.(*discoveryv1.EndpointSlice)
	svc, err := s.selectorless(ctx, vSlice)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !s.EndpointsAllowed(svc) {
		return syncer.DeleteObject(ctx, pObj)
	}
	want := s.translate(vSlice, svc)
	next := pSlice.DeepCopy()
	changed := hostsync.MetadataChanged(next, want)
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	for _, k := range []string{discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy} {
		if next.Labels[k] != want.Labels[k] {
			next.Labels[k] = want.Labels[k]
			changed = true
		}
	}
	if next.AddressType != want.AddressType {
		return syncer.DeleteObject(ctx, pObj) // immutable
	}
	if !equality.Semantic.DeepEqual(next.Endpoints, want.Endpoints) || !equality.Semantic.DeepEqual(next.Ports, want.Ports) {
		next.Endpoints, next.Ports = want.Endpoints, want.Ports
		changed = true
	}
	if !changed {
		return ctrl.Result{}, nil
	}
	return hostsync.Update(ctx, ctx.PhysicalClient, next, "host")
}
