// Package services is the built-in Service syncer: the spec flows down with
// its selector rewritten and scoped to the virtual namespace, host exposure
// (NodePort/LoadBalancer, externalIPs) cleared unless the policy allows it,
// cluster IPs allocated by the host and given to the virtual Service (by
// recreating it); load-balancer status flows up. EndpointSlices are the
// endpointslices syncer's.
package services
