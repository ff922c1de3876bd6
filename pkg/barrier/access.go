package barrier

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// AccessName is the name of the Role and RoleBinding AccessObjects returns
// for the Framework named framework.
func AccessName(framework string) string { return "podkit-barrier-" + framework }

// AccessObjects returns the least-privilege access of f's barriers: a Role
// that allows get, list and watch on f alone (resourceNames: [f.Name]) and
// a RoleBinding of it to every service account f's task pods run as
// ("default" where a template names none), both owned by f so that they go
// with it. Create f first: the owner reference needs its UID.
//
// A barrier needs no more: it lists and watches with the field selector
// metadata.name=<framework>, which is how Kubernetes RBAC lets a
// resourceNames rule authorize list and watch, and it gets f by name. With
// it, and no namespace-wide grant (config/rbac/barrier_role.yaml), a task
// pod cannot read another Framework, provided the two Frameworks' tasks run
// as different service accounts: a binding grants a service account, not a
// pod.
func AccessObjects(f *v1alpha1.Framework) (*rbacv1.Role, *rbacv1.RoleBinding) {
	name := AccessName(f.Name)
	owner := metav1.OwnerReference{
		APIVersion: v1alpha1.GroupVersion.String(), Kind: "Framework", Name: f.Name, UID: f.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}
	meta := metav1.ObjectMeta{
		Namespace: f.Namespace, Name: name, OwnerReferences: []metav1.OwnerReference{owner},
		Labels: map[string]string{v1alpha1.LabelFrameworkName: f.Name, "app.kubernetes.io/component": ComponentName},
	}
	role := &rbacv1.Role{
		ObjectMeta: meta,
		Rules: []rbacv1.PolicyRule{{
			APIGroups:     []string{v1alpha1.GroupVersion.Group},
			Resources:     []string{"frameworks"},
			ResourceNames: []string{f.Name},
			Verbs:         []string{"get", "list", "watch"},
		}},
	}
	var accounts []string
	for _, r := range f.Spec.TaskRoles {
		sa := r.Task.Pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		if !slices.Contains(accounts, sa) {
			accounts = append(accounts, sa)
		}
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: *meta.DeepCopy(),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
	}
	for _, sa := range accounts {
		binding.Subjects = append(binding.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: f.Namespace})
	}
	return role, binding
}
