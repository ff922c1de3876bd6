package secrets

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
const Name = "secrets"

// Syncer syncs Secrets down.
//
// By default only Secrets that synced pods use reach the host (vcluster's
// default too: sync.toHost.secrets.all is false); a host copy nobody uses
// any more is deleted. synccontext.AllowAllSecrets syncs them all.
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

// New returns the Secret syncer for ctx's virtual cluster and target namespace.
func New(ctx *synccontext.RegisterContext) (*Syncer, error) {
	base, err := hostsync.NewBase(ctx, Name, &corev1.Secret{})
	if err != nil {
		return nil, err
	}
	policy := ctx.Options.Policy
	gate := referenced.Gate{
		Index: "podkit.dev/pod-secrets",
		All:   policy.Allows(synccontext.AllowAllSecrets),
		Refs: func(vPod *corev1.Pod) []string {
			_, names := pods.SyncedReferences(policy, vPod)
			return names
		},
	}
	return &Syncer{Base: base, Gate: gate}, nil
}

// SyncDown implements syncer.Syncer: it creates the host Secret.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	vSecret := vObj.(*corev1.Secret)
	if vObj.GetDeletionTimestamp() != nil || vSecret.Type == corev1.SecretTypeServiceAccountToken {
		return ctrl.Result{}, nil
	}
	if wanted, err := s.Gate.Wanted(ctx, vSecret); err != nil || !wanted {
		return ctrl.Result{}, err
	}
	return hostsync.Create(ctx, s.TranslateMetadata(vSecret))
}

// Sync implements syncer.Syncer: a host Secret no synced pod uses any more is
// deleted; otherwise it is made equal to the virtual one; an immutable one whose data must change is recreated.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	if wanted, err := s.Gate.Wanted(ctx, vObj); err != nil {
		return ctrl.Result{}, err
	} else if !wanted {
		return syncer.DeleteObject(ctx, pObj)
	}
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
