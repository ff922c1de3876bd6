// Package services is the built-in Service syncer: the spec flows down with
// its selector scoped to the virtual namespace (host cluster IPs are left to
// the host), and load-balancer status flows up. Endpoints are not synced.
package services
