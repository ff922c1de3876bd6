// Package integration holds the tests of pkg/barrier that need a real
// kube-apiserver (internal/testenv, ModeAPIServer). It is a separate test
// binary so that the fuzz targets of pkg/barrier start no control plane.
package integration
