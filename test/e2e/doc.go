// Package e2e runs podkit as a user does, on a fresh kwok cluster from
// internal/testenv: the built podkit binary's `podkit demo`, and
// `kubectl apply --server-side -k config/default` followed by a sample
// Framework completing under the deployed RBAC. It has tests only.
package e2e
