package configmaps

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/referenced"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/pods"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Name is the syncer's name, as --sync spells it.
const Name = "configmaps"

// Syncer syncs ConfigMaps down.
//
// By default only ConfigMaps that synced pods use reach the host (vcluster's
// default too: sync.toHost.configMaps.all is false); a host copy nobody uses
// any more is deleted. synccontext.AllowAllConfigMaps syncs them all.
type Syncer struct {
	hostsync.Base
	// Gate gives the syncer its pod index and pod watch
	// (RegisterIndices, ModifyController).
	referenced.Gate
}

var (
	_ syncer.Syncer             = (*Syncer)(nil)
	_ syncer.IndicesRegisterer  = (*Syncer)(nil)
	_ syncer.ControllerModifier = (*Syncer)(nil)
)

// New returns the ConfigMap syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	base, err := hostsync.NewBase(ctx, Name, &corev1.ConfigMap{})
	if err != nil {
		return nil, err
	}
	policy := ctx.Options.Policy
	gate := referenced.Gate{
		Index: "podkit.dev/pod-configmaps",
		All:   policy.Allows(synccontext.AllowAllConfigMaps),
		Refs: func(vPod *corev1.Pod) []string {
			names, _ := pods.SyncedReferences(policy, vPod)
			return names
		},
	}
	return &Syncer{Base: base, Gate: gate}, nil
}

func (s *Syncer) translate(vCM *corev1.ConfigMap) *corev1.ConfigMap {
	pCM := s.TranslateMetadata(vCM).(*corev1.ConfigMap)
	return pCM
}

// SyncDown implements syncer.Syncer: it creates the host ConfigMap.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	if wanted, err := s.Gate.Wanted(ctx, vObj); err != nil || !wanted {
		return ctrl.Result{}, err
	}
	return hostsync.Create(ctx, s.translate(vObj.(*corev1.ConfigMap)))
}

// Sync implements syncer.Syncer: a host ConfigMap no synced pod uses any
// more is deleted; otherwise it is made equal to the virtual one. An immutable host ConfigMap whose data must change is deleted
// and created again on the next reconcile.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	if wanted, err := s.Gate.Wanted(ctx, vObj); err != nil {
		return ctrl.Result{}, err
	} else if !wanted {
		return syncer.DeleteObject(ctx, pObj)
	}
	want := s.translate(vObj.(*corev1.ConfigMap))
	pCM := pObj.(*corev1.ConfigMap).DeepCopy()
	changed := hostsync.MetadataChanged(pCM, want)
	dataChanged := !equality.Semantic.DeepEqual(pCM.Data, want.Data) ||
		!equality.Semantic.DeepEqual(pCM.BinaryData, want.BinaryData) ||
		!equality.Semantic.DeepEqual(pCM.Immutable, want.Immutable)
	if dataChanged && pCM.Immutable != nil && *pCM.Immutable {
		return syncer.DeleteObject(ctx, pObj)
	}
	if !changed && !dataChanged {
		return ctrl.Result{}, nil
	}
	pCM.Data, pCM.BinaryData, pCM.Immutable = want.Data, want.BinaryData, want.Immutable
	return hostsync.Update(ctx, ctx.PhysicalClient, pCM, "host")
}
