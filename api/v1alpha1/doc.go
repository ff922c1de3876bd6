// Package v1alpha1 holds the podkit.dev/v1alpha1 API: the Framework, a gang
// of task roles whose tasks each run as one pod, with retry and completion
// policies. Field names follow FrameworkController's Framework so that its
// users only change apiVersion. It holds types and constants only; the
// controller lives in pkg/framework.
//
// +kubebuilder:object:generate=true
// +groupName=podkit.dev
package v1alpha1
