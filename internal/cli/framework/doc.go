// Package framework implements `podkit get fw [NAME]` and `podkit describe
// fw NAME`: they read Frameworks and show their roles, tasks, pod IPs and
// attempts. They never change anything; the controller is `podkit controller`.
package framework
