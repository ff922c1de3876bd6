// Package endpointslices is the built-in EndpointSlice syncer. As in vcluster,
// only the slices of virtual Services without a selector flow down (the
// tenant's own endpoints, e.g. mirrored from Endpoints), and only if the
// policy allows service-endpoints; slices of Services with a selector are
// each cluster's own controllers' business. Nothing flows up.
package endpointslices
