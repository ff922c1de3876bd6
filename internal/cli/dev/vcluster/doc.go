// Package vcluster implements `podkit dev vcluster up|down`: a virtual
// cluster (its own etcd, kube-apiserver and kube-controller-manager) whose
// objects the syncer places in one namespace of the current host cluster.
// The work is done by internal/vcluster.
package vcluster
