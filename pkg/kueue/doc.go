// Package kueue admits podkit Frameworks through Kueue the way Kueue
// documents for external job kinds: a Framework labelled
// kueue.x-k8s.io/queue-name is held suspended behind a Kueue Workload (one
// pod set per task role), runs once Kueue admits it, with the node labels
// of the assigned ResourceFlavors, and is suspended again — not failed —
// when Kueue evicts it. It does not import Kueue (no webhooks, no Kueue
// client): Kueue's objects are read and written as unstructured.
package kueue
