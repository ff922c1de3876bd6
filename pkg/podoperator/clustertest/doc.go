// Package clustertest holds the pod operator's tests that need a scheduler
// and nodes, not only an API server: they run on a kwok cluster from
// internal/testenv. It has no code of its own.
package clustertest
