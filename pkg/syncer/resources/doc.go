// Package resources lists podkit's built-in syncers by the names --sync
// uses and builds the enabled ones. Each built-in lives in its own
// subpackage and can be used alone; none is enabled unless asked for.
package resources
