// Package toolbuild builds podkit's pinned control plane (etcd, kube-*,
// kubectl, kubelet, kube-proxy, kwok, kwokctl, controller-gen) with the Go
// toolchain alone, from copies of hack/k8s's module pins embedded in the
// binary, into the cache k8sbin searches: what `make tools` does, for a
// `go install`ed podkit with no checkout. It does not build the real node's
// runtime (containerd, runc, pause): that stays with make tools.
package toolbuild
