package secrets

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
const Name = "secrets"

// Syncer syncs Secrets down.
type Syncer struct {
	*translator.Namespaced
}

var _ syncer.Syncer = (*Syncer)(nil)

// New returns the Secret syncer for ctx's virtual cluster and target namespace.
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
func (s *Syncer) Resource() client.Object { return &corev1.Secret{} }

// SyncDown implements syncer.Syncer: it creates the host Secret.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	vSecret := vObj.(*corev1.Secret)
	if vObj.GetDeletionTimestamp() != nil || vSecret.Type == corev1.SecretTypeServiceAccountToken {
		return ctrl.Result{}, nil
	}
	return hostsync.Create(ctx, s.TranslateMetadata(vSecret))
}

// Sync implements syncer.Syncer: the host Secret is made equal to the
// virtual one; an immutable one whose data must change is recreated.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	want := s.TranslateMetadata(vObj).(*corev1.Secret)
	pSecret := pObj.(*corev1.Secret).DeepCopy()
	changed := hostsync.MetadataChanged(pSecret, want)
	dataChanged := !equality.Semantic.DeepEqual(pSecret.Data, want.Data) ||
		!equality.Semantic.DeepEqual(pSecret.Immutable, want.Immutable)
	if (dataChanged && pSecret.Immutable != nil && *pSecret.Immutable) || pSecret.Type != want.Type {
		return syncer.DeleteObject(ctx, pObj)
	}
	if !changed && !dataChanged {
		return ctrl.Result{}, nil
	}
	pSecret.Data, pSecret.Immutable = want.Data, want.Immutable
	return hostsync.Update(ctx, ctx.PhysicalClient, pSecret, "host")
}
