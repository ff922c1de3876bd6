package services

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Name is the syncer's name, as --sync spells it.
const Name = "services"

// Syncer syncs Services: spec down, load-balancer status up.
type Syncer struct {
	*translator.Namespaced
}

var _ syncer.Syncer = (*Syncer)(nil)

// New returns the Service syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	t, err := translator.NewNamespaced(ctx.Options.Name, ctx.TargetNamespace)
	if err != nil {
		return nil, fmt.Errorf("create %s translator: %w", Name, err)
	}
	return &Syncer{Namespaced: t}, nil
}

// Name implements syncer.Base.
func (s *Syncer) Name() string { return Name }

// Resource implements syncer.Syncer.
func (s *Syncer) Resource() client.Object { return &corev1.Service{} }

// translate returns the host Service for vSvc: metadata translated, the
// selector scoped to the virtual namespace, addresses and node ports left
// for the host to allocate (a headless Service stays headless).
func (s *Syncer) translate(vSvc *corev1.Service) *corev1.Service {
	pSvc := s.TranslateMetadata(vSvc).(*corev1.Service)
	pSvc.Spec.Selector = s.TranslateSelector(vSvc.Spec.Selector, vSvc.Namespace)
	if pSvc.Spec.ClusterIP != corev1.ClusterIPNone {
		pSvc.Spec.ClusterIP = ""
		pSvc.Spec.ClusterIPs = nil
	}
	for i := range pSvc.Spec.Ports {
		pSvc.Spec.Ports[i].NodePort = 0
	}
	pSvc.Spec.HealthCheckNodePort = 0
	pSvc.Status = corev1.ServiceStatus{}
	return pSvc
}

// SyncDown implements syncer.Syncer: it creates the host Service.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	return hostsync.Create(ctx, s.translate(vObj.(*corev1.Service)))
}

// Sync implements syncer.Syncer: ports, selector, type and metadata flow
// down; the host's load-balancer status flows up.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	vSvc := vObj.(*corev1.Service)
	pSvc := pObj.(*corev1.Service)
	if !equality.Semantic.DeepEqual(vSvc.Status.LoadBalancer, pSvc.Status.LoadBalancer) {
		up := vSvc.DeepCopy()
		up.Status.LoadBalancer = pSvc.Status.LoadBalancer
		return hostsync.UpdateStatus(ctx, ctx.VirtualClient, up, "virtual")
	}
	want := s.translate(vSvc)
	if want.Spec.Type != pSvc.Spec.Type || (want.Spec.ClusterIP == corev1.ClusterIPNone) != (pSvc.Spec.ClusterIP == corev1.ClusterIPNone) {
		// Type and headlessness changes are easiest (and safest) as a recreate.
		return syncer.DeleteObject(ctx, pObj)
	}
	next := pSvc.DeepCopy()
	changed := hostsync.MetadataChanged(next, want)
	ports := make([]corev1.ServicePort, len(want.Spec.Ports))
	for i, p := range want.Spec.Ports {
		if i < len(next.Spec.Ports) && next.Spec.Ports[i].Name == p.Name {
			p.NodePort = next.Spec.Ports[i].NodePort // keep what the host allocated
		}
		ports[i] = p
	}
	if !equality.Semantic.DeepEqual(next.Spec.Ports, ports) ||
		!equality.Semantic.DeepEqual(next.Spec.Selector, want.Spec.Selector) ||
		next.Spec.SessionAffinity != want.Spec.SessionAffinity ||
		next.Spec.ExternalName != want.Spec.ExternalName ||
		next.Spec.PublishNotReadyAddresses != want.Spec.PublishNotReadyAddresses {
		next.Spec.Ports, next.Spec.Selector = ports, want.Spec.Selector
		next.Spec.SessionAffinity, next.Spec.ExternalName = want.Spec.SessionAffinity, want.Spec.ExternalName
		next.Spec.PublishNotReadyAddresses = want.Spec.PublishNotReadyAddresses
		changed = true
	}
	if !changed {
		return ctrl.Result{}, nil
	}
	return hostsync.Update(ctx, ctx.PhysicalClient, next, "host")
}
