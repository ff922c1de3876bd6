package endpoints

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Name is the syncer's name, as --sync spells it.
const Name = "endpoints"

// Syncer copies the v1 Endpoints of selector-less virtual Services to the
// host, for the host copy of the Service, when the policy allows it.
// v1 Endpoints are deprecated in favour of EndpointSlices (see the
// endpointslices syncer), yet tenants and vcluster still write them.
type Syncer struct {
	hostsync.Base
}

var (
	_ syncer.Syncer             = (*Syncer)(nil)
	_ syncer.ControllerModifier = (*Syncer)(nil)
	_ syncer.Starter            = (*Syncer)(nil)
)

// New returns the Endpoints syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	base, err := hostsync.NewBase(ctx, Name, &corev1.Endpoints{})
	if err != nil {
		return nil, err
	}
	return &Syncer{Base: base}, nil
}

// ModifyController implements syncer.ControllerModifier: a change of a
// virtual Service (a selector added or removed, the Service created after
// its Endpoints) reconciles the Endpoints of the same name.
func (s *Syncer) ModifyController(_ *synccontext.RegisterContext, b *builder.Builder) (*builder.Builder, error) {
	return b.Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, svc client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(svc)}}
	})), nil
}

// ReconcileStart implements syncer.Starter: only the Endpoints of a
// Service without a selector are reconciled. The others are the endpoints
// controllers' of each cluster (the host's builds those of the host copy
// under the same name, which the engine would otherwise report as a host
// name taken); a host copy this syncer wrote before the Service got a
// selector, or lost its Service, is deleted so the host's controller takes
// over, as vcluster's endpoints ReconcileStart does.
func (s *Syncer) ReconcileStart(ctx *synccontext.SyncContext, req ctrl.Request) (bool, error) {
	svc, err := s.selectorless(ctx, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}})
	if err != nil || svc != nil {
		return err != nil, err
	}
	pEp := &corev1.Endpoints{}
	if err := ctx.PhysicalClient.Get(ctx.Context, s.VirtualToPhysical(req.NamespacedName, nil), pEp); err != nil {
		return true, client.IgnoreNotFound(err)
	}
	if managed, err := s.IsManaged(pEp); err != nil || !managed {
		return true, err
	}
	_, err = syncer.DeleteObject(ctx, pEp)
	return true, err
}

// ReconcileEnd implements syncer.Starter.
func (s *Syncer) ReconcileEnd() {}

// selectorless returns the virtual Service of vEp (the Service of the same
// name) if it exists and has no selector, nil otherwise. The virtual API
// server's own default/kubernetes Endpoints never leave the virtual cluster
// (vcluster keeps them apart too: they point at the virtual API server).
func (s *Syncer) selectorless(ctx *synccontext.SyncContext, vEp client.Object) (*corev1.Service, error) {
	if vEp.GetNamespace() == metav1.NamespaceDefault && vEp.GetName() == "kubernetes" {
		return nil, nil
	}
	return hostsync.SelectorlessService(ctx, client.ObjectKeyFromObject(vEp), "its Endpoints")
}

// translate returns the host Endpoints for vEp: metadata translated (so the
// name is the host Service's), addresses and ports as they are, pod
// references pointed at the host pods and references to anything else
// dropped, as vcluster's endpoints translate.go does.
func (s *Syncer) translate(vEp *corev1.Endpoints) *corev1.Endpoints {
	pEp := s.TranslateMetadata(vEp).(*corev1.Endpoints)
	// A tenant's Endpoints are not the host mirroring controller's to skip.
	delete(pEp.Labels, discoveryv1.LabelSkipMirror)
	for i := range pEp.Subsets {
		for _, addrs := range [][]corev1.EndpointAddress{pEp.Subsets[i].Addresses, pEp.Subsets[i].NotReadyAddresses} {
			for j := range addrs {
				if ref := addrs[j].TargetRef; ref != nil {
					addrs[j].TargetRef = s.HostPodRef(ref, vEp.Namespace)
				}
			}
		}
	}
	return pEp
}

// SyncDown implements syncer.Syncer: it creates the host Endpoints, or
// records a syncer.ReasonPolicyRefused event when the policy withholds them.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	vEp := vObj.(*corev1.Endpoints)
	return s.SyncDownEndpoints(ctx, vEp,
		func() (*corev1.Service, error) { return s.selectorless(ctx, vEp) },
		func(*corev1.Service) client.Object { return s.translate(vEp) })
}

// Sync implements syncer.Syncer: subsets and metadata flow down; the host
// Endpoints are deleted once the Service has a selector (the host's
// endpoints controller then builds them from it, as vcluster's
// ReconcileStart arranges) or is gone, or the policy no longer allows them.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	vEp := vObj.(*corev1.Endpoints)
	pEp := pObj.(*corev1.Endpoints)
	svc, err := s.selectorless(ctx, vEp)
	if err != nil {
		return ctrl.Result{}, err
	}
	if !s.EndpointsAllowed(svc) {
		return syncer.DeleteObject(ctx, pObj)
	}
	want := s.translate(vEp)
	next := pEp.DeepCopy()
	changed := hostsync.MetadataChanged(next, want)
	if !equality.Semantic.DeepEqual(next.Subsets, want.Subsets) {
		next.Subsets = want.Subsets
		changed = true
	}
	if !changed {
		return ctrl.Result{}, nil
	}
	return hostsync.Update(ctx, ctx.PhysicalClient, next, "host")
}
