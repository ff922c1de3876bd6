// Command fork is an example program that forks itself with pkg/fork: run
// in a pod (see pod.yaml), the parent forks a child on code path "report",
// waits for it and exits with its exit code; the child, started from the
// same image, sees fork.Path() == "report" and runs that branch instead.
package main
