// Package vdns is a small authoritative DNS server for a virtual cluster: it
// answers the Kubernetes DNS schema (Services, headless endpoints, SRV,
// ExternalName) under the cluster domain from the virtual API server's
// Services and EndpointSlices, over UDP and TCP. It does not recurse: names
// outside the cluster domain are REFUSED, or relayed to an upstream resolver
// when one is set.
package vdns
