package fork

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestOptionsValidateNamesFieldAndFix(t *testing.T) {
	tests := []struct {
		name string
		path string
		opts Options
		want string
	}{
		{"empty path", "", Options{}, "fork path is empty"},
		{"path not a label value", "a/b", Options{}, `fork path "a/b" is not a valid label value`},
		{"path over 63 characters", strings.Repeat("p", 64), Options{}, "use at most 63 letters"},
		{"negative log limit", "w", Options{LogLimitBytes: -1}, "Options.LogLimitBytes -1 is negative"},
		{"restart always", "w", Options{RestartPolicy: corev1.RestartPolicyAlways}, "Options.RestartPolicy \"Always\": use Never or OnFailure"},
		{"negative timeout", "w", Options{Timeout: -time.Second}, "Options.Timeout -1s is negative"},
		{"negative log lines", "w", Options{LogLines: -1}, "Options.LogLines -1 is negative"},
		{"env sets fork path", "w", Options{Env: []corev1.EnvVar{{Name: EnvForkPath}}}, "pass the path as the forkPath argument"},
		{"env without name", "w", Options{Env: []corev1.EnvVar{{Value: "x"}}}, "Options.Env has an entry without a name"},
		{"volume without name", "w", Options{Volumes: []corev1.Volume{{}}}, "Options.Volumes[0] has no name"},
		{"reserved label", "w", Options{Labels: map[string]string{LabelPath: "x"}}, "is reserved by fork"},
		{"bad label value", "w", Options{Labels: map[string]string{"a": "b c"}}, `Options.Labels["a"] value "b c"`},
		{"reserved annotation", "w", Options{Annotations: map[string]string{AnnotationParent: "x"}}, "Options.Annotations key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.setDefaults()
			assertErrorContains(t, tt.opts.validate(tt.path), tt.want)
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	var o Options
	o.setDefaults()
	if err := o.validate("worker"); err != nil {
		t.Fatalf("validate() = %v, want nil", err)
	}
	if o.RestartPolicy != corev1.RestartPolicyNever || o.LogLines != DefaultLogLines {
		t.Errorf("defaults = %q, %d; want Never, %d", o.RestartPolicy, o.LogLines, DefaultLogLines)
	}
}
