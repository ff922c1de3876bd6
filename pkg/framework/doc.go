// Package framework is the controller of podkit.dev/v1alpha1 Frameworks: it
// creates one ConfigMap per framework attempt and one pod per task, records
// the pods' progress in the Framework's status, and applies the task and
// framework retry and completion policies. It does not schedule pods or
// implement gang scheduling; pair it with pkg/barrier for all-or-nothing starts.
package framework
