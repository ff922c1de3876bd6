// Package syncer is a vcluster-style syncer SDK: small plug-ins (Syncer,
// FakeSyncer and optional capabilities found by type assertion) on a generic
// engine that runs one controller per plug-in between a virtual cluster and
// a host namespace. It never touches host objects it did not create. Built-in
// plug-ins live in pkg/syncer/resources; this package holds none.
package syncer
