// Package arch checks the import rules README's architecture section states:
// libraries never import the CLI, pkg/framework never imports pkg/barrier,
// and the PID-1 entrypoint carries no client-go.
package arch
