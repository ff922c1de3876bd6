// Package fcv1 serves podkit's Framework under FrameworkController's own
// API group, frameworkcontroller.microsoft.com/v1, for `podkit controller
// --fc-compat`: the same fields and JSON as podkit.dev/v1alpha1, so an FC
// user's manifests, running Frameworks and FC's barrier keep working when
// podkit's controller replaces FC's. Only the root types are defined here;
// everything below them is api/v1alpha1's.
package fcv1
