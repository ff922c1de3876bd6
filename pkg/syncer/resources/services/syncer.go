package services

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Name is the syncer's name, as --sync spells it.
const Name = "services"

// Syncer syncs Services: spec down, load-balancer status up. Settings that
// expose the host (NodePort and LoadBalancer types, externalIPs, …) are
// cleared on the host unless the policy allows them; the virtual Service
// then gets a Warning event with reason syncer.ReasonPolicyRefused.
type Syncer struct {
	hostsync.Base
	// virtualReader reads the virtual API server without the cache.
	virtualReader client.Reader
}

var (
	_ syncer.Syncer   = (*Syncer)(nil)
	_ syncer.UpSyncer = (*Syncer)(nil)
)

// AnnotationRefused, on a host Service, lists the virtual settings the
// policy cleared; a change of it is reported once as an event.
const AnnotationRefused = "podkit.dev/refused"

// New returns the Service syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	base, err := hostsync.NewBase(ctx, Name, &corev1.Service{})
	if err != nil {
		return nil, err
	}
	return &Syncer{Base: base, virtualReader: ctx.VirtualManager.GetAPIReader()}, nil
}

// translate returns the host Service for vSvc: metadata translated, the
// selector's keys rewritten and scoped to the virtual namespace, addresses
// and node ports left for the host to allocate (a headless Service stays
// headless), and host exposure cleared unless the policy allows it. The
// cleared settings are listed in AnnotationRefused.
func (s *Syncer) translate(vSvc *corev1.Service) *corev1.Service {
	pSvc := s.TranslateMetadata(vSvc).(*corev1.Service)
	spec := &pSvc.Spec
	spec.Selector = s.TranslateSelector(vSvc.Spec.Selector, vSvc.Namespace)
	if spec.ClusterIP != corev1.ClusterIPNone {
		spec.ClusterIP = ""
		spec.ClusterIPs = nil
	}
	for i := range spec.Ports {
		spec.Ports[i].NodePort = 0
	}
	spec.HealthCheckNodePort = 0
	var refused []string
	refuse := func(field string, perm synccontext.Permission) {
		refused = append(refused, field+" cleared on the host; "+perm.Hint())
	}
	if len(spec.ExternalIPs) > 0 && !s.Policy.Allows(synccontext.AllowExternalIPs) {
		refuse("spec.externalIPs", synccontext.AllowExternalIPs)
		spec.ExternalIPs = nil
	}
	if !s.Policy.Allows(synccontext.AllowServiceExposure) {
		if spec.Type == corev1.ServiceTypeNodePort || spec.Type == corev1.ServiceTypeLoadBalancer {
			refused = append(refused, fmt.Sprintf("spec.type %s is ClusterIP on the host; %s", spec.Type, synccontext.AllowServiceExposure.Hint()))
			spec.Type = corev1.ServiceTypeClusterIP
		}
		if spec.LoadBalancerIP != "" {
			refuse("spec.loadBalancerIP", synccontext.AllowServiceExposure)
		}
		if len(spec.LoadBalancerSourceRanges) > 0 {
			refuse("spec.loadBalancerSourceRanges", synccontext.AllowServiceExposure)
		}
		spec.LoadBalancerIP, spec.LoadBalancerSourceRanges, spec.LoadBalancerClass = "", nil, nil
		spec.AllocateLoadBalancerNodePorts, spec.ExternalTrafficPolicy = nil, ""
	}
	if len(refused) > 0 {
		pSvc.Annotations[AnnotationRefused] = strings.Join(refused, "\n")
	}
	pSvc.Status = corev1.ServiceStatus{}
	return pSvc
}

// report records the settings the policy cleared as a Warning event on vSvc.
func (s *Syncer) report(ctx *synccontext.SyncContext, vSvc *corev1.Service, pSvc *corev1.Service) {
	if msg := pSvc.Annotations[AnnotationRefused]; msg != "" {
		ctx.Log.Info("virtual Service settings refused by the syncer policy", "refused", msg)
		s.Recorder.Eventf(vSvc, corev1.EventTypeWarning, syncer.ReasonPolicyRefused, "%s", strings.ReplaceAll(msg, "\n", "; "))
	}
}

// SyncDown implements syncer.Syncer: it creates the host Service.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	vSvc := vObj.(*corev1.Service)
	pSvc := s.translate(vSvc)
	s.report(ctx, vSvc, pSvc)
	return hostsync.Create(ctx, pSvc)
}

// Sync implements syncer.Syncer: the virtual Service takes the host's
// cluster IPs (see adoptClusterIP); ports, selector, type and metadata flow
// down; the host's load-balancer status flows up.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	vSvc := vObj.(*corev1.Service)
	pSvc := pObj.(*corev1.Service)
	want := s.translate(vSvc)
	if want.Spec.Type != pSvc.Spec.Type || (want.Spec.ClusterIP == corev1.ClusterIPNone) != (pSvc.Spec.ClusterIP == corev1.ClusterIPNone) {
		// Type and headlessness changes are easiest (and safest) as a recreate.
		return syncer.DeleteObject(ctx, pObj)
	}
	retry := ctrl.Result{}
	if needsClusterIP(vSvc, pSvc) {
		adopted, err := s.adoptClusterIP(ctx, vSvc, pSvc)
		if err != nil {
			return ctrl.Result{}, err
		}
		if adopted {
			return ctrl.Result{}, nil // the new virtual Service's event brings it back
		}
		retry.RequeueAfter = adoptRetry
	}
	if !equality.Semantic.DeepEqual(vSvc.Status.LoadBalancer, pSvc.Status.LoadBalancer) {
		up := vSvc.DeepCopy()
		up.Status.LoadBalancer = pSvc.Status.LoadBalancer
		res, err := hostsync.UpdateStatus(ctx, ctx.VirtualClient, up, "virtual")
		return orRetry(res, retry), err
	}
	res, err := s.syncSpec(ctx, vSvc, pSvc, want)
	return orRetry(res, retry), err
}

// orRetry returns res, or retry when res asks for nothing.
func orRetry(res, retry ctrl.Result) ctrl.Result {
	if res.IsZero() {
		return retry
	}
	return res
}

// syncSpec writes what changed of want (ports, selector, affinity, …) to the
// host Service pSvc, keeping what the host allocated.
func (s *Syncer) syncSpec(ctx *synccontext.SyncContext, vSvc, pSvc, want *corev1.Service) (ctrl.Result, error) {
	next := pSvc.DeepCopy()
	changed := hostsync.MetadataChanged(next, want)
	if next.Annotations[AnnotationRefused] != pSvc.Annotations[AnnotationRefused] {
		s.report(ctx, vSvc, want)
	}
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
		next.Spec.PublishNotReadyAddresses != want.Spec.PublishNotReadyAddresses ||
		!equality.Semantic.DeepEqual(next.Spec.ExternalIPs, want.Spec.ExternalIPs) ||
		!equality.Semantic.DeepEqual(next.Spec.LoadBalancerSourceRanges, want.Spec.LoadBalancerSourceRanges) ||
		next.Spec.LoadBalancerIP != want.Spec.LoadBalancerIP {
		next.Spec.Ports, next.Spec.Selector = ports, want.Spec.Selector
		next.Spec.SessionAffinity, next.Spec.ExternalName = want.Spec.SessionAffinity, want.Spec.ExternalName
		next.Spec.PublishNotReadyAddresses = want.Spec.PublishNotReadyAddresses
		next.Spec.ExternalIPs, next.Spec.LoadBalancerSourceRanges = want.Spec.ExternalIPs, want.Spec.LoadBalancerSourceRanges
		next.Spec.LoadBalancerIP = want.Spec.LoadBalancerIP
		changed = true
	}
	if !changed {
		return ctrl.Result{}, nil
	}
	return hostsync.Update(ctx, ctx.PhysicalClient, next, "host")
}

// SyncUp implements syncer.UpSyncer: a managed host Service without a
// virtual one is deleted, unless the virtual API server still has it. The
// check reads past the cache, which may not yet have seen a virtual Service
// that adoptClusterIP just recreated.
func (s *Syncer) SyncUp(ctx *synccontext.SyncContext, pObj client.Object) (ctrl.Result, error) {
	nn := s.PhysicalToVirtual(pObj)
	if nn.Name != "" {
		err := s.virtualReader.Get(ctx.Context, nn, &corev1.Service{})
		if err == nil {
			return ctrl.Result{}, nil // its watch event brings it to Sync
		}
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get virtual Service %s: %w", nn, err)
		}
	}
	return syncer.DeleteObject(ctx, pObj)
}
