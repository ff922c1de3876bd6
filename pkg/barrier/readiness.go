package barrier

import (
	"fmt"
	"strings"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// maxWaitingNames bounds the task names listed in a progress line.
const maxWaitingNames = 8

// Progress is how far a Framework is from releasing the barrier.
type Progress struct {
	// Ready counts the tasks (counted against each role's taskNumber) that
	// have a pod IP; Total is the sum of taskNumber.
	Ready, Total int
	// Waiting names the tasks without a pod IP ("worker-5"), in spec order.
	Waiting []string
}

// Released reports whether every task has a pod IP.
func (p Progress) Released() bool { return p.Ready == p.Total }

// String is the progress line: "3/8 tasks ready; waiting for worker-5, worker-7".
func (p Progress) String() string {
	s := fmt.Sprintf("%d/%d tasks ready", p.Ready, p.Total)
	if len(p.Waiting) == 0 {
		return s
	}
	names := p.Waiting
	more := ""
	if len(names) > maxWaitingNames {
		more = fmt.Sprintf(" and %d more", len(names)-maxWaitingNames)
		names = names[:maxWaitingNames]
	}
	return s + "; waiting for " + strings.Join(names, ", ") + more
}

// roleStatus returns the status of role, or nil.
func roleStatus(f *v1alpha1.Framework, role string) *v1alpha1.TaskRoleStatus {
	if f.Status == nil {
		return nil
	}
	return f.Status.AttemptStatus.TaskRoleStatus(role)
}

// ProgressOf counts the tasks of f, as the spec's taskNumber defines them,
// that have a non-empty pod IP in f's status.
func ProgressOf(f *v1alpha1.Framework) Progress {
	var p Progress
	for _, r := range f.Spec.TaskRoles {
		rs := roleStatus(f, r.Name)
		for i := 0; i < int(r.TaskNumber); i++ {
			p.Total++
			if rs.TaskPodIP(int32(i)) != "" {
				p.Ready++
			} else {
				p.Waiting = append(p.Waiting, fmt.Sprintf("%s-%d", r.Name, i))
			}
		}
	}
	return p
}

// PeersOf returns the pod IPs of every task of f by role, in spec order. It
// is an error if a task has no pod IP yet.
func PeersOf(f *v1alpha1.Framework) ([]RolePeers, error) {
	roles := make([]RolePeers, 0, len(f.Spec.TaskRoles))
	for _, r := range f.Spec.TaskRoles {
		rs := roleStatus(f, r.Name)
		peers := RolePeers{Name: r.Name, IPs: make([]string, 0, r.TaskNumber)}
		for i := 0; i < int(r.TaskNumber); i++ {
			ip := rs.TaskPodIP(int32(i))
			if ip == "" {
				return nil, fmt.Errorf("task %s-%d of framework %s/%s has no pod IP yet", r.Name, i, f.Namespace, f.Name)
			}
			peers.IPs = append(peers.IPs, ip)
		}
		roles = append(roles, peers)
	}
	return roles, nil
}
