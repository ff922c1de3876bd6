// Package barrier implements `podkit barrier`: the Framework gang barrier run as
// a task pod's init container. It wires pkg/barrier to flags and maps its typed
// errors to the original's exit codes; the waiting itself lives in pkg/barrier.
package barrier
