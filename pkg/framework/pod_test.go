package framework

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

func testFramework() *v1.Framework {
	fw := &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: "ns", UID: "fw-uid"},
		Spec: v1.FrameworkSpec{TaskRoles: []v1.TaskRoleSpec{{
			Name: "worker", TaskNumber: 2,
			Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
					Containers:     []corev1.Container{{Name: "main", Image: "busybox", Env: []corev1.EnvVar{{Name: "MINE", Value: "$(FC_TASK_INDEX)"}}}},
				},
			}},
		}}},
	}
	cmUID := types.UID("cm-uid")
	fw.Status = &v1.FrameworkStatus{AttemptStatus: v1.FrameworkAttemptStatus{
		ID: 2, ConfigMapName: "job-attempt", ConfigMapUID: &cmUID, InstanceUID: attemptInstanceUID(2, cmUID),
	}}
	return fw
}

func TestNewPodCarriesFrameworkControllerIdentity(t *testing.T) {
	fw := testFramework()
	pod := NewPod(fw, &fw.Spec.TaskRoles[0], 1, 3)
	if pod.Name != "job-worker-1" || pod.Namespace != "ns" {
		t.Errorf("pod = %s/%s, want ns/job-worker-1", pod.Namespace, pod.Name)
	}
	if !metav1.IsControlledBy(pod, fw) {
		t.Errorf("pod is not controlled by the framework: %+v", pod.OwnerReferences)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy = %q, want Never", pod.Spec.RestartPolicy)
	}
	wantLabels := map[string]string{"app": "x", "FC_FRAMEWORK_NAME": "job", "FC_TASKROLE_NAME": "worker", "FC_TASK_INDEX": "1"}
	if diff := cmp.Diff(wantLabels, pod.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if got := pod.Annotations[v1.AnnotationFrameworkAttemptInstanceUID]; got != "2_cm-uid" {
		t.Errorf("attempt instance annotation = %q, want 2_cm-uid", got)
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		for name, want := range map[string]string{
			"FC_FRAMEWORK_NAMESPACE": "ns", "FC_FRAMEWORK_NAME": "job", "FC_TASKROLE_NAME": "worker",
			"FC_TASK_INDEX": "1", "FC_POD_NAME": "job-worker-1", "FC_FRAMEWORK_ATTEMPT_ID": "2",
			"FC_TASK_ATTEMPT_ID": "3", "FC_CONFIGMAP_UID": "cm-uid", "FC_FRAMEWORK_UID": "fw-uid",
			"PODKIT_TASK_INDEX": "1", "PODKIT_FRAMEWORK_NAME": "job",
			"FC_TASK_ATTEMPT_INSTANCE_UID": "3_$(FC_POD_UID)", "PODKIT_TASK_ATTEMPT_INSTANCE_UID": "3_$(PODKIT_POD_UID)",
		} {
			if env[name].Value != want {
				t.Errorf("container %s: %s = %q, want %q", c.Name, name, env[name].Value, want)
			}
		}
		if ref := env["FC_POD_UID"].ValueFrom; ref == nil || ref.FieldRef.FieldPath != "metadata.uid" {
			t.Errorf("container %s: FC_POD_UID must come from metadata.uid", c.Name)
		}
	}
	// The user's own env comes after ours so $(FC_TASK_INDEX) expands.
	main := pod.Spec.Containers[0].Env
	if main[len(main)-1].Name != "MINE" {
		t.Errorf("user env must stay last, got %s", main[len(main)-1].Name)
	}
	if fw.Spec.TaskRoles[0].Task.Pod.Spec.Containers[0].Env[0].Name != "MINE" {
		t.Error("newPod mutated the template")
	}
	if !podBelongsTo(pod, fw, nil, 3) || podBelongsTo(pod, fw, nil, 2) {
		t.Error("podBelongsTo must match exactly the task attempt the pod was built for")
	}
}

func TestOptionsValidateNamesTheField(t *testing.T) {
	_, err := New(Options{CreationConcurrency: -1})
	if err == nil || !strings.Contains(err.Error(), "CreationConcurrency") {
		t.Fatalf("New with a negative CreationConcurrency: err = %v, want one naming the field", err)
	}
}
