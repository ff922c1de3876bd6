// Package kueuemanager installs Kueue's CRDs and runs Kueue's manager (both
// built by toolbuild.BuildKueue from Kueue's own module) outside a cluster,
// against a kubeconfig: for pkg/kueue's tests and podkit dev up
// --with-kueue. Kueue's admission webhooks are not registered (the API
// server could not verify the manager's certificate, issued for an
// in-cluster Service name); see docs/kueue.md for what that leaves out.
package kueuemanager
