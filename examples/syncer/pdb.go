package main

import (
	"fmt"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// PDBSyncer syncs PodDisruptionBudgets: spec down with the selector scoped to
// the virtual namespace (as the built-in pod syncer labels host pods), status up.
type PDBSyncer struct {
	*translator.Namespaced
}

var (
	_ syncer.Syncer      = (*PDBSyncer)(nil)
	_ syncer.Initializer = (*PDBSyncer)(nil)
)

// NewPDBSyncer returns the syncer for rc's virtual cluster and target namespace.
func NewPDBSyncer(rc *synccontext.RegisterContext) (*PDBSyncer, error) {
	t, err := translator.NewNamespaced(rc.Options.Name, rc.TargetNamespace)
	if err != nil {
		return nil, fmt.Errorf("create pdb translator: %w", err)
	}
	return &PDBSyncer{Namespaced: t}, nil
}

// Name implements syncer.Base.
func (s *PDBSyncer) Name() string { return "poddisruptionbudgets" }

// Resource implements syncer.Syncer.
func (s *PDBSyncer) Resource() client.Object { return &policyv1.PodDisruptionBudget{} }

// Init implements syncer.Initializer; it runs before the managers start.
func (s *PDBSyncer) Init(rc *synccontext.RegisterContext) error {
	rc.VirtualManager.GetLogger().Info("PDB syncer ready", "targetNamespace", rc.TargetNamespace)
	return nil
}

func (s *PDBSyncer) translate(vPDB *policyv1.PodDisruptionBudget) *policyv1.PodDisruptionBudget {
	pPDB := s.TranslateMetadata(vPDB).(*policyv1.PodDisruptionBudget)
	if sel := vPDB.Spec.Selector; sel != nil {
		// Keys rewritten as on synced pods, and scoped to the virtual
		// namespace's pods, so the PDB never selects a host pod.
		pPDB.Spec.Selector = s.TranslateLabelSelector(sel, vPDB.Namespace)
	}
	pPDB.Status = policyv1.PodDisruptionBudgetStatus{}
	return pPDB
}

// SyncDown implements syncer.Syncer.
func (s *PDBSyncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	pPDB := s.translate(vObj.(*policyv1.PodDisruptionBudget))
	if err := ctx.PhysicalClient.Create(ctx.Context, pPDB); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create host pdb %s: %w", pPDB.Name, err)
	}
	return ctrl.Result{}, nil
}

// Sync implements syncer.Syncer: status up, then spec down.
func (s *PDBSyncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	vPDB, pPDB := vObj.(*policyv1.PodDisruptionBudget), pObj.(*policyv1.PodDisruptionBudget)
	if !equality.Semantic.DeepEqual(vPDB.Status, pPDB.Status) {
		up := vPDB.DeepCopy()
		up.Status = pPDB.Status
		if err := ctx.VirtualClient.Status().Update(ctx.Context, up); err != nil && !apierrors.IsConflict(err) {
			return ctrl.Result{}, fmt.Errorf("update virtual pdb status %s: %w", vPDB.Name, err)
		}
		return ctrl.Result{}, nil
	}
	want := s.translate(vPDB)
	if equality.Semantic.DeepEqual(want.Spec, pPDB.Spec) && equality.Semantic.DeepEqual(want.Labels, pPDB.Labels) {
		return ctrl.Result{}, nil
	}
	next := pPDB.DeepCopy()
	next.Spec, next.Labels, next.Annotations = want.Spec, want.Labels, want.Annotations
	if err := ctx.PhysicalClient.Update(ctx.Context, next); err != nil && !apierrors.IsConflict(err) {
		return ctrl.Result{}, fmt.Errorf("update host pdb %s: %w", next.Name, err)
	}
	return ctrl.Result{}, nil
}
