// Package realnode holds the end-to-end tests that need containers to
// really run: a cluster from internal/devcluster with its real node
// (kubelet, containerd, runc on this machine), images written by
// internal/ociimage and imported without a registry, and podkit's own
// binaries inside the pods (the barrier as an init container,
// podkit-entrypoint as PID 1).
package realnode
