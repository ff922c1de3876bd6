// Package pods is the built-in Pod syncer: the spec flows down (references to
// ConfigMaps, Secrets and pull secrets translated; the host schedules), the
// status, pod IP, conditions and node name flow up, and NodeSyncer keeps a
// fake Node in the virtual cluster for every node that runs a virtual pod.
// Service account tokens of the virtual cluster are not projected.
package pods
