// Package services is the built-in Service syncer: the spec flows down with
// its selector rewritten and scoped to the virtual namespace, host exposure
// (NodePort/LoadBalancer, externalIPs) cleared unless the policy allows it,
// cluster IPs left to the host; load-balancer status flows up. Endpoints are
// not synced.
package services
