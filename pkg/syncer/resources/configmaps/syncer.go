package configmaps

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
const Name = "configmaps"

// Syncer syncs ConfigMaps down.
type Syncer struct {
	*translator.Namespaced
}

var _ syncer.Syncer = (*Syncer)(nil)

// New returns the ConfigMap syncer for ctx's virtual cluster and target namespace.
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
func (s *Syncer) Resource() client.Object { return &corev1.ConfigMap{} }

func (s *Syncer) translate(vCM *corev1.ConfigMap) *corev1.ConfigMap {
	pCM := s.TranslateMetadata(vCM).(*corev1.ConfigMap)
	return pCM
}

// SyncDown implements syncer.Syncer: it creates the host ConfigMap.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	return hostsync.Create(ctx, s.translate(vObj.(*corev1.ConfigMap)))
}

// Sync implements syncer.Syncer: the host ConfigMap is made equal to the
// virtual one. An immutable host ConfigMap whose data must change is deleted
// and created again on the next reconcile.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
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
