// Package pods is the built-in Pod syncer: a virtual pod the policy accepts
// (Check: Pod Security "baseline" plus no host references or host tokens)
// flows down with every reference translated to the tenant's own host
// copies and label keys rewritten; status, pod IP, conditions and node name
// flow up; NodeSyncer keeps a fake Node in the virtual cluster for every
// node that runs a virtual pod. The host pod gets no token of the host; its
// injected token volume reads a token the virtual API server issued, and,
// where synccontext.PodNetwork sets them, its KUBERNETES_* variables and
// cluster-first DNS point at the virtual API server and DNS.
package pods
