// Package helm checks podkit's Helm chart (charts/podkit) with the pinned
// helm binary (make tools builds it from its module): it lints strictly,
// renders the same controller, CRD and rules as config/, changes what each
// value names and nothing else, refuses bad values by name, and its output
// is accepted by a real kube-apiserver (server-side dry run), whose RBAC then
// grants the controller what it needs and no more.
package helm
