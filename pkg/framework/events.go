package framework

// Event reasons the controller records on Frameworks.
const (
	ReasonAttemptCreated       = "FrameworkAttemptCreated"
	ReasonAttemptCompleted     = "FrameworkAttemptCompleted"
	ReasonFrameworkRetrying    = "FrameworkRetrying"
	ReasonFrameworkCompleted   = "FrameworkCompleted"
	ReasonFrameworkStopping    = "FrameworkStopping"
	ReasonTaskFailed           = "TaskAttemptFailed"
	ReasonTaskRetrying         = "TaskRetrying"
	ReasonPodExternallyDeleted = "PodExternallyDeleted"
	ReasonPodCreationFailed    = "PodCreationFailed"
	ReasonPodNameConflict      = "PodNameConflict"
	ReasonRescaled             = "FrameworkRescaled"
	ReasonFrameworkSuspending  = "FrameworkSuspending"
	ReasonFrameworkSuspended   = "FrameworkSuspended"
	ReasonFrameworkResumed     = "FrameworkResumed"
	ReasonPodGroupConflict     = "PodGroupNameConflict"
)

// Event actions (events.k8s.io/v1 requires one).
const (
	actionCreate   = "Create"
	actionDelete   = "Delete"
	actionRetry    = "Retry"
	actionComplete = "Complete"
	actionObserve  = "Observe"
	actionRescale  = "Rescale"
)
