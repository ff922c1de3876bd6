package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Caps enforced by the CRD schema. A Framework's status holds one entry per
// task, and the whole object must fit in one etcd value (1.5 MiB), so the
// total number of tasks is bounded.
const (
	// MaxTaskRoles is the maximum number of task roles in one Framework.
	MaxTaskRoles = 32
	// MaxTotalTasks is the maximum sum of taskNumber over all task roles.
	MaxTotalTasks = 5000
	// MaxTaskRoleNameLength is the maximum length of a task role name, so
	// that pod names ({framework}-{role}-{index}) stay valid.
	MaxTaskRoleNameLength = 32
	// MaxFrameworkNameLength is the maximum length of a Framework's name: it
	// is used as a label value on every pod.
	MaxFrameworkNameLength = 63
)

// Framework is a gang of task roles; each role runs taskNumber tasks and each
// task runs as one pod named {framework}-{role}-{index}. The whole Framework
// is retried as attempts (spec.retryPolicy) and each task is retried on its
// own (taskRoles[].task.retryPolicy); frameworkAttemptCompletionPolicy says
// how many failed or succeeded tasks complete an attempt.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fw,categories=podkit
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.readyTasks`,description="tasks running with a pod IP / total tasks"
// +kubebuilder:printcolumn:name="Attempt",type=integer,JSONPath=`.status.attemptStatus.id`
// +kubebuilder:printcolumn:name="Retried",type=integer,JSONPath=`.status.retryPolicyStatus.totalRetriedCount`,priority=1
// +kubebuilder:printcolumn:name="Code",type=integer,JSONPath=`.status.attemptStatus.completionStatus.code`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: it is used as a label value on the framework's pods"
type Framework struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired Framework.
	Spec FrameworkSpec `json:"spec"`
	// Status is written by the controller; nil until it first sees the
	// Framework.
	// +optional
	Status *FrameworkStatus `json:"status,omitempty"`
}

// FrameworkList is a list of Frameworks.
//
// +kubebuilder:object:root=true
type FrameworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Frameworks.
	Items []Framework `json:"items"`
}

// ExecutionType says whether a Framework should run.
// +kubebuilder:validation:Enum=Create;Start;Stop
type ExecutionType string

const (
	// ExecutionCreate creates the Framework without running it: it stays
	// AttemptCreationPending, with no ConfigMap and no pod, until
	// executionType becomes Start (or Stop).
	ExecutionCreate ExecutionType = "Create"
	// ExecutionStart runs the Framework.
	ExecutionStart ExecutionType = "Start"
	// ExecutionStop deletes the Framework's pods and completes it with
	// CompletionCodeStopFrameworkRequested. It cannot be undone.
	ExecutionStop ExecutionType = "Stop"
)

// ManagedByPodkit is the spec.managedBy of Frameworks that podkit's
// controller reconciles, and its default.
const ManagedByPodkit = "podkit.dev/framework-controller"

// FrameworkSpec is the desired state of a Framework. After creation only
// executionType (from Create to Start or Stop, from Start to Stop),
// suspend, description and taskRoles (roles and their taskNumber, never
// a role's task) may change.
//
// +kubebuilder:validation:XValidation:rule="self.taskRoles.map(r, r.taskNumber).sum() <= 5000",message="the sum of taskNumber over all taskRoles must be at most 5000",fieldPath=".taskRoles"
type FrameworkSpec struct {
	// Description is free text for people; the controller ignores it.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Description string `json:"description,omitempty"`

	// ExecutionType is Start (default), Create or Stop. Create holds the
	// Framework before its first attempt; Stop deletes all pods and
	// completes the Framework and is final.
	// +kubebuilder:default=Start
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'Stop' || self == 'Stop'",message="executionType cannot change from Stop back to Start or Create"
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'Start' || self != 'Create'",message="executionType cannot change from Start back to Create"
	// +optional
	ExecutionType ExecutionType `json:"executionType,omitempty"`

	// Suspend, when true, holds the Framework without pods, as a batch/v1
	// Job's spec.suspend (a podkit addition): a running attempt's pods and
	// ConfigMap are deleted and the attempt ends without a completion
	// status, without counting as a retry (framework and task retry
	// counts are kept); condition Suspended becomes True once no pod is
	// left. Clearing it starts the next attempt (attempt id + 1, a fresh
	// attemptStatus.startTime). It has no effect on a Completed Framework;
	// executionType Stop still stops a suspended one. Default false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// ManagedBy names the controller that reconciles this Framework, as a
	// batch/v1 Job's spec.managedBy (a podkit addition): podkit's
	// controller (on either API) reconciles only Frameworks whose
	// managedBy is ManagedByPodkit, the default; under another value (a
	// multi-cluster dispatcher, say) it leaves the Framework, its status
	// and its pods alone, and that controller owns them. A domain-prefixed
	// path (example.com/name) of at most 63 characters. Immutable, so
	// that no two controllers ever act on one Framework in turn.
	// +kubebuilder:default="podkit.dev/framework-controller"
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[-A-Za-z0-9._~!$&()*+,;=:@%/]+$')",message="must be a domain-prefixed path such as example.com/controller: a lowercase DNS subdomain, '/', then URL path characters"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="managedBy is immutable"
	// +optional
	ManagedBy string `json:"managedBy,omitempty"`

	// RetryPolicy says when a completed framework attempt is retried as a
	// new attempt (new ConfigMap, all tasks recreated). Default: no retry.
	// +kubebuilder:default={}
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="retryPolicy is immutable"
	// +optional
	RetryPolicy RetryPolicySpec `json:"retryPolicy"`

	// TaskRoles are the roles of the Framework, each with its own pod
	// template and task count. Names are unique. Roles may be added or
	// removed on a running Framework (FC's rescale).
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	TaskRoles []TaskRoleSpec `json:"taskRoles"`
}

// RetryPolicySpec says when a completed attempt (of a task or of the whole
// framework) is retried. A Succeeded completion is never retried unless
// maxRetryCount is -2.
//
// With fancyRetryPolicy, a completion whose type carries the Permanent
// attribute is never retried and one carrying Transient is always retried
// without counting against maxRetryCount (the retry is still counted in
// totalRetriedCount); others follow maxRetryCount.
type RetryPolicySpec struct {
	// FancyRetryPolicy enables the Transient/Permanent classification above.
	// Default false.
	// +optional
	FancyRetryPolicy bool `json:"fancyRetryPolicy,omitempty"`
	// MaxRetryCount is how many times a failed attempt is retried:
	// -2 retries every completion including success (a service that must
	// keep running), -1 retries failures without limit, N >= 0 retries
	// failures up to N times. Default 0.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=-2
	// +optional
	MaxRetryCount int32 `json:"maxRetryCount"`
}

// TaskRoleSpec is one role of a Framework: taskNumber identical tasks.
//
// +kubebuilder:validation:XValidation:rule="self.frameworkAttemptCompletionPolicy.minFailedTaskCount <= (self.taskNumber > 0 ? self.taskNumber : 1)",message="must be -1 or at most taskNumber (1 when taskNumber is 0): change it in the same update as taskNumber",fieldPath=".frameworkAttemptCompletionPolicy.minFailedTaskCount"
// +kubebuilder:validation:XValidation:rule="self.frameworkAttemptCompletionPolicy.minSucceededTaskCount <= (self.taskNumber > 0 ? self.taskNumber : 1)",message="must be -1 or at most taskNumber (1 when taskNumber is 0): change it in the same update as taskNumber",fieldPath=".frameworkAttemptCompletionPolicy.minSucceededTaskCount"
type TaskRoleSpec struct {
	// Name is the role's name: lowercase letters and digits, at most 32
	// characters (FrameworkController's pattern, without '-'). It is part
	// of every pod name ({framework}-{role}-{index}); without '-' in role
	// names no two Frameworks can ever want the same pod name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]+$')",message="must be lowercase letters and digits only, no '-': pod names are {framework}-{role}-{index}, and a '-' in a role name would let two Frameworks claim the same pod"
	Name string `json:"name"`
	// TaskNumber is the number of tasks (pods) of this role, 0 to 5000. It
	// may change on a running Framework: a scale down deletes the tasks of
	// the highest indices, a scale up adds tasks (FC's rescale). A
	// Framework without tasks waits: it never completes by itself.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=5000
	TaskNumber int32 `json:"taskNumber"`
	// FrameworkAttemptCompletionPolicy says how many tasks of this role
	// completing complete the whole framework attempt. When omitted: the
	// first failed task fails the attempt; success needs every task of
	// every role (FrameworkController's documented defaults, 1 and -1).
	// +kubebuilder:default={}
	// +optional
	FrameworkAttemptCompletionPolicy CompletionPolicySpec `json:"frameworkAttemptCompletionPolicy"`
	// Task is the template of every task of the role. Immutable.
	Task TaskSpec `json:"task"`
}

// CompletionPolicySpec completes a framework attempt early. When no policy
// triggers, the attempt completes once every task has completed: Succeeded
// if the last completed task triggered nothing.
type CompletionPolicySpec struct {
	// MinFailedTaskCount: when a task of the role fails (after its own
	// retries) and at least this many have, the attempt fails with that
	// task's completion status. -1 disables it; 0 acts as 1, as in
	// FrameworkController. Default when omitted: 1.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=-1
	// +optional
	MinFailedTaskCount int32 `json:"minFailedTaskCount,omitempty"`
	// MinSucceededTaskCount: when a task of the role succeeds and at least
	// this many have, the attempt succeeds. -1 disables it; 0 acts as 1
	// (the first success completes the attempt), as in
	// FrameworkController. Default when omitted: -1 (a Go client sends 1
	// for FC's 0).
	// +kubebuilder:default=-1
	// +kubebuilder:validation:Minimum=-1
	// +optional
	MinSucceededTaskCount int32 `json:"minSucceededTaskCount,omitempty"`
}

// TaskSpec is the template of a task.
//
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="task is immutable"
type TaskSpec struct {
	// RetryPolicy says when a completed task attempt is retried with a new
	// pod (same name, new UID). Default: no retry.
	// +kubebuilder:default={}
	// +optional
	RetryPolicy RetryPolicySpec `json:"retryPolicy"`
	// PodGracefulDeletionTimeoutSec bounds how long the controller waits
	// for a pod it deleted to disappear before it force-deletes it. Unset
	// means wait as long as it takes.
	// +kubebuilder:validation:Minimum=0
	// +optional
	PodGracefulDeletionTimeoutSec *int64 `json:"podGracefulDeletionTimeoutSec,omitempty"`
	// Pod is the pod template. Strings anywhere in it may hold
	// FrameworkController's placeholders {{FC_FRAMEWORK_NAMESPACE}},
	// {{FC_FRAMEWORK_NAME}}, {{FC_TASKROLE_NAME}}, {{FC_TASK_INDEX}},
	// {{FC_CONFIGMAP_NAME}} and {{FC_POD_NAME}}, replaced when each pod is
	// created. An empty restartPolicy becomes Never (a podkit default: the
	// apiserver's would be Always); Always is allowed, for services whose
	// pods never complete.
	Pod corev1.PodTemplateSpec `json:"pod"`
}

// FrameworkState is the state of a Framework (FrameworkController's names).
type FrameworkState string

// Framework states, in the order a Framework goes through them. An attempt
// goes CreationPending → CreationRequested (its ConfigMap is being created)
// → Preparing (tasks not all running yet) → Running → DeletionPending →
// DeletionRequested → Deleting → Completed; then the framework is retried
// (AttemptCreationPending again) or Completed.
const (
	FrameworkAttemptCreationPending   FrameworkState = "AttemptCreationPending"
	FrameworkAttemptCreationRequested FrameworkState = "AttemptCreationRequested"
	FrameworkAttemptPreparing         FrameworkState = "AttemptPreparing"
	FrameworkAttemptRunning           FrameworkState = "AttemptRunning"
	FrameworkAttemptDeletionPending   FrameworkState = "AttemptDeletionPending"
	FrameworkAttemptDeletionRequested FrameworkState = "AttemptDeletionRequested"
	FrameworkAttemptDeleting          FrameworkState = "AttemptDeleting"
	FrameworkAttemptCompleted         FrameworkState = "AttemptCompleted"
	FrameworkCompleted                FrameworkState = "Completed"
)

// TaskState is the state of one task (FrameworkController's names).
type TaskState string

// Task states; the same life cycle as FrameworkState, with a pod in place of
// the ConfigMap.
const (
	TaskAttemptCreationPending   TaskState = "AttemptCreationPending"
	TaskAttemptCreationRequested TaskState = "AttemptCreationRequested"
	TaskAttemptPreparing         TaskState = "AttemptPreparing"
	TaskAttemptRunning           TaskState = "AttemptRunning"
	TaskAttemptDeletionPending   TaskState = "AttemptDeletionPending"
	TaskAttemptDeletionRequested TaskState = "AttemptDeletionRequested"
	TaskAttemptDeleting          TaskState = "AttemptDeleting"
	TaskAttemptCompleted         TaskState = "AttemptCompleted"
	TaskCompleted                TaskState = "Completed"
)

// FrameworkStatus is the observed state of a Framework.
type FrameworkStatus struct {
	// StartTime is when the controller first saw the Framework.
	StartTime metav1.Time `json:"startTime"`
	// CompletionTime is when the Framework reached Completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// State is the Framework's state.
	State FrameworkState `json:"state"`
	// TransitionTime is when State last changed.
	TransitionTime metav1.Time `json:"transitionTime"`
	// RetryPolicyStatus counts the framework's retries.
	RetryPolicyStatus RetryPolicyStatus `json:"retryPolicyStatus"`
	// AttemptStatus is the current (or last) framework attempt.
	AttemptStatus FrameworkAttemptStatus `json:"attemptStatus"`
	// ReadyTasks is "ready/total" for display: tasks running with a pod IP
	// over all tasks (a podkit addition).
	// +optional
	ReadyTasks string `json:"readyTasks,omitempty"`
	// ObservedGeneration is the metadata.generation the controller last
	// acted on (a podkit addition): kstatus and GitOps health checks read
	// the conditions only when it equals metadata.generation.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions summarise State for generic tools (a podkit addition):
	// Running, Succeeded, Failed and Suspended, plus kstatus' Reconciling
	// and Stalled, so that `kubectl wait --for=condition=Succeeded` and
	// GitOps health checks work. They are derived from the state on every
	// status write; State and AttemptStatus stay the source of truth.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types set on status.conditions. Each is present with status
// True or False once the controller has written a status.
const (
	// ConditionRunning is True while the current attempt is
	// AttemptRunning: every task has run.
	ConditionRunning = "Running"
	// ConditionSucceeded is True once the Framework is Completed with a
	// succeeded completion status.
	ConditionSucceeded = "Succeeded"
	// ConditionFailed is True once the Framework is Completed with a
	// failed completion status (including a Stop).
	ConditionFailed = "Failed"
	// ConditionSuspended is True while spec.suspend holds the Framework
	// with no pod and no ConfigMap; it is False with reason Suspending
	// while the pods of a suspended attempt are still being deleted.
	ConditionSuspended = "Suspended"
	// ConditionReconciling is kstatus' "in progress" condition: True while
	// an attempt is being created, prepared, deleted or retried, or a
	// suspension is deleting pods; False once it runs, is held (executionType
	// Create or spec.suspend) or is Completed.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is kstatus' failure condition: True with
	// ConditionFailed.
	ConditionStalled = "Stalled"
	// ConditionGangScheduled is about the current attempt's all-or-nothing
	// placement through the upstream scheduling.k8s.io/v1beta1 PodGroup:
	// True (reason ReasonGangPlaced) once the scheduler placed the whole
	// gang; False with ReasonUnschedulable or ReasonSchedulerError and the
	// scheduler's message when it cannot, ReasonGangWaiting while it has
	// not yet, and ReasonGangAPIUnavailable or ReasonGangDisabled when the
	// attempt runs barrier-only (pods placed one by one). It keeps its value
	// while an attempt is deleted; the next attempt's gang resets it.
	ConditionGangScheduled = "GangScheduled"
)

// Condition reasons that are not a FrameworkState or a CompletionPhrase
// (those are used as reasons as they are).
const (
	// ReasonSuspended: spec.suspend holds the Framework without pods.
	ReasonSuspended = "Suspended"
	// ReasonSuspending: spec.suspend is set and the attempt's pods are
	// being deleted.
	ReasonSuspending = "Suspending"
	// ReasonResumed: spec.suspend was cleared after a suspension.
	ReasonResumed = "Resumed"
	// ReasonNotSuspended: spec.suspend is not set.
	ReasonNotSuspended = "NotSuspended"
	// ReasonExecutionTypeCreate: executionType Create holds the Framework.
	ReasonExecutionTypeCreate = "ExecutionTypeCreate"
	// ReasonGangPlaced: the scheduler placed every pod of the gang together
	// (the PodGroup's PodGroupInitiallyScheduled condition is True).
	ReasonGangPlaced = "Scheduled"
	// ReasonUnschedulable: the scheduler cannot place the whole gang (the
	// PodGroup's reason, with its message); no pod of it is bound.
	ReasonUnschedulable = "Unschedulable"
	// ReasonSchedulerError: the scheduler failed on the PodGroup.
	ReasonSchedulerError = "SchedulerError"
	// ReasonGangWaiting: the gang's PodGroup and pods exist and the
	// scheduler has not placed them yet.
	ReasonGangWaiting = "WaitingForScheduler"
	// ReasonGangAPIUnavailable: the cluster does not serve
	// scheduling.k8s.io/v1beta1 PodGroups, so the Framework runs
	// barrier-only.
	ReasonGangAPIUnavailable = "GangAPIUnavailable"
	// ReasonGangDisabled: the controller runs with gang placement turned
	// off, so the Framework runs barrier-only.
	ReasonGangDisabled = "GangDisabled"
)

// RetryPolicyStatus counts retries of a task or a framework.
type RetryPolicyStatus struct {
	// TotalRetriedCount counts every retry.
	TotalRetriedCount int32 `json:"totalRetriedCount"`
	// AccountableRetriedCount counts the retries charged to maxRetryCount
	// (not the Transient ones under fancyRetryPolicy).
	AccountableRetriedCount int32 `json:"accountableRetriedCount"`
	// RetryDelaySec is the delay before the pending retry, if any.
	// +optional
	RetryDelaySec *int64 `json:"retryDelaySec,omitempty"`
}

// FrameworkAttemptStatus is one attempt of the whole Framework.
type FrameworkAttemptStatus struct {
	// ID is the attempt number, from 0.
	ID int32 `json:"id"`
	// StartTime is when the attempt started.
	StartTime metav1.Time `json:"startTime"`
	// RunTime is when every task of the attempt first ran.
	// +optional
	RunTime *metav1.Time `json:"runTime,omitempty"`
	// CompletionTime is when the attempt completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// InstanceUID is "{id}_{configMapUID}", unique across attempts.
	// +optional
	InstanceUID *types.UID `json:"instanceUID,omitempty"`
	// ConfigMapName is the attempt's ConfigMap, {framework}-attempt.
	ConfigMapName string `json:"configMapName"`
	// ConfigMapUID is the UID of the attempt's ConfigMap once created.
	// +optional
	ConfigMapUID *types.UID `json:"configMapUID,omitempty"`
	// CompletionStatus says how the attempt completed.
	// +optional
	CompletionStatus *FrameworkAttemptCompletionStatus `json:"completionStatus,omitempty"`
	// TaskRoleStatuses are the roles' tasks, in spec order.
	// +optional
	TaskRoleStatuses []TaskRoleStatus `json:"taskRoleStatuses,omitempty"`
	// TaskRoleStatusesCompressed holds TaskRoleStatuses as gzipped JSON
	// when their JSON reaches CompressionMinBytes, so that a Framework of
	// thousands of tasks fits one etcd value: FrameworkController's
	// largeFrameworkCompression, with its field name. This package's JSON
	// encoding compresses and decompresses it by itself: Go readers and
	// writers only ever see TaskRoleStatuses.
	// +optional
	TaskRoleStatusesCompressed []byte `json:"taskRoleStatusesCompressed,omitempty"`
}

// FrameworkAttemptCompletionStatus is a CompletionStatus plus which
// completion policy triggered it.
type FrameworkAttemptCompletionStatus struct {
	CompletionStatus `json:",inline"`
	// Trigger is the task and policy that completed the attempt.
	// +optional
	Trigger *CompletionPolicyTriggerStatus `json:"trigger,omitempty"`
}

// CompletionPolicyTriggerStatus names what completed a framework attempt.
type CompletionPolicyTriggerStatus struct {
	// Message explains the trigger.
	Message string `json:"message"`
	// TaskRoleName is the role of the triggering task.
	// +optional
	TaskRoleName string `json:"taskRoleName,omitempty"`
	// TaskIndex is the index of the triggering task.
	// +optional
	TaskIndex int32 `json:"taskIndex,omitempty"`
}

// TaskRoleStatus holds the tasks of one role.
type TaskRoleStatus struct {
	// Name is the role's name.
	Name string `json:"name"`
	// PodGracefulDeletionTimeoutSec is the role's value when the attempt
	// started.
	// +optional
	PodGracefulDeletionTimeoutSec *int64 `json:"podGracefulDeletionTimeoutSec,omitempty"`
	// TaskStatuses are the role's tasks, by index.
	// +optional
	TaskStatuses []TaskStatus `json:"taskStatuses,omitempty"`
}

// TaskStatus is the observed state of one task.
type TaskStatus struct {
	// Index is the task's index in its role, from 0.
	Index int32 `json:"index"`
	// InstanceUID is "{attemptID}_{podUID}" of the current attempt.
	// +optional
	InstanceUID *types.UID `json:"instanceUID,omitempty"`
	// StartTime is when the task was first created.
	StartTime metav1.Time `json:"startTime"`
	// CompletionTime is when the task reached Completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// State is the task's state.
	State TaskState `json:"state"`
	// TransitionTime is when State last changed.
	TransitionTime metav1.Time `json:"transitionTime"`
	// DeletionPending is true when the controller wants the task's pod gone
	// (the framework attempt is completing).
	// +optional
	DeletionPending bool `json:"deletionPending,omitempty"`
	// RetryPolicyStatus counts the task's retries.
	RetryPolicyStatus RetryPolicyStatus `json:"retryPolicyStatus"`
	// AttemptStatus is the current (or last) attempt of the task.
	AttemptStatus TaskAttemptStatus `json:"attemptStatus"`
}

// TaskAttemptStatus is one attempt of a task: one pod.
type TaskAttemptStatus struct {
	// ID is the attempt number, from 0.
	ID int32 `json:"id"`
	// StartTime is when the attempt started.
	StartTime metav1.Time `json:"startTime"`
	// RunTime is when the pod first ran.
	// +optional
	RunTime *metav1.Time `json:"runTime,omitempty"`
	// CompletionTime is when the attempt completed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// InstanceUID is "{id}_{podUID}".
	// +optional
	InstanceUID *types.UID `json:"instanceUID,omitempty"`
	// PodName is {framework}-{role}-{index}.
	PodName string `json:"podName"`
	// PodUID is the UID of the attempt's pod once created.
	// +optional
	PodUID *types.UID `json:"podUID,omitempty"`
	// PodNodeName is the node the pod was scheduled to.
	// +optional
	PodNodeName *string `json:"podNodeName,omitempty"`
	// PodIP is the pod's IP once it has one.
	// +optional
	PodIP *string `json:"podIP,omitempty"`
	// PodHostIP is the IP of the pod's node.
	// +optional
	PodHostIP *string `json:"podHostIP,omitempty"`
	// CompletionStatus says how the attempt completed.
	// +optional
	CompletionStatus *CompletionStatus `json:"completionStatus,omitempty"`
}

// CompletionStatus says how an attempt completed.
type CompletionStatus struct {
	// Code is 0 for success, the container's exit code for a container
	// failure, or one of the negative CompletionCode constants.
	Code CompletionCode `json:"code"`
	// Phrase names the code in one word.
	Phrase CompletionPhrase `json:"phrase"`
	// Type is Succeeded or Failed, with retry attributes.
	Type CompletionType `json:"type"`
	// Diagnostics is a human-readable explanation.
	// +optional
	Diagnostics string `json:"diagnostics,omitempty"`
	// Pod is the pod's own completion information, when a pod completed.
	// +optional
	Pod *PodCompletionStatus `json:"pod,omitempty"`
}

// PodCompletionStatus is what a completed pod said about itself.
type PodCompletionStatus struct {
	// Reason is the pod's status.reason.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is the pod's status.message.
	// +optional
	Message string `json:"message,omitempty"`
	// Containers are the containers that terminated with a non-zero code.
	// +optional
	Containers []ContainerCompletionStatus `json:"containers,omitempty"`
}

// ContainerCompletionStatus is one terminated container.
type ContainerCompletionStatus struct {
	// Name is the container's name.
	Name string `json:"name"`
	// Reason is the termination reason.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is the termination message.
	// +optional
	Message string `json:"message,omitempty"`
	// Signal is the terminating signal, if any.
	// +optional
	Signal int32 `json:"signal,omitempty"`
	// Code is the exit code.
	Code int32 `json:"code"`
}
