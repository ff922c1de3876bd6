package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Widget is a thing made of parts.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wd;wdg,categories=things,scope=Cluster
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired Widget.
	Spec WidgetSpec `json:"spec"`
	// +optional
	Status *WidgetStatus `json:"status,omitempty"`
}

// WidgetList is a list of Widgets.
//
// +kubebuilder:object:root=true
type WidgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Widget `json:"items"`
}

// WidgetSpec is what a Widget should be.
//
// +kubebuilder:validation:XValidation:rule="self.size > 0 || !has(self.parts)",message="a widget of size 0 has no parts, not even \"spare\" ones",fieldPath=".parts"
type WidgetSpec struct {
	Common `json:",inline"`

	// Size is how big, in FC_SIZE_UNIT units.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Size int32 `json:"size"`
	// Color is the paint; a or b | c.
	// +kubebuilder:default=Red
	// +optional
	Color Color `json:"color,omitempty"`
	// Parts are the parts, by name.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=8
	// +optional
	Parts []Part `json:"parts"`
	// Labels must be given even though empty.
	// +required
	Labels map[string]Part `json:"labels,omitempty"`
	// Template is the pod of each part.
	// +optional
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`

	Secret   string `json:"-"`
	internal string
}

// Common holds fields shared by every spec.
type Common struct {
	// Owner is who answers for the widget.
	// +kubebuilder:validation:MinLength=1
	Owner string `json:"owner"`
}

// Color is a paint color.
// +kubebuilder:validation:Enum=Red;Blue
type Color string

// Colors, in order of preference.
const (
	// ColorRed is red.
	ColorRed Color = "Red"
	// ColorBlue is blue.
	ColorBlue Color = "Blue"
)

// Part is one part of a widget; parts nest.
type Part struct {
	// Name is the part's name.
	Name string `json:"name"`
	// Children are the part's own parts.
	// +optional
	Children []Part `json:"children,omitempty"`
}

// WidgetStatus is what a Widget is.
type WidgetStatus struct {
	// BuiltAt is when the widget was built.
	BuiltAt metav1.Time `json:"builtAt"`
	// Phase is how far the build got.
	Phase Phase `json:"phase,omitempty"`
}

// Phase is a build phase.
type Phase string

// PhaseDone means built.
const PhaseDone Phase = "Done"

// Orphan is exported but no kind uses it: it is not part of the API.
type Orphan struct {
	Name string `json:"name"`
}
