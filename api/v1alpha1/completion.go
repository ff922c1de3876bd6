package v1alpha1

import "slices"

// CompletionCode is 0 for success, a container's exit code (> 0) for a
// container failure, or one of the negative codes below for failures the
// controller itself observed. The numbers, phrases and attributes are
// FrameworkController's (pkg/apis/frameworkcontroller/v1/completion.go),
// so a status written here reads the same as one written by FC.
type CompletionCode int32

// CompletionPhrase names a CompletionCode in one word.
type CompletionPhrase string

// CompletionTypeName is Succeeded or Failed.
type CompletionTypeName string

// CompletionTypeAttribute classifies a failure for fancyRetryPolicy.
type CompletionTypeAttribute string

// CompletionType is the kind of a completion plus retry attributes.
type CompletionType struct {
	// Name is Succeeded or Failed.
	Name CompletionTypeName `json:"name"`
	// Attributes are Transient, Permanent and Conflict (none: unknown).
	// FrameworkController always writes the list, empty when there is none.
	// +optional
	Attributes []CompletionTypeAttribute `json:"attributes"`
}

// Completion type names and attributes.
const (
	CompletionTypeNameSucceeded CompletionTypeName = "Succeeded"
	CompletionTypeNameFailed    CompletionTypeName = "Failed"

	// CompletionTypeAttributeTransient marks a failure that a retry will
	// likely fix (the pod was deleted, evicted…).
	CompletionTypeAttributeTransient CompletionTypeAttribute = "Transient"
	// CompletionTypeAttributePermanent marks a failure no retry will fix.
	CompletionTypeAttributePermanent CompletionTypeAttribute = "Permanent"
	// CompletionTypeAttributeConflict marks a transient failure caused by
	// contention with other work (a resource or a port taken): the retry
	// waits a random back-off so that the contenders do not collide again.
	CompletionTypeAttributeConflict CompletionTypeAttribute = "Conflict"
)

// Completion codes. [200, 219] are container exit codes reserved for the
// contract between a task's container and the controller; [-999, 0] are the
// controller's own.
const (
	// CompletionCodeContainerTransientFailed: a container exited 200 to
	// ask for a retry (Transient).
	CompletionCodeContainerTransientFailed CompletionCode = 200
	// CompletionCodeContainerTransientConflictFailed: a container exited
	// 201 to ask for a retry after a random back-off (Transient, Conflict).
	CompletionCodeContainerTransientConflictFailed CompletionCode = 201
	// CompletionCodeContainerPermanentFailed: a container exited 210 to say
	// no retry will help (Permanent).
	CompletionCodeContainerPermanentFailed CompletionCode = 210

	// CompletionCodeSucceeded: every container succeeded.
	CompletionCodeSucceeded CompletionCode = 0

	// CompletionCodeConfigMapExternalDeleted: the attempt's ConfigMap was
	// deleted by someone other than the controller (Transient).
	CompletionCodeConfigMapExternalDeleted CompletionCode = -100
	// CompletionCodePodExternalDeleted: the task's pod was deleted by
	// someone other than the controller, e.g. by eviction or preemption
	// (Transient).
	CompletionCodePodExternalDeleted CompletionCode = -101
	// CompletionCodeConfigMapLocalCacheCreationTimeout: a ConfigMap the
	// controller created never appeared in its cache (Transient).
	CompletionCodeConfigMapLocalCacheCreationTimeout CompletionCode = -110
	// CompletionCodePodLocalCacheCreationTimeout: a pod the controller
	// created never appeared in its cache (Transient).
	CompletionCodePodLocalCacheCreationTimeout CompletionCode = -111
	// CompletionCodePodCreationTransientError: the pod could not be created
	// for a reason that may pass (quota, throttling, the apiserver
	// unreachable). It is retried with back-off and never completes a task.
	CompletionCodePodCreationTransientError CompletionCode = -120
	// CompletionCodePodCreationPermanentError: the apiserver refused the
	// pod (invalid, forbidden, too large) (Permanent).
	CompletionCodePodCreationPermanentError CompletionCode = -200
	// CompletionCodeStopFrameworkRequested: spec.executionType became Stop
	// (Permanent).
	CompletionCodeStopFrameworkRequested CompletionCode = -210
	// CompletionCodeFrameworkAttemptCompletion: the task's pod was deleted
	// because its framework attempt completed (Permanent).
	CompletionCodeFrameworkAttemptCompletion CompletionCode = -220
	// CompletionCodeDeleteTaskRequested: the task was removed by a scale
	// down or a role deletion (Permanent).
	CompletionCodeDeleteTaskRequested CompletionCode = -230
	// CompletionCodePodFailedWithoutFailedContainer: the pod failed but no
	// container exited non-zero.
	CompletionCodePodFailedWithoutFailedContainer CompletionCode = -300
	// CompletionCodePodCreationUnknownError: pod creation failed in a way
	// that may be permanent or transient (a bad request, or a permanent
	// error seen through a broken connection).
	CompletionCodePodCreationUnknownError CompletionCode = -310
)

// PhraseContainerUnrecognizedFailed is the phrase of a container exit code
// that no pod failure pattern matches; its type has no attribute.
const PhraseContainerUnrecognizedFailed CompletionPhrase = "ContainerUnrecognizedFailed"

// CompletionCodeInfo is the phrase and type of a predefined code.
type CompletionCodeInfo struct {
	Phrase CompletionPhrase
	Type   CompletionType
}

func failed(attrs ...CompletionTypeAttribute) CompletionType {
	return CompletionType{Name: CompletionTypeNameFailed, Attributes: append([]CompletionTypeAttribute{}, attrs...)}
}

// CompletionCodeInfos describes the predefined codes.
var CompletionCodeInfos = map[CompletionCode]CompletionCodeInfo{
	CompletionCodeContainerTransientFailed:           {"ContainerTransientFailed", failed(CompletionTypeAttributeTransient)},
	CompletionCodeContainerTransientConflictFailed:   {"ContainerTransientConflictFailed", failed(CompletionTypeAttributeTransient, CompletionTypeAttributeConflict)},
	CompletionCodeContainerPermanentFailed:           {"ContainerPermanentFailed", failed(CompletionTypeAttributePermanent)},
	CompletionCodeSucceeded:                          {"Succeeded", CompletionType{Name: CompletionTypeNameSucceeded, Attributes: []CompletionTypeAttribute{}}},
	CompletionCodeConfigMapExternalDeleted:           {"ConfigMapExternalDeleted", failed(CompletionTypeAttributeTransient)},
	CompletionCodePodExternalDeleted:                 {"PodExternalDeleted", failed(CompletionTypeAttributeTransient)},
	CompletionCodeConfigMapLocalCacheCreationTimeout: {"ConfigMapLocalCacheCreationTimeout", failed(CompletionTypeAttributeTransient)},
	CompletionCodePodLocalCacheCreationTimeout:       {"PodLocalCacheCreationTimeout", failed(CompletionTypeAttributeTransient)},
	CompletionCodePodCreationTransientError:          {"PodCreationTransientError", failed(CompletionTypeAttributeTransient)},
	CompletionCodePodCreationPermanentError:          {"PodCreationPermanentError", failed(CompletionTypeAttributePermanent)},
	CompletionCodeStopFrameworkRequested:             {"StopFrameworkRequested", failed(CompletionTypeAttributePermanent)},
	CompletionCodeFrameworkAttemptCompletion:         {"FrameworkAttemptCompletion", failed(CompletionTypeAttributePermanent)},
	CompletionCodeDeleteTaskRequested:                {"DeleteTaskRequested", failed(CompletionTypeAttributePermanent)},
	CompletionCodePodFailedWithoutFailedContainer:    {"PodFailedWithoutFailedContainer", failed()},
	CompletionCodePodCreationUnknownError:            {"PodCreationUnknownError", failed()},
}

// NewCompletionStatus builds the status of a code: a predefined code gets
// its phrase and type; any other code is an unrecognized container exit
// code (ContainerUnrecognizedFailed, no attribute).
func NewCompletionStatus(code CompletionCode, diagnostics string) *CompletionStatus {
	info, ok := CompletionCodeInfos[code]
	if !ok {
		info = CompletionCodeInfo{Phrase: PhraseContainerUnrecognizedFailed, Type: failed()}
	}
	return &CompletionStatus{
		Code:        code,
		Phrase:      info.Phrase,
		Type:        CompletionType{Name: info.Type.Name, Attributes: slices.Clone(info.Type.Attributes)},
		Diagnostics: diagnostics,
	}
}

// Succeeded reports whether the completion is a success.
func (s *CompletionStatus) Succeeded() bool {
	return s != nil && s.Type.Name == CompletionTypeNameSucceeded
}

// HasAttribute reports whether the completion type carries attr.
func (t CompletionType) HasAttribute(attr CompletionTypeAttribute) bool {
	return slices.Contains(t.Attributes, attr)
}
