// Package configmaps is the built-in ConfigMap syncer: virtual ConfigMaps are
// copied down to the host's target namespace and kept equal there (data,
// labels, annotations). Nothing flows up.
package configmaps
