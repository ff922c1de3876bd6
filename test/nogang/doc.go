// Package nogang runs the Framework controller on a kwok cluster that does
// not serve the upstream gang-scheduling API (scheduling.k8s.io/v1beta1
// PodGroup, feature gate GenericWorkload off, as in Kubernetes 1.37 by
// default): Frameworks still run, barrier-only, and say so in their
// GangScheduled condition. The gang tests themselves are in pkg/framework.
package nogang
