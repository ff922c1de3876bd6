package v1alpha1

import "fmt"

// Labels the controller puts on every pod and ConfigMap it creates
// (FrameworkController's keys, which are also its env var names).
const (
	LabelFrameworkName = "FC_FRAMEWORK_NAME"
	LabelTaskRoleName  = "FC_TASKROLE_NAME"
	LabelTaskIndex     = "FC_TASK_INDEX"
)

// Annotations the controller puts on every pod it creates.
const (
	AnnotationFrameworkNamespace          = "FC_FRAMEWORK_NAMESPACE"
	AnnotationFrameworkName               = "FC_FRAMEWORK_NAME"
	AnnotationTaskRoleName                = "FC_TASKROLE_NAME"
	AnnotationTaskIndex                   = "FC_TASK_INDEX"
	AnnotationConfigMapName               = "FC_CONFIGMAP_NAME"
	AnnotationPodName                     = "FC_POD_NAME"
	AnnotationFrameworkAttemptID          = "FC_FRAMEWORK_ATTEMPT_ID"
	AnnotationFrameworkAttemptInstanceUID = "FC_FRAMEWORK_ATTEMPT_INSTANCE_UID"
	AnnotationConfigMapUID                = "FC_CONFIGMAP_UID"
	AnnotationTaskAttemptID               = "FC_TASK_ATTEMPT_ID"
)

// Environment variables injected into every container and init container of
// a task pod. Each FC_* variable also exists as PODKIT_* (same value; the
// PODKIT_ name is FC's with its "FC_" prefix replaced, e.g.
// PODKIT_FRAMEWORK_NAME).
const (
	EnvFrameworkNamespace          = "FC_FRAMEWORK_NAMESPACE"
	EnvFrameworkName               = "FC_FRAMEWORK_NAME"
	EnvFrameworkUID                = "FC_FRAMEWORK_UID"
	EnvTaskRoleName                = "FC_TASKROLE_NAME"
	EnvTaskIndex                   = "FC_TASK_INDEX"
	EnvConfigMapName               = "FC_CONFIGMAP_NAME"
	EnvPodName                     = "FC_POD_NAME"
	EnvFrameworkAttemptID          = "FC_FRAMEWORK_ATTEMPT_ID"
	EnvFrameworkAttemptInstanceUID = "FC_FRAMEWORK_ATTEMPT_INSTANCE_UID"
	EnvConfigMapUID                = "FC_CONFIGMAP_UID"
	EnvTaskAttemptID               = "FC_TASK_ATTEMPT_ID"
	EnvTaskAttemptInstanceUID      = "FC_TASK_ATTEMPT_INSTANCE_UID"
	EnvPodUID                      = "FC_POD_UID"
)

// PodkitEnvName returns the PODKIT_* twin of an FC_* variable name.
func PodkitEnvName(fcName string) string {
	if len(fcName) > 3 && fcName[:3] == "FC_" {
		return "PODKIT_" + fcName[3:]
	}
	return fcName
}

// ConfigMapName is the name of a Framework's attempt ConfigMap.
func ConfigMapName(framework string) string {
	return framework + "-attempt"
}

// PodGroupName is the name of the scheduling.k8s.io/v1beta1 PodGroup of a
// framework attempt: {framework}-attempt-{attemptID}. Each attempt has its
// own, so that a retry's gang never waits for the previous one's to go.
func PodGroupName(framework string, attemptID int32) string {
	return fmt.Sprintf("%s-attempt-%d", framework, attemptID)
}

// PodName is the name of a task's pod: {framework}-{role}-{index}.
func PodName(framework, role string, index int32) string {
	return fmt.Sprintf("%s-%s-%d", framework, role, index)
}

// TaskRoleStatus returns the status of the named role, or nil.
func (s *FrameworkAttemptStatus) TaskRoleStatus(role string) *TaskRoleStatus {
	for i := range s.TaskRoleStatuses {
		if s.TaskRoleStatuses[i].Name == role {
			return &s.TaskRoleStatuses[i]
		}
	}
	return nil
}

// TotalTasks is the number of tasks the spec counts: the sum of taskNumber
// over the task roles.
func (s *FrameworkSpec) TotalTasks() int {
	n := 0
	for _, r := range s.TaskRoles {
		n += int(r.TaskNumber)
	}
	return n
}

// TaskRole returns the spec of the named role, or nil.
func (s *FrameworkSpec) TaskRole(role string) *TaskRoleSpec {
	for i := range s.TaskRoles {
		if s.TaskRoles[i].Name == role {
			return &s.TaskRoles[i]
		}
	}
	return nil
}
