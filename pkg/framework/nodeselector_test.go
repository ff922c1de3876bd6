package framework

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

func TestNewPodTakesTheRoleNodeSelectorsAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name, annotation string
		template, want   map[string]string
	}{
		{name: "none", want: map[string]string{"zone": "z1"}, template: map[string]string{"zone": "z1"}},
		{name: "added to the template's", annotation: `{"worker":{"gpu":"a100"},"ps":{"cpu":"big"}}`, template: map[string]string{"zone": "z1"}, want: map[string]string{"zone": "z1", "gpu": "a100"}},
		{name: "replaces the same key", annotation: `{"worker":{"zone":"z2"}}`, template: map[string]string{"zone": "z1"}, want: map[string]string{"zone": "z2"}},
		{name: "template without selector", annotation: `{"worker":{"gpu":"a100"}}`, want: map[string]string{"gpu": "a100"}},
		{name: "another role only", annotation: `{"ps":{"cpu":"big"}}`, template: map[string]string{"zone": "z1"}, want: map[string]string{"zone": "z1"}},
		{name: "not an object: ignored", annotation: `["gpu"]`, template: map[string]string{"zone": "z1"}, want: map[string]string{"zone": "z1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw := testFramework()
			if tc.annotation != "" {
				fw.Annotations = map[string]string{v1.AnnotationRoleNodeSelectors: tc.annotation}
			}
			fw.Spec.TaskRoles[0].Task.Pod.Spec.NodeSelector = tc.template
			pod := NewPod(fw, &fw.Spec.TaskRoles[0], 0, 0)
			if diff := cmp.Diff(tc.want, pod.Spec.NodeSelector); diff != "" {
				t.Errorf("nodeSelector (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.template, fw.Spec.TaskRoles[0].Task.Pod.Spec.NodeSelector); diff != "" {
				t.Errorf("the template changed (-before +after):\n%s", diff)
			}
		})
	}
}
