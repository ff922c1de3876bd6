package barrier

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// view is what the barrier needs of one version of a Framework: its
// identity, whether it completed, and each task's pod IP. It comes from a
// decoded Framework (viewOf) or straight from the apiserver's JSON
// (decodeView), which skips decoding everything else: at release, a waiter
// on a 1000-task Framework reads about 400 KiB of task statuses, and the
// typed decoding of those was most of its CPU.
type view struct {
	namespace, name string
	uid             types.UID
	resourceVersion string
	published       string // v1alpha1.AnnotationBarrierRelease
	completed       bool
	state           v1alpha1.FrameworkState
	// roles are the spec's roles in order, each with one entry per task
	// counted by its taskNumber: the pod IP as v1alpha1.TaskPodIP reads it,
	// "" when the task has none yet.
	roles []RolePeers
}

// viewOf reads the barrier's view of a decoded Framework.
func viewOf(f *v1alpha1.Framework) *view {
	v := &view{namespace: f.Namespace, name: f.Name, uid: f.UID, resourceVersion: f.ResourceVersion,
		published: f.Annotations[v1alpha1.AnnotationBarrierRelease]}
	if f.Status != nil {
		v.state = f.Status.State
		v.completed = f.Status.State == v1alpha1.FrameworkCompleted
	}
	v.roles = make([]RolePeers, 0, len(f.Spec.TaskRoles))
	for _, r := range f.Spec.TaskRoles {
		rs := roleStatus(f, r.Name)
		ips := make([]string, max(r.TaskNumber, 0))
		for i := range ips {
			ips[i] = rs.TaskPodIP(int32(i))
		}
		v.roles = append(v.roles, RolePeers{Name: r.Name, IPs: ips})
	}
	return v
}

// frameworkJSON is the part of a Framework's JSON that decodeView reads
// with encoding/json; the task statuses go to decodeRoleStatuses.
type frameworkJSON struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Namespace       string            `json:"namespace"`
		Name            string            `json:"name"`
		UID             types.UID         `json:"uid"`
		ResourceVersion string            `json:"resourceVersion"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		TaskRoles []struct {
			Name       string `json:"name"`
			TaskNumber int32  `json:"taskNumber"`
		} `json:"taskRoles"`
	} `json:"spec"`
	Status *struct {
		State         v1alpha1.FrameworkState `json:"state"`
		AttemptStatus struct {
			TaskRoleStatuses           json.RawMessage `json:"taskRoleStatuses"`
			TaskRoleStatusesCompressed []byte          `json:"taskRoleStatusesCompressed"`
		} `json:"attemptStatus"`
	} `json:"status"`
}

// decodeView reads the barrier's view of a Framework from its JSON as the
// apiserver sends it, with the meaning the typed decoding gives it (a
// compressed status is expanded, at most v1alpha1.MaxDecompressedBytes),
// and, when the status is compressed, the expanded task statuses' JSON.
func decodeView(data []byte) (*view, []byte, error) {
	var in frameworkJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, nil, fmt.Errorf("decode framework: %w", err)
	}
	return in.view()
}

// isFramework reports whether the JSON said it is a Framework of this API
// version, or did not say.
func (in *frameworkJSON) isFramework() bool {
	apiVersion, kind := v1alpha1.FrameworkGroupVersionKind.ToAPIVersionAndKind()
	return (in.APIVersion == "" || in.APIVersion == apiVersion) && (in.Kind == "" || in.Kind == kind)
}

func (in *frameworkJSON) view() (*view, []byte, error) {
	v := &view{namespace: in.Metadata.Namespace, name: in.Metadata.Name, uid: in.Metadata.UID,
		resourceVersion: in.Metadata.ResourceVersion, published: in.Metadata.Annotations[v1alpha1.AnnotationBarrierRelease]}
	var statuses []roleStatusJSON
	var expanded []byte
	if st := in.Status; st != nil {
		v.state = st.State
		v.completed = st.State == v1alpha1.FrameworkCompleted
		raw := st.AttemptStatus.TaskRoleStatuses
		if (len(raw) == 0 || string(raw) == "null") && len(st.AttemptStatus.TaskRoleStatusesCompressed) > 0 {
			var err error
			if expanded, err = v1alpha1.DecompressTaskRoleStatuses(st.AttemptStatus.TaskRoleStatusesCompressed); err != nil {
				return nil, nil, fmt.Errorf("decode framework %s/%s: %w", v.namespace, v.name, err)
			}
			raw = expanded
		}
		if len(raw) > 0 {
			var err error
			if statuses, err = decodeRoleStatuses(raw); err != nil {
				return nil, nil, fmt.Errorf("decode framework %s/%s: %w", v.namespace, v.name, err)
			}
		}
	}
	v.roles = make([]RolePeers, 0, len(in.Spec.TaskRoles))
	for _, r := range in.Spec.TaskRoles {
		var rs *roleStatusJSON
		for i := range statuses {
			if statuses[i].Name == r.Name {
				rs = &statuses[i]
				break
			}
		}
		ips := make([]string, max(r.TaskNumber, 0))
		for i := range ips {
			ips[i] = rs.podIP(int32(i))
		}
		v.roles = append(v.roles, RolePeers{Name: r.Name, IPs: ips})
	}
	return v, expanded, nil
}

// podIP is v1alpha1.TaskRoleStatus.TaskPodIP on the barrier's fields.
func (s *roleStatusJSON) podIP(index int32) string {
	if s == nil {
		return ""
	}
	return v1alpha1.TaskPodIPOf(s.TaskStatuses, index, func(t *taskStatusJSON) (int32, bool, *string) {
		return t.Index, t.DeletionPending, t.AttemptStatus.PodIP
	})
}

// progress counts the tasks with a pod IP, as ProgressOf.
func (v *view) progress() Progress {
	var p Progress
	for _, r := range v.roles {
		for i, ip := range r.IPs {
			p.Total++
			if ip != "" {
				p.Ready++
			} else {
				p.Waiting = append(p.Waiting, fmt.Sprintf("%s-%d", r.Name, i))
			}
		}
	}
	return p
}
