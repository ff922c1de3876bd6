// Package synccontext holds the two contexts a syncer sees: RegisterContext
// while it is being set up (both controller-runtime managers, not yet serving)
// and SyncContext inside one reconcile (clients, logger, target namespace),
// and the Policy that says what virtual objects may take from the host.
// It does not start anything; the syncer package wires and runs the managers.
package synccontext
