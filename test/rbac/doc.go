// Package rbac checks the RBAC manifests podkit ships under config/ on a real kube-apiserver that
// enforces OwnerReferencesPermissionEnforcement, as OpenShift and hardened clusters do: each role
// does its job, and for each a negative says what it must not do. Identities are impersonated;
// permissions are asked of the API server (SubjectAccessReview) or tried for real where admission
// is what decides.
package rbac
