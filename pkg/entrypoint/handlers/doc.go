// Package handlers offers the handler constructors and types of entrypoint-framework's handlers
// package (v0.1.1) on top of pkg/entrypoint, so a program written against that package ports by
// changing its import path and gains podkit's safe extraction, staged swaps and process groups.
// It adds nothing of its own; new code should use pkg/entrypoint directly.
package handlers
