package hostsync

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// This file holds what the endpoints and endpointslices built-ins share:
// both copy the endpoints of selector-less virtual Services down to the
// host copy of the Service, only with --allow service-endpoints.

// SelectorlessService returns the virtual Service key if it exists and has
// no selector, nil otherwise. of names the object the Service is looked up
// for in the error ("EndpointSlice x", "its Endpoints").
func SelectorlessService(ctx *synccontext.SyncContext, key types.NamespacedName, of string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	if err := ctx.VirtualClient.Get(ctx.Context, key, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get virtual Service %s/%s of %s: %w", key.Namespace, key.Name, of, err)
	}
	if len(svc.Spec.Selector) > 0 {
		return nil, nil
	}
	return svc, nil
}

// HostPodRef returns the host counterpart of ref, a target reference in an
// endpoints object of the virtual namespace: a reference to the host pod
// for a pod of that namespace, nil for a reference to anything else (which
// the host copy drops), as vcluster's endpoints translation does.
func (b Base) HostPodRef(ref *corev1.ObjectReference, namespace string) *corev1.ObjectReference {
	if ref.Kind != "Pod" || (ref.Namespace != "" && ref.Namespace != namespace) || ref.Name == "" {
		return nil
	}
	pod := b.VirtualToPhysical(types.NamespacedName{Namespace: namespace, Name: ref.Name}, nil)
	return &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}
}

// EndpointsAllowed reports whether the host copy of the endpoints of the
// virtual Service svc (nil: none, or one with a selector) is to be kept.
func (b Base) EndpointsAllowed(svc *corev1.Service) bool {
	return svc != nil && b.Policy.Allows(synccontext.AllowServiceEndpoints)
}

// SyncDownEndpoints is the SyncDown of an endpoints object vObj: nothing
// for one being deleted or whose Service (as selectorless returns it) is
// not selector-less; a syncer.ReasonPolicyRefused event when the policy
// withholds it; otherwise the host object translate returns is created.
func (b Base) SyncDownEndpoints(ctx *synccontext.SyncContext, vObj client.Object,
	selectorless func() (*corev1.Service, error), translate func(svc *corev1.Service) client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	svc, err := selectorless()
	if err != nil || svc == nil {
		return ctrl.Result{}, err
	}
	if !b.Policy.Allows(synccontext.AllowServiceEndpoints) {
		b.Recorder.Eventf(vObj, corev1.EventTypeWarning, syncer.ReasonPolicyRefused,
			"endpoints of Service %s not copied to the host; %s", svc.Name, synccontext.AllowServiceEndpoints.Hint())
		return ctrl.Result{}, nil
	}
	return Create(ctx, translate(svc))
}
