package translator

import (
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	errEmptyTarget = errors.New("target namespace is empty; set it to the host namespace that receives synced objects")
	metav1Zero     = metav1.Time{}
)

// Cluster translates cluster-scoped objects: the virtual object name becomes
// "name-x-<vcluster>" on the host (hashed past 63 characters), also
// cluster-scoped, with the virtual name kept in an annotation.
type Cluster struct {
	vcluster string
}

var _ NameTranslator = (*Cluster)(nil)

// NewCluster returns the cluster-scoped translator for the virtual cluster vcluster.
func NewCluster(vcluster string) (*Cluster, error) {
	if err := ValidateVirtualClusterName(vcluster); err != nil {
		return nil, err
	}
	return &Cluster{vcluster: vcluster}, nil
}

// PhysicalName returns the host name of the cluster-scoped virtual object name.
func (t *Cluster) PhysicalName(name string) string {
	readable := name + separator + t.vcluster
	if len(readable) <= MaxNameLength && !looksHashed(readable) {
		return readable
	}
	return hashedName(name, name, t.vcluster)
}

// VirtualToPhysical implements NameTranslator.
func (t *Cluster) VirtualToPhysical(req types.NamespacedName, _ client.Object) types.NamespacedName {
	return types.NamespacedName{Name: t.PhysicalName(req.Name)}
}

// PhysicalToVirtual implements NameTranslator.
func (t *Cluster) PhysicalToVirtual(pObj client.Object) types.NamespacedName {
	return types.NamespacedName{Name: pObj.GetAnnotations()[AnnotationName]}
}

// IsManaged implements NameTranslator.
func (t *Cluster) IsManaged(pObj client.Object) (bool, error) {
	if pObj.GetNamespace() != "" || pObj.GetLabels()[LabelManagedBy] != t.vcluster {
		return false, nil
	}
	name := pObj.GetAnnotations()[AnnotationName]
	return name != "" && t.PhysicalName(name) == pObj.GetName(), nil
}

// TranslateMetadata returns a copy of the cluster-scoped vObj prepared for
// the host (see Namespaced.TranslateMetadata).
func (t *Cluster) TranslateMetadata(vObj client.Object) client.Object {
	pObj := vObj.DeepCopyObject().(client.Object)
	pObj.SetName(t.PhysicalName(vObj.GetName()))
	pObj.SetGenerateName("")
	pObj.SetResourceVersion("")
	pObj.SetUID("")
	pObj.SetGeneration(0)
	pObj.SetCreationTimestamp(metav1Zero)
	pObj.SetDeletionTimestamp(nil)
	pObj.SetDeletionGracePeriodSeconds(nil)
	pObj.SetOwnerReferences(nil)
	pObj.SetFinalizers(nil)
	pObj.SetManagedFields(nil)
	labels := copyWithout(vObj.GetLabels())
	labels[LabelManagedBy] = t.vcluster
	pObj.SetLabels(labels)
	annotations := copyWithout(vObj.GetAnnotations())
	annotations[AnnotationName] = vObj.GetName()
	pObj.SetAnnotations(annotations)
	return pObj
}
