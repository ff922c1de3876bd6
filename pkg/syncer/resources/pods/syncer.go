package pods

import (
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Name is the syncer's name, as --sync spells it.
const Name = "pods"

// Syncer syncs Pods: spec down, status and node binding up. A virtual pod
// with a setting its policy refuses (see Check) is not created on the host;
// it gets a Warning event with reason syncer.ReasonPolicyRefused instead.
type Syncer struct {
	hostsync.Base
	// network says where host pods find the virtual API server and DNS.
	network synccontext.PodNetwork
}

var _ syncer.Syncer = (*Syncer)(nil)

// New returns the Pod syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	base, err := hostsync.NewBase(ctx, Name, &corev1.Pod{})
	if err != nil {
		return nil, err
	}
	return &Syncer{Base: base, network: ctx.Options.PodNetwork}, nil
}

// SyncDown implements syncer.Syncer. A virtual pod that is terminating, or
// that was already bound to a node (its host pod is gone), is deleted at
// once: nothing runs it any more. Otherwise the host pod is created.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	vPod := vObj.(*corev1.Pod)
	if vPod.DeletionTimestamp != nil || vPod.Spec.NodeName != "" {
		ctx.Log.V(1).Info("delete virtual pod whose host pod is gone")
		err := ctx.VirtualClient.Delete(ctx.Context, vPod, client.GracePeriodSeconds(0), client.Preconditions{UID: &vPod.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return ctrl.Result{}, fmt.Errorf("delete virtual pod %s/%s: %w", vPod.Namespace, vPod.Name, err)
		}
		return ctrl.Result{}, nil
	}
	if violations := Check(s.Policy, vPod); len(violations) > 0 {
		msgs := make([]string, len(violations))
		for i, v := range violations {
			msgs[i] = v.String()
		}
		ctx.Log.Info("virtual pod refused by the syncer policy; not created on the host", "violations", msgs)
		s.Recorder.Eventf(vPod, corev1.EventTypeWarning, syncer.ReasonPolicyRefused, "not created on the host: %s", strings.Join(msgs, "; "))
		return ctrl.Result{}, nil // a change of the virtual pod or of the policy (a restart) brings it back
	}
	token, err := issueToken(ctx, vPod)
	if err != nil {
		return ctrl.Result{}, err
	}
	return hostsync.Create(ctx, translatePod(s.Namespaced, vPod, token, s.network))
}

// tokenExpiration is how long a token of the virtual cluster given to a host
// pod lasts: it is not refreshed, and it dies with the virtual pod it is
// bound to (the API server may cap it shorter).
const tokenExpiration = int64(365 * 24 * 60 * 60)

// issueToken asks the virtual API server for a token of vPod's service
// account, bound to vPod, with the audience of its injected token volume;
// "" when vPod has no such volume (automountServiceAccountToken off).
func issueToken(ctx *synccontext.SyncContext, vPod *corev1.Pod) (string, error) {
	src := tokenSource(vPod)
	if src == nil {
		return "", nil
	}
	sa := vPod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(tokenExpiration),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: vPod.Name, UID: vPod.UID},
	}}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: vPod.Namespace, Name: sa}}
	if err := ctx.VirtualClient.SubResource("token").Create(ctx.Context, account, tr); err != nil {
		return "", fmt.Errorf("request a token of virtual service account %s/%s for pod %s: %w", vPod.Namespace, sa, vPod.Name, err)
	}
	return tr.Status.Token, nil
}

// Sync implements syncer.Syncer.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	vPod, pPod := vObj.(*corev1.Pod), pObj.(*corev1.Pod)

	// Deletion flows down with the virtual grace period.
	if vPod.DeletionTimestamp != nil {
		if pPod.DeletionTimestamp != nil {
			return ctrl.Result{}, nil
		}
		opts := []client.DeleteOption{client.Preconditions{UID: &pPod.UID}}
		if vPod.DeletionGracePeriodSeconds != nil {
			opts = append(opts, client.GracePeriodSeconds(*vPod.DeletionGracePeriodSeconds))
		}
		if err := ctx.PhysicalClient.Delete(ctx.Context, pPod, opts...); err != nil && !apierrors.IsNotFound(err) {
			return hostsync.Result(err, "delete host pod "+pPod.Name)
		}
		return ctrl.Result{}, nil
	}

	// The host scheduled the pod: bind the virtual pod to the same node.
	if pPod.Spec.NodeName != "" && vPod.Spec.NodeName == "" {
		binding := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Namespace: vPod.Namespace, Name: vPod.Name, UID: vPod.UID},
			Target:     corev1.ObjectReference{Kind: "Node", Name: pPod.Spec.NodeName},
		}
		if err := ctx.VirtualClient.SubResource("binding").Create(ctx.Context, vPod, binding); err != nil {
			return hostsync.Result(err, "bind virtual pod "+vPod.Name)
		}
		return ctrl.Result{}, nil // the binding event brings the pod back
	}

	// Status flows up.
	if !equality.Semantic.DeepEqual(vPod.Status, pPod.Status) {
		up := vPod.DeepCopy()
		up.Status = *pPod.Status.DeepCopy()
		return hostsync.UpdateStatus(ctx, ctx.VirtualClient, up, "virtual")
	}

	// Mutable spec fields and metadata flow down.
	want := translatePod(s.Namespaced, vPod, pPod.Annotations[AnnotationToken], s.network) // the token issued at creation
	next := pPod.DeepCopy()
	changed := hostsync.MetadataChanged(next, want)
	for _, pair := range []struct{ want, next []corev1.Container }{
		{want.Spec.Containers, next.Spec.Containers}, {want.Spec.InitContainers, next.Spec.InitContainers},
	} {
		for i := range pair.next {
			if i < len(pair.want) && pair.next[i].Image != pair.want[i].Image {
				pair.next[i].Image = pair.want[i].Image
				changed = true
			}
		}
	}
	if !equality.Semantic.DeepEqual(next.Spec.ActiveDeadlineSeconds, want.Spec.ActiveDeadlineSeconds) {
		next.Spec.ActiveDeadlineSeconds = want.Spec.ActiveDeadlineSeconds
		changed = true
	}
	if !changed {
		return ctrl.Result{}, nil
	}
	return hostsync.Update(ctx, ctx.PhysicalClient, next, "host")
}
