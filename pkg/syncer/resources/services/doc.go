// Package services is the built-in Service syncer: the spec flows down with
// its selector rewritten and scoped to the virtual namespace, host exposure
// (NodePort/LoadBalancer, externalIPs) cleared unless the policy allows it,
// cluster IPs allocated by the host and given to the virtual Service (by
// recreating it); load-balancer status flows up, and so do the host's
// EndpointSlices of Services with a selector (EndpointSlicesUp, pod
// references pointed at the virtual pods). The slices a tenant writes for a
// Service without a selector are the endpointslices syncer's.
package services
