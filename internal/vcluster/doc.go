// Package vcluster runs a local virtual cluster on top of a host cluster: a
// second etcd + kube-apiserver + kube-controller-manager from the pinned
// binaries (internal/k8sbin) plus the syncer into one host namespace. It does
// not schedule or run pods itself; the host does.
package vcluster
