// Package fork implements `podkit fork`: run inside a pod, it forks that pod
// as a child running the same image with PODKIT_FORK_PATH set (pkg/fork),
// and optionally waits for it and exits with the child's exit code.
package fork
