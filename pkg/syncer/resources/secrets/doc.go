// Package secrets is the built-in Secret syncer: the virtual Secrets synced
// pods use (all of them with synccontext.AllowAllSecrets) are copied down to
// the host's target namespace and kept equal there. Service account token
// Secrets are not synced (the host would not honour them).
package secrets
