package fcv1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// GroupName is FrameworkController's API group.
const GroupName = "frameworkcontroller.microsoft.com"

// GroupVersion is FrameworkController's group and version.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

// FrameworkGroupVersionKind identifies FrameworkController's Framework kind.
var FrameworkGroupVersionKind = GroupVersion.WithKind("Framework")

// SchemeBuilder registers this package's types with a scheme.
var SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Framework{}, &FrameworkList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
})

// AddToScheme adds Framework and FrameworkList to a scheme.
var AddToScheme = SchemeBuilder.AddToScheme

// Framework is a FrameworkController Framework. Its layout is podkit's, so
// a *Framework converts to a *v1alpha1.Framework and back for free (V1alpha1,
// FromV1alpha1), sharing the same memory.
type Framework v1alpha1.Framework

// FrameworkList is a list of FrameworkController Frameworks.
type FrameworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Frameworks.
	Items []Framework `json:"items"`
}

// V1alpha1 views f as podkit's type.
func (f *Framework) V1alpha1() *v1alpha1.Framework { return (*v1alpha1.Framework)(f) }

// FromV1alpha1 views a podkit Framework as FrameworkController's type.
func FromV1alpha1(f *v1alpha1.Framework) *Framework { return (*Framework)(f) }

// DeepCopyObject implements runtime.Object.
func (f *Framework) DeepCopyObject() runtime.Object {
	if f == nil {
		return nil
	}
	return FromV1alpha1(f.V1alpha1().DeepCopy())
}

// DeepCopyObject implements runtime.Object.
func (l *FrameworkList) DeepCopyObject() runtime.Object {
	if l == nil {
		return nil
	}
	out := &FrameworkList{TypeMeta: l.TypeMeta}
	l.ListMeta.DeepCopyInto(&out.ListMeta)
	if l.Items != nil {
		out.Items = make([]Framework, len(l.Items))
		for i := range l.Items {
			l.Items[i].V1alpha1().DeepCopyInto(out.Items[i].V1alpha1())
		}
	}
	return out
}
