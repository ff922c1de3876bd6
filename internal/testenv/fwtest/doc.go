// Package fwtest runs podkit's Framework controller inside a test, on a
// control plane started by internal/testenv: one manager per call, its own
// metrics registry, stopped when the test ends.
package fwtest
