// Package entrypoint builds container entrypoints: a PID-1 Supervisor that reaps every zombie and
// forwards signals, a process handler with a restart policy, configuration handlers (single file,
// tar archive, directory incl. the Kubernetes ConfigMap "..data" layout) that stage, validate and
// swap configuration atomically, and a file-based activation handler. Everything is event driven
// (signals, fsnotify); nothing polls. It does not talk to Kubernetes and has no client-go dependency.
package entrypoint
