// Package referenced limits a syncer of ConfigMaps or Secrets to the objects
// that synced pods use: it indexes virtual pods by the names they reference,
// re-queues those names when a pod changes, and answers whether a virtual
// object is still wanted on the host.
package referenced

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Gate decides which virtual objects of one kind go to the host.
type Gate struct {
	// Index is the field index of virtual pods this gate registers.
	Index string
	// All makes every object wanted (the policy allows them all).
	All bool
	// Refs returns the names vPod references, or nil when vPod is not synced.
	Refs func(vPod *corev1.Pod) []string
}

// RegisterIndices implements syncer.IndicesRegisterer for the syncer that
// embeds the gate: it indexes virtual pods by the names they reference.
func (g Gate) RegisterIndices(ctx *synccontext.RegisterContext) error {
	if g.All {
		return nil
	}
	err := ctx.VirtualManager.GetFieldIndexer().IndexField(ctx.Context, &corev1.Pod{}, g.Index, func(o client.Object) []string {
		return g.Refs(o.(*corev1.Pod))
	})
	if err != nil {
		return fmt.Errorf("index virtual pods by %s: %w", g.Index, err)
	}
	return nil
}

// ModifyController implements syncer.ControllerModifier for the syncer that
// embeds the gate: a change of a virtual pod re-queues every name it
// references.
func (g Gate) ModifyController(_ *synccontext.RegisterContext, b *builder.Builder) (*builder.Builder, error) {
	if g.All {
		return b, nil
	}
	return b.Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		pod := o.(*corev1.Pod)
		var reqs []reconcile.Request
		for _, n := range g.Refs(pod) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: n}})
		}
		return reqs
	})), nil
}

// Wanted reports whether the virtual object vObj belongs on the host: the
// gate allows all, or a synced virtual pod of its namespace references it.
func (g Gate) Wanted(ctx *synccontext.SyncContext, vObj client.Object) (bool, error) {
	if g.All {
		return true, nil
	}
	pods := &corev1.PodList{}
	if err := ctx.VirtualClient.List(ctx.Context, pods, client.InNamespace(vObj.GetNamespace()), client.MatchingFields{g.Index: vObj.GetName()}); err != nil {
		return false, fmt.Errorf("list virtual pods that reference %s/%s: %w", vObj.GetNamespace(), vObj.GetName(), err)
	}
	return len(pods.Items) > 0, nil
}
