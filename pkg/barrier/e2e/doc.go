// Package e2e tests pkg/barrier end to end with the Framework controller on a
// kwok cluster (internal/testenv, ModeCluster): one barrier process per task,
// configured only by the environment the controller puts in the task's pod.
package e2e
