// Package generic syncs any namespaced kind by GroupVersionKind, as
// unstructured objects: everything but metadata and status flows down, and
// the status flows up when configured. It knows nothing about the kind's
// references (a field naming another object is copied verbatim), so objects
// with a pod template are refused unless the policy allows them.
package generic
