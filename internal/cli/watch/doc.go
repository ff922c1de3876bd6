// Package watch implements `podkit watch pods`: it runs a podoperator.Operator
// with a handler that prints one line per pod event, as text or JSON lines.
// It only prints; it never changes anything in the cluster.
package watch
