// Package fork lets a program running in a pod fork itself as a child pod:
// the child runs the same image with the parent's spec made safe to create,
// plus an environment variable naming the code path it should take; main
// calls Path to choose. Run creates (or adopts) the child, waits for it by
// watching, and reports phase, exit codes and logs. It does not copy files,
// stream stdin, or keep parent and child in step after the child starts.
package fork
