package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every podkit resource.
const GroupName = "podkit.dev"

// GroupVersion is the group and version of this package's types.
var GroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// FrameworkGroupVersionKind identifies the Framework kind, for owner
// references and events.
var FrameworkGroupVersionKind = GroupVersion.WithKind("Framework")

// SchemeBuilder registers this package's types with a scheme.
var SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

// AddToScheme adds Framework and FrameworkList to a scheme.
var AddToScheme = SchemeBuilder.AddToScheme

// Resource returns a GroupResource of this group, for API errors.
func Resource(resource string) schema.GroupResource {
	return GroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &Framework{}, &FrameworkList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
