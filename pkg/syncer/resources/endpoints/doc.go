// Package endpoints is the built-in v1 Endpoints syncer. As vcluster's
// endpoints syncer does, it copies the Endpoints of virtual Services without
// a selector down to the host Service (the host mirrors them into
// EndpointSlices), and only if the policy allows service-endpoints; the
// Endpoints of Services with a selector are each cluster's own endpoints
// controller's. Nothing flows up.
package endpoints
