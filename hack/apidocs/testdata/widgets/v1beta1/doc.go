// Package v1beta1 is a fixture for the apidocs tests: a Widget kind that
// uses every construct the generator renders.
//
// +kubebuilder:object:generate=true
// +groupName=example.dev
package v1beta1
