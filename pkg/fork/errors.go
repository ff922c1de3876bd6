package fork

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// RoleManifest is the path, in the podkit repository, of the Role that grants
// a parent pod's service account what fork needs.
const RoleManifest = "config/rbac/fork_role.yaml"

// ForbiddenError is returned when the API server refused a request fork
// needs. It names the missing permission so it can be granted.
type ForbiddenError struct {
	// Verb is the RBAC verb that was refused, e.g. "create".
	Verb string
	// Resource is the RBAC resource, e.g. "pods" or "pods/log".
	Resource string
	// Namespace is where the permission is missing.
	Namespace string
	// Err is the API server's error.
	Err error
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("forbidden: the pod's service account cannot %s %s in namespace %s; apply %s (and bind it to the service account): %v",
		e.Verb, e.Resource, e.Namespace, RoleManifest, e.Err)
}

// Unwrap returns the API server's error, so apierrors.IsForbidden still works.
func (e *ForbiddenError) Unwrap() error { return e.Err }

// explain wraps err as "<what>: <err>", turning a Forbidden answer into a
// *ForbiddenError that names verb and resource.
func explain(err error, verb, resource, namespace, what string) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s: %w", what, &ForbiddenError{Verb: verb, Resource: resource, Namespace: namespace, Err: err})
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ErrConflict is returned (wrapped) by Start when a pod with the child's name
// exists but was not created by this parent: its controller owner reference
// does not name the parent's UID.
var ErrConflict = errors.New("child name taken by another pod")
