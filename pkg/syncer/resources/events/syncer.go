package events

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Name is the syncer's name, as --sync spells it.
const Name = "events"

// Syncer copies host Events about managed pods up. A virtual Event keeps the
// host Event's name, in the virtual pod's namespace.
type Syncer struct {
	pods            *translator.Namespaced
	hostCache       client.Reader
	targetNamespace string
}

var (
	_ syncer.Syncer   = (*Syncer)(nil)
	_ syncer.UpSyncer = (*Syncer)(nil)
)

// New returns the Event syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	t, err := translator.NewNamespaced(ctx.Options.Name, ctx.TargetNamespace)
	if err != nil {
		return nil, fmt.Errorf("create %s translator: %w", Name, err)
	}
	return &Syncer{pods: t, hostCache: ctx.PhysicalManager.GetClient(), targetNamespace: ctx.TargetNamespace}, nil
}

// Name implements syncer.Base.
func (s *Syncer) Name() string { return Name }

// Resource implements syncer.Syncer.
func (s *Syncer) Resource() client.Object { return &corev1.Event{} }

// involvedPod returns the managed host pod pEvent is about, or nil.
func (s *Syncer) involvedPod(pObj client.Object) (*corev1.Pod, error) {
	ref := pObj.(*corev1.Event).InvolvedObject
	if pObj.GetNamespace() != s.targetNamespace || ref.Kind != "Pod" || ref.Namespace != s.targetNamespace {
		return nil, nil
	}
	pPod := &corev1.Pod{}
	if err := s.hostCache.Get(context.Background(), types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, pPod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get host pod %s: %w", ref.Name, err)
	}
	if managed, err := s.pods.IsManaged(pPod); err != nil || !managed {
		return nil, err
	}
	return pPod, nil
}

// IsManaged implements translator.NameTranslator: a host Event is synced
// when it is about a managed host pod.
func (s *Syncer) IsManaged(pObj client.Object) (bool, error) {
	pPod, err := s.involvedPod(pObj)
	return pPod != nil, err
}

// VirtualToPhysical implements translator.NameTranslator.
func (s *Syncer) VirtualToPhysical(req types.NamespacedName, _ client.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: s.targetNamespace, Name: req.Name}
}

// PhysicalToVirtual implements translator.NameTranslator.
func (s *Syncer) PhysicalToVirtual(pObj client.Object) types.NamespacedName {
	pPod, err := s.involvedPod(pObj)
	if err != nil || pPod == nil {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: s.pods.PhysicalToVirtual(pPod).Namespace, Name: pObj.GetName()}
}

// SyncDown implements syncer.Syncer: virtual Events stay virtual.
func (s *Syncer) SyncDown(*synccontext.SyncContext, client.Object) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

// Sync implements syncer.Syncer: count, message and timestamps follow the host.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	pEvent, vEvent := pObj.(*corev1.Event), vObj.(*corev1.Event)
	if pEvent.Count == vEvent.Count && pEvent.Message == vEvent.Message && pEvent.LastTimestamp.Equal(&vEvent.LastTimestamp) {
		return ctrl.Result{}, nil
	}
	next := vEvent.DeepCopy()
	next.Count, next.Message, next.LastTimestamp, next.Series = pEvent.Count, pEvent.Message, pEvent.LastTimestamp, pEvent.Series
	return hostsync.Update(ctx, ctx.VirtualClient, next, "virtual")
}

// SyncUp implements syncer.UpSyncer: the host Event is copied into the
// virtual pod's namespace, pointing at the virtual pod.
func (s *Syncer) SyncUp(ctx *synccontext.SyncContext, pObj client.Object) (ctrl.Result, error) {
	pPod, err := s.involvedPod(pObj)
	if err != nil || pPod == nil {
		return ctrl.Result{}, err
	}
	vNN := s.pods.PhysicalToVirtual(pPod)
	vPod := &corev1.Pod{}
	if err := ctx.VirtualClient.Get(ctx.Context, vNN, vPod); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil // the pod is gone; so is the point of its events
		}
		return ctrl.Result{}, fmt.Errorf("get virtual pod %s: %w", vNN, err)
	}
	pEvent := pObj.(*corev1.Event)
	vEvent := pEvent.DeepCopy()
	vEvent.ObjectMeta = *pEvent.ObjectMeta.DeepCopy()
	vEvent.Namespace = vNN.Namespace
	vEvent.ResourceVersion, vEvent.UID, vEvent.ManagedFields, vEvent.CreationTimestamp = "", "", nil, pEvent.CreationTimestamp
	vEvent.InvolvedObject.Namespace, vEvent.InvolvedObject.Name, vEvent.InvolvedObject.UID = vNN.Namespace, vNN.Name, vPod.UID
	vEvent.InvolvedObject.ResourceVersion = ""
	if err := ctx.VirtualClient.Create(ctx.Context, vEvent); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create virtual event %s: %w", vEvent.Name, err)
	}
	return ctrl.Result{}, nil
}
