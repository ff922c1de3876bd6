// Package toolbuild builds podkit's pinned control plane (etcd, kube-*,
// kubectl, kubelet, kube-proxy, kwok, kwokctl, controller-gen) with the Go
// toolchain alone, from copies of hack/k8s's module pins embedded in the
// binary, into the cache k8sbin searches: what `make tools` does, for a
// `go install`ed podkit with no checkout. BuildNode builds the real node's
// runtime the same way (containerd, its shim, ctr, runc with cgo and
// libseccomp, and podkit's pause and registryhint from sources embedded
// beside the pins).
package toolbuild
