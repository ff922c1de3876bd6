// Package sync implements `podkit sync run`: it runs the syncer with the
// built-in plug-ins chosen by --sync between a virtual cluster and a host
// namespace until interrupted. The engine lives in pkg/syncer.
package sync
