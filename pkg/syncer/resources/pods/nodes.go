package pods

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// NodeSyncerName is the fake node syncer's name.
const NodeSyncerName = "fake-nodes"

// LabelFakeNode marks Nodes the fake node syncer created (and may delete).
const LabelFakeNode = "podkit.dev/fake-node"

// indexNodeName indexes virtual pods by spec.nodeName.
const indexNodeName = "podkit.dev/spec.nodeName"

// NodeSyncer is a FakeSyncer: a virtual Node exists, marked with
// LabelFakeNode, for as long as a virtual pod is bound to it.
type NodeSyncer struct{}

var (
	_ syncer.FakeSyncer         = NodeSyncer{}
	_ syncer.IndicesRegisterer  = NodeSyncer{}
	_ syncer.ControllerModifier = NodeSyncer{}
)

// Name implements syncer.Base.
func (NodeSyncer) Name() string { return NodeSyncerName }

// Resource implements syncer.FakeSyncer.
func (NodeSyncer) Resource() client.Object { return &corev1.Node{} }

// RegisterIndices implements syncer.IndicesRegisterer: virtual pods by node.
func (NodeSyncer) RegisterIndices(ctx *synccontext.RegisterContext) error {
	return ctx.VirtualManager.GetFieldIndexer().IndexField(ctx.Context, &corev1.Pod{}, indexNodeName, func(o client.Object) []string {
		if n := o.(*corev1.Pod).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	})
}

// ModifyController implements syncer.ControllerModifier: pod events enqueue their node.
func (NodeSyncer) ModifyController(_ *synccontext.RegisterContext, b *builder.Builder) (*builder.Builder, error) {
	return b.Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		if n := o.(*corev1.Pod).Spec.NodeName; n != "" {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: n}}}
		}
		return nil
	})), nil
}

func podsOn(ctx *synccontext.SyncContext, node string) (int, error) {
	list := &corev1.PodList{}
	if err := ctx.VirtualClient.List(ctx.Context, list, client.MatchingFields{indexNodeName: node}); err != nil {
		return 0, fmt.Errorf("list virtual pods on node %s: %w", node, err)
	}
	return len(list.Items), nil
}

// FakeSyncUp implements syncer.FakeSyncer: it creates the fake Node when a
// virtual pod is bound to it.
func (NodeSyncer) FakeSyncUp(ctx *synccontext.SyncContext, req types.NamespacedName) (ctrl.Result, error) {
	n, err := podsOn(ctx, req.Name)
	if err != nil || n == 0 {
		return ctrl.Result{}, err
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:   req.Name,
		Labels: map[string]string{LabelFakeNode: "true", corev1.LabelHostname: req.Name},
	}}
	ctx.Log.V(1).Info("create fake node")
	if err := ctx.VirtualClient.Create(ctx.Context, node); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create fake node %s: %w", req.Name, err)
	}
	return ctrl.Result{}, nil // the node's own event calls FakeSync, which sets its status
}

// FakeSync implements syncer.FakeSyncer: a fake Node with no pods is
// deleted, one with pods is kept Ready. Nodes without LabelFakeNode are not
// touched.
func (NodeSyncer) FakeSync(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	node := vObj.(*corev1.Node)
	if node.Labels[LabelFakeNode] != "true" {
		return ctrl.Result{}, nil
	}
	n, err := podsOn(ctx, node.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if n == 0 {
		ctx.Log.V(1).Info("delete fake node without pods")
		if err := ctx.VirtualClient.Delete(ctx.Context, node, client.Preconditions{UID: &node.UID}); err != nil && !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("delete fake node %s: %w", node.Name, err)
		}
		return ctrl.Result{}, nil
	}
	if isReady(node) {
		return ctrl.Result{}, nil
	}
	next := node.DeepCopy()
	now := metav1.Now()
	next.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "PodkitFakeNode",
		Message: "fake node kept by the podkit syncer", LastHeartbeatTime: now, LastTransitionTime: now,
	}}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110"),
	}
	next.Status.Capacity, next.Status.Allocatable = capacity, capacity
	if err := ctx.VirtualClient.Status().Update(ctx.Context, next); err != nil && !apierrors.IsConflict(err) {
		return ctrl.Result{}, fmt.Errorf("update fake node %s status: %w", node.Name, err)
	}
	return ctrl.Result{}, nil
}

func isReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
