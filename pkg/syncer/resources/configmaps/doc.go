// Package configmaps is the built-in ConfigMap syncer: the virtual ConfigMaps
// synced pods use (all of them with synccontext.AllowAllConfigMaps) are
// copied down to the host's target namespace and kept equal there (data,
// labels, annotations). Nothing flows up.
package configmaps
