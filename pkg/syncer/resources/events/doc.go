// Package events is the built-in Event syncer: host Events about managed
// host pods are copied up into the pod's virtual namespace with the
// involved object translated back. Virtual events never flow down.
package events
