// Package controller implements `podkit controller`: it runs the Framework
// controller (pkg/framework) in a controller-runtime manager with leader
// election, a Prometheus metrics endpoint and health probes. It holds only
// flag wiring; the controller's logic lives in pkg/framework.
package controller
