package v1alpha1

import "encoding/json"

// AnnotationRoleNodeSelectors, on a Framework, is a JSON object from task
// role name to node labels that the controller adds to the nodeSelector of
// every pod it creates for that role (a label of the template with the
// same key is replaced). The task template is immutable, so a queueing
// system that places the Framework at admission writes its choice here
// while the Framework is suspended: pkg/kueue writes the node labels of
// the ResourceFlavors Kueue assigned. A value that is not such an object
// is ignored.
const AnnotationRoleNodeSelectors = "podkit.dev/role-node-selectors"

// RoleNodeSelector returns the node labels AnnotationRoleNodeSelectors
// holds for role, or nil.
func (f *Framework) RoleNodeSelector(role string) map[string]string {
	v, ok := f.Annotations[AnnotationRoleNodeSelectors]
	if !ok {
		return nil
	}
	var all map[string]map[string]string
	if err := json.Unmarshal([]byte(v), &all); err != nil {
		return nil
	}
	return all[role]
}
