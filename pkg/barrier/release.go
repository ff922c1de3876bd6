package barrier

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// Release is a Framework as WaitRelease saw it when every task had a pod
// IP: the addresses, and the Framework, decoded only if asked. Reading a
// large Framework's status whole costs a waiter several times what reading
// the addresses costs, and a barrier that releases a thousand waiters at
// once pays that a thousand times.
type Release struct {
	// Peers are the pod IPs of every task, by role in spec order (as
	// PeersOf).
	Peers []RolePeers

	namespace, name string
	framework       *v1alpha1.Framework // decoded; nil when only raw is known
	raw             []byte              // the Framework's JSON as the apiserver sent it
	expanded        []byte              // raw's task statuses expanded, when compressed
	decoder         runtime.Decoder     // decodes raw
}

// newRelease is the release of the Framework v describes: Peers are its
// addresses.
func newRelease(v *view) *Release {
	return &Release{Peers: v.roles, namespace: v.namespace, name: v.name}
}

// Framework returns the released Framework, decoding it on the first call.
func (r *Release) Framework() (*v1alpha1.Framework, error) {
	if r.framework != nil {
		return r.framework, nil
	}
	if r.raw == nil {
		return nil, errors.New("release holds no framework: make it with WaitRelease")
	}
	var f v1alpha1.Framework
	if _, _, err := r.decoder.Decode(r.raw, nil, &f); err != nil {
		return nil, fmt.Errorf("decode released framework %s/%s: %w", r.namespace, r.name, err)
	}
	r.framework = &f
	return r.framework, nil
}

// frameworkFile returns framework.json's content: the Framework with
// apiVersion and kind, its task statuses written plainly, compact JSON as
// FrameworkController's barrier writes the file, and — unless podTemplates —
// without the task roles' pod templates (spec.taskRoles[].task.pod: they may
// name secrets and images a peer has no need for). For a Framework read as
// JSON, that JSON is rewritten without decoding it (the expanded statuses
// take the place of taskRoleStatusesCompressed); otherwise the decoded
// Framework is encoded (v1alpha1.MarshalUncompressed).
func (r *Release) frameworkFile(podTemplates bool) ([]byte, error) {
	if r.framework == nil {
		if r.raw == nil {
			return nil, errors.New("release holds no framework: make it with WaitRelease")
		}
		return spliceFrameworkJSON(r.raw, r.expanded, podTemplates)
	}
	obj := r.framework.DeepCopy()
	obj.APIVersion, obj.Kind = v1alpha1.FrameworkGroupVersionKind.ToAPIVersionAndKind()
	data, err := v1alpha1.MarshalUncompressed(obj)
	if err != nil {
		return nil, fmt.Errorf("encode framework %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	if podTemplates {
		return data, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("encode framework %s/%s: %w", obj.Namespace, obj.Name, err)
	}
	if top["spec"], err = withoutPodTemplates(top["spec"]); err != nil {
		return nil, err
	}
	return appendObject(make([]byte, 0, len(data)), top), nil
}

// withoutPodTemplates is a Framework spec's JSON without
// taskRoles[].task.pod; objects on the way are rewritten with their keys
// sorted, every other value copied as it is.
func withoutPodTemplates(spec json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(spec, &m); err != nil || m == nil {
		return spec, err
	}
	var roles []map[string]json.RawMessage
	if err := json.Unmarshal(m["taskRoles"], &roles); err != nil || roles == nil {
		return spec, err
	}
	out := []byte{'['}
	for i, role := range roles {
		var task map[string]json.RawMessage
		if err := json.Unmarshal(role["task"], &task); err != nil {
			return nil, fmt.Errorf("framework spec.taskRoles[%d].task: %w", i, err)
		}
		if task != nil {
			delete(task, "pod")
			role["task"] = appendObject(nil, task)
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = appendObject(out, role)
	}
	m["taskRoles"] = append(out, ']')
	return appendObject(nil, m), nil
}

// spliceFrameworkJSON is raw, a Framework's JSON, with apiVersion and kind
// set and, when expanded is not nil, status.attemptStatus's
// taskRoleStatusesCompressed replaced by taskRoleStatuses: expanded, which
// decodeView read and so checked. Objects on the way are rewritten with
// their keys sorted, as the apiserver writes them; every other value is
// copied as it is.
func spliceFrameworkJSON(raw, expanded []byte, podTemplates bool) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("decode framework for %s: %w", FrameworkObjectFilePath, err)
	}
	if !podTemplates {
		var err error
		if top["spec"], err = withoutPodTemplates(top["spec"]); err != nil {
			return nil, fmt.Errorf("framework for %s: %w", FrameworkObjectFilePath, err)
		}
	}
	apiVersion, kind := v1alpha1.FrameworkGroupVersionKind.ToAPIVersionAndKind()
	top["apiVersion"], _ = json.Marshal(apiVersion)
	top["kind"], _ = json.Marshal(kind)
	// As the typed decoding, which drops the compressed statuses once read
	// (or ignored, when plain ones are there too).
	if expanded != nil || bytes.Contains(raw, []byte(`"taskRoleStatusesCompressed"`)) {
		var status, attempt map[string]json.RawMessage
		if err := json.Unmarshal(top["status"], &status); err != nil {
			return nil, fmt.Errorf("decode framework status: %w", err)
		}
		if err := json.Unmarshal(status["attemptStatus"], &attempt); err != nil {
			return nil, fmt.Errorf("decode framework status: %w", err)
		}
		delete(attempt, "taskRoleStatusesCompressed")
		if expanded != nil {
			attempt["taskRoleStatuses"] = expanded
		}
		status["attemptStatus"] = appendObject(nil, attempt)
		top["status"] = appendObject(nil, status)
	}
	return appendObject(make([]byte, 0, len(raw)+len(expanded)+64), top), nil
}

// appendObject appends m as a JSON object, keys sorted.
func appendObject(b []byte, m map[string]json.RawMessage) []byte {
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		key, _ := json.Marshal(k)
		b = append(append(append(b, key...), ':'), bytes.TrimSpace(m[k])...)
	}
	return append(b, '}')
}
