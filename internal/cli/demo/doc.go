// Package demo implements `podkit demo` (make run): on the local dev cluster
// or any kubeconfig it installs the Framework CRD and RBAC, runs the Framework
// controller in-process, applies the samples, runs the barrier and forks a
// pod, then prints a summary table. It is a showcase, not a deployment tool:
// config/default is how to run podkit for real.
package demo
