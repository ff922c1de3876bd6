package framework

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// The expectations in this file are FrameworkController's, read from
// microsoft/frameworkcontroller: pkg/apis/frameworkcontroller/v1/completion.go
// (codes, phrases, type attributes, pod matching, ClassifyPodCreationError)
// and funcs.go (RetryPolicySpec.ShouldRetry).

// TestCompletionCodesAreFrameworkControllers pins every predefined code to
// FC's number, phrase and attributes (completion.go, initCompletionCodeInfos).
func TestCompletionCodesAreFrameworkControllers(t *testing.T) {
	type want struct {
		code   v1.CompletionCode
		phrase string
		name   string
		attrs  string
	}
	fc := []want{
		{200, "ContainerTransientFailed", "Failed", "Transient"},
		{201, "ContainerTransientConflictFailed", "Failed", "Transient,Conflict"},
		{210, "ContainerPermanentFailed", "Failed", "Permanent"},
		{0, "Succeeded", "Succeeded", ""},
		{-100, "ConfigMapExternalDeleted", "Failed", "Transient"},
		{-101, "PodExternalDeleted", "Failed", "Transient"},
		{-110, "ConfigMapLocalCacheCreationTimeout", "Failed", "Transient"},
		{-111, "PodLocalCacheCreationTimeout", "Failed", "Transient"},
		{-120, "PodCreationTransientError", "Failed", "Transient"},
		{-200, "PodCreationPermanentError", "Failed", "Permanent"},
		{-210, "StopFrameworkRequested", "Failed", "Permanent"},
		{-220, "FrameworkAttemptCompletion", "Failed", "Permanent"},
		{-230, "DeleteTaskRequested", "Failed", "Permanent"},
		{-300, "PodFailedWithoutFailedContainer", "Failed", ""},
		{-310, "PodCreationUnknownError", "Failed", ""},
		// Any other code is a container exit code nobody classified.
		{1, "ContainerUnrecognizedFailed", "Failed", ""},
		{137, "ContainerUnrecognizedFailed", "Failed", ""},
	}
	if got := len(v1.CompletionCodeInfos); got != len(fc)-2 {
		t.Errorf("%d predefined codes, FC has %d", got, len(fc)-2)
	}
	for _, w := range fc {
		cs := v1.NewCompletionStatus(w.code, "")
		var attrs []string
		for _, a := range cs.Type.Attributes {
			attrs = append(attrs, string(a))
		}
		if string(cs.Phrase) != w.phrase || string(cs.Type.Name) != w.name || strings.Join(attrs, ",") != w.attrs {
			t.Errorf("code %d = %s %s [%s], FC: %s %s [%s]", w.code, cs.Phrase, cs.Type.Name, strings.Join(attrs, ","), w.phrase, w.name, w.attrs)
		}
		// FC writes "attributes": [] when there are none.
		b, _ := json.Marshal(cs.Type)
		if w.attrs == "" && !strings.Contains(string(b), `"attributes":[]`) {
			t.Errorf("code %d type = %s, want an empty attributes list as FC writes it", w.code, b)
		}
	}
}

func terminated(name string, code int32, reason, msg string, finished int64) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, Message: msg, FinishedAt: metav1.Unix(finished, 0),
	}}}
}

func mustReconciler(t *testing.T, cfg *Config) *Reconciler {
	t.Helper()
	r, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPodFailureClassification follows completion.go's MatchCompletionCodeInfos
// and generatePodUnmatchedResult.
func TestPodFailureClassification(t *testing.T) {
	oom := &Config{PodFailureSpec: []FailureClass{{
		Code: 221, Phrase: "ContainerTensorflowOOMKilled",
		Type:        v1.CompletionType{Attributes: []v1.CompletionTypeAttribute{v1.CompletionTypeAttributePermanent}},
		PodPatterns: []PodPattern{{Containers: []ContainerPattern{{MessageRegex: `(?msi)tensorflow.*ResourceExhaustedError.*OOM.*`, CodeRange: Int32Range{Min: ptr32(1)}}}}},
	}, {
		Code: 250, Phrase: "PodEvicted",
		Type:        v1.CompletionType{Attributes: []v1.CompletionTypeAttribute{v1.CompletionTypeAttributeTransient}},
		PodPatterns: []PodPattern{{ReasonRegex: `^Evicted$`}},
	}}}
	tests := []struct {
		name   string
		cfg    *Config
		status corev1.PodStatus
		code   v1.CompletionCode
		phrase string
		diag   string
	}{
		{"running pod has no completion", nil, corev1.PodStatus{Phase: corev1.PodRunning}, 0, "", ""},
		{"succeeded", nil, corev1.PodStatus{Phase: corev1.PodSucceeded}, 0, "Succeeded", ""},
		{"exit 210 from any container is Permanent", nil, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", 1, "Error", "", 5), terminated("b", 210, "Error", "", 1)}},
			210, "ContainerPermanentFailed", "PodPattern matched: "},
		{"exit 201 is Transient Conflict", nil, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", 201, "Error", "", 1)}},
			201, "ContainerTransientConflictFailed", `"code":201`},
		{"exit 200 in an init container", nil, corev1.PodStatus{Phase: corev1.PodFailed,
			InitContainerStatuses: []corev1.ContainerStatus{terminated("init", 200, "Error", "", 1)}},
			200, "ContainerTransientFailed", ""},
		{"unmatched: the container that failed last gives the code", nil, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", 3, "Error", "", 9), terminated("b", 42, "Error", "", 5), terminated("c", 0, "Completed", "", 10)}},
			3, "ContainerUnrecognizedFailed", "PodPattern unmatched: "},
		{"failed without a failed container", nil, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded", Message: "too slow"},
			-300, "PodFailedWithoutFailedContainer", "too slow"},
		// FC's default podFailureSpec (issue #65's effective config).
		{"default spec: evicted", nil, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory",
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", 137, "Error", "", 1)}},
			-1000, "PodEvicted", `"reason":"Evicted"`},
		{"default spec: node lost", nil, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "NodeLost"}, -1001, "PodNodeLost", ""},
		{"default spec: out of cpu", nil, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "OutOfcpu"}, -1002, "PodScheduledToInsufficientResourceNode", ""},
		{"default spec: preempted", nil, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Preempting"}, -1003, "PodPreemptedForCriticalPod", ""},
		{"an empty configured spec drops the defaults", &Config{PodFailureSpec: []FailureClass{}}, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
			-300, "PodFailedWithoutFailedContainer", ""},
		{"configured pattern on the pod's reason", oom, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
			250, "PodEvicted", `"reason":"Evicted"`},
		{"configured container pattern", oom, corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{terminated("tf", 1, "Error", "Tensorflow: ResourceExhaustedError ... OOM when allocating", 1)}},
			221, "ContainerTensorflowOOMKilled", `"message":"Tensorflow: ResourceExhaustedError ... OOM when allocating","code":1`},
		{"predefined codes come before configured ones", oom, corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted",
			ContainerStatuses: []corev1.ContainerStatus{terminated("a", 210, "Error", "", 1)}},
			210, "ContainerPermanentFailed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustReconciler(t, tt.cfg)
			got := r.podCompletion(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: tt.status})
			if tt.phrase == "" {
				if got != nil {
					t.Fatalf("podCompletion = %+v, want nil", got)
				}
				return
			}
			if got == nil || got.Code != tt.code || string(got.Phrase) != tt.phrase || !strings.Contains(got.Diagnostics, tt.diag) {
				t.Fatalf("podCompletion = %+v, want code %d %s with diagnostics containing %q", got, tt.code, tt.phrase, tt.diag)
			}
			if got.Pod == nil || len(got.Pod.Containers) != len(tt.status.InitContainerStatuses)+len(tt.status.ContainerStatuses) {
				t.Errorf("pod completion = %+v, want every container recorded as FC does", got.Pod)
			}
		})
	}
}

func ptr32(v int32) *int32 { return &v }

func TestLoadConfigRejectsBadSpecsNamingTheField(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"podFailureSpec:\n- code: 210\n  phrase: X\n  podPatterns: [{reasonRegex: a}]\n", "podFailureSpec[0].code 210: is a predefined code"},
		{"podFailureSpec:\n- code: -5\n  phrase: X\n  podPatterns: [{reasonRegex: a}]\n", "podFailureSpec[0].code -5: lies in a reserved range"},
		{"podFailureSpec:\n- code: 220\n  phrase: X\n  podPatterns: [{containers: [{messageRegex: '(('}]}]\n", "podFailureSpec[0].podPatterns[0].containers[0].messageRegex"},
		{"podFailureSpec:\n- code: 220\n  phrase: X\n  type: {attributes: [Sometimes]}\n  podPatterns: [{reasonRegex: a}]\n", `unknown attribute "Sometimes"`},
		{"podFailureSpec:\n- code: 220\n  phrase: X\n  podPatterns: [{containers: [{codeRange: {min: 5, max: 1}}]}]\n", "codeRange: min 5 is above max 1"},
		{"podFailureSpec:\n- {code: 220, phrase: X, podPatterns: [{reasonRegex: a}]}\n- {code: 220, phrase: Y, podPatterns: [{reasonRegex: b}]}\n", "podFailureSpec[1].code 220: already used by podFailureSpec[0]"},
		{"podFailureSpec:\n- code: 205\n  phrase: X\n  podPatterns: [{reasonRegex: a}]\n", "podFailureSpec[0].code 205: lies in a reserved range"},
		{"workerNumbr: 3\n", "unknown field"},
		{"frameworkMinRetryDelaySecForTransientConflictFailed: 10\nframeworkMaxRetryDelaySecForTransientConflictFailed: 5\n", "min <= max"},
	}
	for _, tt := range tests {
		_, err := LoadConfig([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadConfig(%q) = %v, want an error containing %q", tt.yaml, err, tt.want)
		}
	}
	// An FC configuration as FC's docs show it: FC's other keys are
	// accepted and reported as ignored.
	c, err := LoadConfig([]byte("kubeClientQps: 200\nkubeClientBurst: 300\nworkerNumber: 500\nlargeFrameworkCompression: true\nframeworkCompletedRetainSec: 2592000\n" +
		"podFailureSpec:\n- code: 221\n  phrase: ContainerOOMKilled\n  type: {attributes: [Permanent]}\n  podPatterns:\n  - containers: [{reasonRegex: OOMKilled}]\n"))
	if err != nil || len(c.PodFailureSpec) != 1 || len(c.Ignored) != 5 {
		t.Fatalf("LoadConfig(FC's file) = %+v, %v; want one class and 5 ignored keys", c, err)
	}
}

// TestDecideRetryIsFrameworkControllersShouldRetry walks funcs.go's
// ShouldRetry: built-in never-retry codes, then fancyRetryPolicy, then
// maxRetryCount.
func TestDecideRetryIsFrameworkControllersShouldRetry(t *testing.T) {
	cs := func(c v1.CompletionCode) *v1.CompletionStatus { return v1.NewCompletionStatus(c, "") }
	// FC's config.go defaults: 60 s and 900 s.
	delays := retryDelays{minConflict: DefaultMinRetryDelayForTransientConflict, maxConflict: DefaultMaxRetryDelayForTransientConflict, rand: func() float64 { return 0.5 }}
	fancy := func(n int32) v1.RetryPolicySpec { return v1.RetryPolicySpec{FancyRetryPolicy: true, MaxRetryCount: n} }
	plain := func(n int32) v1.RetryPolicySpec { return v1.RetryPolicySpec{MaxRetryCount: n} }
	tests := []struct {
		name        string
		policy      v1.RetryPolicySpec
		retried     int32
		cs          *v1.CompletionStatus
		retry       bool
		accountable bool
		delay       time.Duration
	}{
		// FC user manual, fancyRetryPolicy: 210 is never retried...
		{"210 with fancy and maxRetryCount 1 is Permanent", fancy(1), 0, cs(210), false, true, 0},
		{"210 without fancy follows maxRetryCount", plain(1), 0, cs(210), true, true, 0},
		// ...201 is retried without counting, after a random delay...
		{"201 with fancy and maxRetryCount 0 is retried", fancy(0), 0, cs(201), true, false, 480 * time.Second},
		{"201 without fancy and maxRetryCount 0 is not", plain(0), 0, cs(201), false, true, 0},
		// ...200 at once.
		{"200 with fancy is retried at once", fancy(0), 7, cs(200), true, false, 0},
		{"pod deleted externally with fancy", fancy(0), 0, cs(-101), true, false, 0},
		{"unrecognized exit code with fancy follows maxRetryCount", fancy(1), 0, cs(1), true, true, 0},
		{"unrecognized exit code at maxRetryCount", fancy(1), 1, cs(1), false, true, 0},
		{"success never retried", plain(3), 0, cs(0), false, true, 0},
		{"success retried with -2", plain(-2), 9, cs(0), true, true, 0},
		{"failure retried with -2", plain(-2), 9, cs(1), true, true, 0},
		{"-1 retries failures without limit", plain(-1), 1000, cs(1), true, true, 0},
		{"no retry by default", plain(0), 0, cs(1), false, true, 0},
		{"stop requested never retried even with -2", plain(-2), 0, cs(-210), false, true, 0},
		{"framework attempt completion never retried", fancy(-1), 0, cs(-220), false, true, 0},
		{"deleted task never retried", plain(-2), 0, cs(-230), false, true, 0},
		{"pod spec refused never retried", plain(-1), 0, cs(-200), false, true, 0},
		// podkit's addition: an unknown creation error backs off.
		{"unknown creation error backs off", plain(-1), 3, cs(-310), true, true, 8 * time.Second},
		{"creation back-off is capped", plain(-1), 40, cs(-310), true, true, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decideRetry(tt.policy, v1.RetryPolicyStatus{AccountableRetriedCount: tt.retried}, tt.cs, delays)
			if d.Retry != tt.retry || d.Accountable != tt.accountable || d.Delay != tt.delay {
				t.Errorf("decideRetry = %+v, want retry=%v accountable=%v delay=%s", d, tt.retry, tt.accountable, tt.delay)
			}
			st := v1.RetryPolicyStatus{AccountableRetriedCount: tt.retried}
			applyRetry(&st, d)
			wantAcc := tt.retried
			if tt.retry && tt.accountable {
				wantAcc++
			}
			if st.AccountableRetriedCount != wantAcc || (tt.retry && st.TotalRetriedCount != 1) {
				t.Errorf("after applyRetry: %+v, want accountable %d and total 1 on a retry", st, wantAcc)
			}
		})
	}
	// The random delay covers FC's whole range [min, max] in whole seconds.
	for _, c := range []struct {
		r    float64
		want time.Duration
	}{{0, 60 * time.Second}, {0.999999, 900 * time.Second}} {
		delays.rand = func() float64 { return c.r }
		if got := decideRetry(fancy(0), v1.RetryPolicyStatus{}, cs(201), delays).Delay; got != c.want {
			t.Errorf("delay with rand %v = %s, want %s", c.r, got, c.want)
		}
	}
}

// TestClassifyCreationErrorIsFrameworkControllers follows completion.go's
// ClassifyPodCreationError.
func TestClassifyCreationErrorIsFrameworkControllers(t *testing.T) {
	gr := schema.GroupResource{Resource: "pods"}
	tests := []struct {
		name string
		err  error
		want v1.CompletionCode
	}{
		{"invalid", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "p", field.ErrorList{field.Required(field.NewPath("spec"), "")}), -200},
		{"too large", apierrors.NewRequestEntityTooLargeError("big"), -200},
		{"forbidden by policy", apierrors.NewForbidden(gr, "p", errors.New("violates PodSecurity")), -200},
		{"forbidden by quota", apierrors.NewForbidden(gr, "p", errors.New("exceeded quota: compute")), -120},
		{"bad request", apierrors.NewBadRequest("nope"), -310},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), -120},
		{"not an API error", io.ErrUnexpectedEOF, -120},
	}
	for _, tt := range tests {
		if got := classifyCreationError(tt.err); got.Code != tt.want {
			t.Errorf("%s: code %d (%s), FC: %d", tt.name, got.Code, got.Phrase, tt.want)
		}
	}
}
