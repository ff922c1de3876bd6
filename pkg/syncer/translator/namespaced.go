package translator

import (
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Namespaced translates namespaced objects: the virtual object name in
// namespace ns becomes "name-x-ns-x-<vcluster>" in the host's target
// namespace. Names that would be longer than 63 characters, or that could be
// read two ways, become a readable prefix plus a stable hash instead. The
// virtual name and namespace are always kept in annotations, so the mapping
// is reversible for every managed host object.
type Namespaced struct {
	vcluster        string
	targetNamespace string
}

var _ NameTranslator = (*Namespaced)(nil)

// NewNamespaced returns the translator for the virtual cluster vcluster whose
// objects go to the host namespace targetNamespace.
func NewNamespaced(vcluster, targetNamespace string) (*Namespaced, error) {
	if err := ValidateVirtualClusterName(vcluster); err != nil {
		return nil, err
	}
	if targetNamespace == "" {
		return nil, errEmptyTarget
	}
	return &Namespaced{vcluster: vcluster, targetNamespace: targetNamespace}, nil
}

// VirtualCluster returns the virtual cluster name the translator was built with.
func (t *Namespaced) VirtualCluster() string { return t.vcluster }

// TargetNamespace returns the host namespace objects are translated into.
func (t *Namespaced) TargetNamespace() string { return t.targetNamespace }

// PhysicalName returns the host name of the virtual object name in namespace.
// The result is at most 63 characters, and distinct (name, namespace) pairs
// give distinct results.
func (t *Namespaced) PhysicalName(name, namespace string) string {
	readable := name + separator + namespace + separator + t.vcluster
	if len(readable) <= MaxNameLength && unambiguous(name) && !looksHashed(readable) {
		return readable
	}
	return hashedName(name+separator+namespace, name, namespace, t.vcluster)
}

// unambiguous reports whether name+"-x-"+rest splits back at the first "-x-"
// into exactly name.
func unambiguous(name string) bool {
	return !strings.Contains(name, separator) && !strings.HasSuffix(name, "-x") && !strings.HasSuffix(name, "-")
}

// VirtualToPhysical implements NameTranslator.
func (t *Namespaced) VirtualToPhysical(req types.NamespacedName, _ client.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: t.targetNamespace, Name: t.PhysicalName(req.Name, req.Namespace)}
}

// PhysicalToVirtual implements NameTranslator. It reads the annotations
// written by TranslateMetadata.
func (t *Namespaced) PhysicalToVirtual(pObj client.Object) types.NamespacedName {
	a := pObj.GetAnnotations()
	if a[AnnotationName] == "" || a[AnnotationNamespace] == "" {
		return types.NamespacedName{}
	}
	return types.NamespacedName{Namespace: a[AnnotationNamespace], Name: a[AnnotationName]}
}

// IsManaged implements NameTranslator: pObj is managed when it lives in the
// target namespace, carries this virtual cluster's managed-by label, and its
// name is the one its annotations translate to.
func (t *Namespaced) IsManaged(pObj client.Object) (bool, error) {
	if pObj.GetNamespace() != t.targetNamespace || pObj.GetLabels()[LabelManagedBy] != t.vcluster {
		return false, nil
	}
	v := t.PhysicalToVirtual(pObj)
	if v.Name == "" {
		return false, nil
	}
	return t.PhysicalName(v.Name, v.Namespace) == pObj.GetName(), nil
}

// TranslateMetadata returns a copy of vObj prepared for the host: host name
// and namespace, translated labels and annotations, and server-set fields
// (resourceVersion, uid, owner references, …) cleared.
func (t *Namespaced) TranslateMetadata(vObj client.Object) client.Object {
	pObj := vObj.DeepCopyObject().(client.Object)
	pObj.SetName(t.PhysicalName(vObj.GetName(), vObj.GetNamespace()))
	pObj.SetNamespace(t.targetNamespace)
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
	pObj.SetLabels(t.TranslateLabels(vObj.GetLabels(), vObj.GetNamespace()))
	pObj.SetAnnotations(t.TranslateAnnotations(vObj.GetAnnotations(), vObj.GetName(), vObj.GetNamespace()))
	return pObj
}
