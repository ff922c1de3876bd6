package v1alpha1

// CompletionCode is 0 for success, a container's exit code (> 0) for a
// container failure, or one of the negative codes below for failures the
// controller itself observed.
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
	// Attributes are Transient or Permanent (or none: unknown).
	// +optional
	Attributes []CompletionTypeAttribute `json:"attributes,omitempty"`
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
)

// Completion codes set by the controller.
const (
	CompletionCodeSucceeded CompletionCode = 0
	// CompletionCodeContainerFailedUnknown: the pod failed but no container
	// reported a non-zero exit code.
	CompletionCodeContainerFailedUnknown CompletionCode = -1
	// CompletionCodePodExternalDeleted: the task's pod was deleted by
	// someone other than the controller (Transient).
	CompletionCodePodExternalDeleted CompletionCode = -200
	// CompletionCodeConfigMapExternalDeleted: the attempt's ConfigMap was
	// deleted by someone other than the controller (Transient).
	CompletionCodeConfigMapExternalDeleted CompletionCode = -201
	// CompletionCodePodCreationRejected: the apiserver rejected the pod as
	// invalid (Permanent).
	CompletionCodePodCreationRejected CompletionCode = -202
	// CompletionCodeStopFrameworkRequested: spec.executionType became Stop
	// (Permanent).
	CompletionCodeStopFrameworkRequested CompletionCode = -210
	// CompletionCodeFrameworkAttemptCompletion: the task's pod was deleted
	// because its framework attempt completed.
	CompletionCodeFrameworkAttemptCompletion CompletionCode = -220
	// CompletionCodePodEvicted: the pod was evicted or its node lost
	// (Transient).
	CompletionCodePodEvicted CompletionCode = -230
)

// CompletionCodeInfo is the phrase and type of a predefined code.
type CompletionCodeInfo struct {
	Phrase CompletionPhrase
	Type   CompletionType
}

// CompletionCodeInfos describes the predefined (non-exit-code) codes.
var CompletionCodeInfos = map[CompletionCode]CompletionCodeInfo{
	CompletionCodeSucceeded: {"Succeeded",
		CompletionType{Name: CompletionTypeNameSucceeded}},
	CompletionCodeContainerFailedUnknown: {"ContainerFailedUnknown",
		CompletionType{Name: CompletionTypeNameFailed}},
	CompletionCodePodExternalDeleted: {"PodExternalDeleted",
		CompletionType{Name: CompletionTypeNameFailed, Attributes: []CompletionTypeAttribute{CompletionTypeAttributeTransient}}},
	CompletionCodeConfigMapExternalDeleted: {"ConfigMapExternalDeleted",
		CompletionType{Name: CompletionTypeNameFailed, Attributes: []CompletionTypeAttribute{CompletionTypeAttributeTransient}}},
	CompletionCodePodCreationRejected: {"PodCreationRejected",
		CompletionType{Name: CompletionTypeNameFailed, Attributes: []CompletionTypeAttribute{CompletionTypeAttributePermanent}}},
	CompletionCodeStopFrameworkRequested: {"StopFrameworkRequested",
		CompletionType{Name: CompletionTypeNameFailed, Attributes: []CompletionTypeAttribute{CompletionTypeAttributePermanent}}},
	CompletionCodeFrameworkAttemptCompletion: {"FrameworkAttemptCompletion",
		CompletionType{Name: CompletionTypeNameFailed}},
	CompletionCodePodEvicted: {"PodEvicted",
		CompletionType{Name: CompletionTypeNameFailed, Attributes: []CompletionTypeAttribute{CompletionTypeAttributeTransient}}},
}

// NewCompletionStatus builds the status of a code: a predefined code gets
// its phrase and type; any other non-zero code is a container exit code.
func NewCompletionStatus(code CompletionCode, diagnostics string) *CompletionStatus {
	info, ok := CompletionCodeInfos[code]
	if !ok {
		info = CompletionCodeInfo{Phrase: "ContainerFailed", Type: CompletionType{Name: CompletionTypeNameFailed}}
	}
	return &CompletionStatus{
		Code:        code,
		Phrase:      info.Phrase,
		Type:        CompletionType{Name: info.Type.Name, Attributes: append([]CompletionTypeAttribute(nil), info.Type.Attributes...)},
		Diagnostics: diagnostics,
	}
}

// Succeeded reports whether the completion is a success.
func (s *CompletionStatus) Succeeded() bool {
	return s != nil && s.Type.Name == CompletionTypeNameSucceeded
}

// HasAttribute reports whether the completion type carries attr.
func (t CompletionType) HasAttribute(attr CompletionTypeAttribute) bool {
	for _, a := range t.Attributes {
		if a == attr {
			return true
		}
	}
	return false
}
