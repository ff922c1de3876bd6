package v1alpha1_test

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env, func(o *testenv.Options) {
		o.SchemeBuilders = append(o.SchemeBuilders, v1.AddToScheme)
	}))
}

// validFramework is a minimal Framework the apiserver accepts.
func validFramework(ns, name string) *v1.Framework {
	return &v1.Framework{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1.FrameworkSpec{
			TaskRoles: []v1.TaskRoleSpec{{
				Name:       "worker",
				TaskNumber: 3,
				FrameworkAttemptCompletionPolicy: v1.CompletionPolicySpec{
					MinFailedTaskCount: 1, MinSucceededTaskCount: -1,
				},
				Task: v1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				}}},
			}},
		},
	}
}

func role(name string, n int32) v1.TaskRoleSpec {
	r := validFramework("", "").Spec.TaskRoles[0]
	r.Name, r.TaskNumber = name, n
	return r
}

func TestInvalidFrameworksAreRejectedNamingTheField(t *testing.T) {
	ns := env.Namespace(t)
	tests := []struct {
		name   string
		mutate func(fw *v1.Framework)
		// field and text must both appear in the apiserver's message.
		field, text string
	}{
		{"no task roles", func(fw *v1.Framework) { fw.Spec.TaskRoles = []v1.TaskRoleSpec{} }, "spec.taskRoles", "at least 1"},
		{"duplicate role names", func(fw *v1.Framework) { fw.Spec.TaskRoles = append(fw.Spec.TaskRoles, role("worker", 1)) }, "spec.taskRoles[1]", "Duplicate value"},
		{"role name not a DNS label", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].Name = "Worker_1" }, "spec.taskRoles[0].name", "lowercase letters and digits only"},
		// FC's pattern ^[a-z0-9]{1,63}$ has no '-'; with it, Framework "a"
		// role "b-c" and Framework "a-b" role "c" would both want pod a-b-c-0.
		{"role name with a dash", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].Name = "b-c" }, "spec.taskRoles[0].name", "claim the same pod"},
		{"role name too long", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].Name = strings.Repeat("w", 33) }, "spec.taskRoles[0].name", "may not be more than 32"},
		{"taskNumber negative", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].TaskNumber = -1 }, "spec.taskRoles[0].taskNumber", "greater than or equal to 0"},
		{"taskNumber above the cap", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].TaskNumber = 5001 }, "spec.taskRoles[0].taskNumber", "less than or equal to 5000"},
		{"total tasks above the cap", func(fw *v1.Framework) {
			fw.Spec.TaskRoles = []v1.TaskRoleSpec{role("a", 3000), role("b", 3000)}
		}, "spec.taskRoles", "at most 5000"},
		{"too many roles", func(fw *v1.Framework) {
			fw.Spec.TaskRoles = nil
			for i := range 33 {
				fw.Spec.TaskRoles = append(fw.Spec.TaskRoles, role("r"+strings.Repeat("x", i), 1))
			}
		}, "spec.taskRoles", "must have at most 32 items"},
		{"minFailedTaskCount above taskNumber", func(fw *v1.Framework) {
			fw.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy.MinFailedTaskCount = 4
		}, "spec.taskRoles[0].frameworkAttemptCompletionPolicy.minFailedTaskCount", "at most taskNumber"},
		{"minSucceededTaskCount above taskNumber", func(fw *v1.Framework) {
			fw.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy.MinSucceededTaskCount = 9
		}, "spec.taskRoles[0].frameworkAttemptCompletionPolicy.minSucceededTaskCount", "at most taskNumber"},
		{"minSucceededTaskCount below -1", func(fw *v1.Framework) {
			fw.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy.MinSucceededTaskCount = -2
		}, "spec.taskRoles[0].frameworkAttemptCompletionPolicy.minSucceededTaskCount", "greater than or equal to -1"},
		{"framework maxRetryCount below -2", func(fw *v1.Framework) { fw.Spec.RetryPolicy.MaxRetryCount = -3 }, "spec.retryPolicy.maxRetryCount", "greater than or equal to -2"},
		{"task maxRetryCount below -2", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].Task.RetryPolicy.MaxRetryCount = -7 }, "spec.taskRoles[0].task.retryPolicy.maxRetryCount", "greater than or equal to -2"},
		{"unknown executionType", func(fw *v1.Framework) { fw.Spec.ExecutionType = "Pause" }, "spec.executionType", "Unsupported value"},
		{"pod without containers", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].Task.Pod.Spec.Containers = nil }, "spec.taskRoles[0].task.pod.spec.containers", "Required value"},
		{"negative podGracefulDeletionTimeoutSec", func(fw *v1.Framework) {
			fw.Spec.TaskRoles[0].Task.PodGracefulDeletionTimeoutSec = ptr.To[int64](-1)
		}, "spec.taskRoles[0].task.podGracefulDeletionTimeoutSec", "greater than or equal to 0"},
		{"framework name longer than a label value", func(fw *v1.Framework) { fw.Name = strings.Repeat("f", 64) }, "metadata.name", "at most 63"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := validFramework(ns, "fw-"+strings.Repeat("x", i%3)+string(rune('a'+i%26)))
			tt.mutate(fw)
			err := env.Client.Create(context.Background(), fw)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: err = %v, want Invalid", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.field) || !strings.Contains(msg, tt.text) {
				t.Errorf("error %q\nmust name %q and say %q", msg, tt.field, tt.text)
			}
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ns := env.Namespace(t)
	fw := validFramework(ns, "defaults")
	// Zero values are omitted from the JSON, so the server defaults them.
	fw.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy = v1.CompletionPolicySpec{}
	if err := env.Client.Create(context.Background(), fw); err != nil {
		t.Fatalf("create: %v", err)
	}
	got := &v1.Framework{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(fw), got); err != nil {
		t.Fatal(err)
	}
	p := got.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy
	if got.Spec.ExecutionType != v1.ExecutionStart || p.MinFailedTaskCount != 1 || p.MinSucceededTaskCount != -1 || got.Spec.RetryPolicy.MaxRetryCount != 0 {
		t.Errorf("defaults: executionType=%q minFailed=%d minSucceeded=%d maxRetry=%d; want Start 1 -1 0",
			got.Spec.ExecutionType, p.MinFailedTaskCount, p.MinSucceededTaskCount, got.Spec.RetryPolicy.MaxRetryCount)
	}
}

func TestImmutableFieldsCannotChange(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(fw *v1.Framework)
		field  string
		text   string
	}{
		{"task pod template", func(fw *v1.Framework) { fw.Spec.TaskRoles[0].Task.Pod.Spec.Containers[0].Image = "alpine" }, "spec.taskRoles[0].task", "immutable"},
		{"framework retry policy", func(fw *v1.Framework) { fw.Spec.RetryPolicy.MaxRetryCount = 3 }, "spec.retryPolicy", "immutable"},
		{"scaling below minSucceededTaskCount", func(fw *v1.Framework) {
			fw.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy.MinSucceededTaskCount = 3
			fw.Spec.TaskRoles[0].TaskNumber = 2
		}, "spec.taskRoles[0].frameworkAttemptCompletionPolicy.minSucceededTaskCount", "in the same update as taskNumber"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw := validFramework(ns, "immutable-"+string(rune('a'+i)))
			if err := env.Client.Create(ctx, fw); err != nil {
				t.Fatalf("create: %v", err)
			}
			tt.mutate(fw)
			err := env.Client.Update(ctx, fw)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("update: err = %v, want Invalid", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.field) || !strings.Contains(msg, tt.text) {
				t.Errorf("error %q\nmust name %q and say %q", msg, tt.field, tt.text)
			}
		})
	}
}

// FC's rescale (doc/user-manual.md): taskNumber, the roles and their
// completion policies change on a live Framework.
func TestRescaleIsAllowed(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	fw := validFramework(ns, "rescalable")
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("create: %v", err)
	}
	fw.Spec.TaskRoles[0].TaskNumber = 5
	fw.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy.MinSucceededTaskCount = 5
	fw.Spec.TaskRoles = append(fw.Spec.TaskRoles, role("ps", 0))
	if err := env.Client.Update(ctx, fw); err != nil {
		t.Fatalf("scale up, new policy and a new role of 0 tasks must be allowed: %v", err)
	}
	fw.Spec.TaskRoles = fw.Spec.TaskRoles[1:]
	if err := env.Client.Update(ctx, fw); err != nil {
		t.Fatalf("deleting a role must be allowed: %v", err)
	}
}

func TestExecutionTypeGoesFromStartToStopOnly(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	fw := validFramework(ns, "stoppable")
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("create: %v", err)
	}
	fw.Spec.ExecutionType = v1.ExecutionStop
	if err := env.Client.Update(ctx, fw); err != nil {
		t.Fatalf("Start → Stop must be allowed: %v", err)
	}
	fw.Spec.ExecutionType = v1.ExecutionStart
	err := env.Client.Update(ctx, fw)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.executionType") {
		t.Fatalf("Stop → Start: err = %v, want Invalid naming spec.executionType", err)
	}
	created := validFramework(ns, "created")
	created.Spec.ExecutionType = v1.ExecutionCreate
	if err := env.Client.Create(ctx, created); err != nil {
		t.Fatalf("executionType Create (FC's third value) must be accepted: %v", err)
	}
	created.Spec.ExecutionType = v1.ExecutionStart
	if err := env.Client.Update(ctx, created); err != nil {
		t.Fatalf("Create → Start must be allowed: %v", err)
	}
	created.Spec.ExecutionType = v1.ExecutionCreate
	if err := env.Client.Update(ctx, created); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "from Start back to Create") {
		t.Fatalf("Start → Create: err = %v, want Invalid", err)
	}
}

// FrameworkController accepts these; so must podkit (FC's user manual and
// examples: service.yaml, batchwithservicesucceeded.yaml).
func TestFrameworkControllerSpecsAreAccepted(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	fw := validFramework(ns, "service")
	fw.Spec.Description = "a service that must keep running"
	fw.Spec.RetryPolicy.MaxRetryCount = -2
	r := &fw.Spec.TaskRoles[0]
	r.Task.RetryPolicy.MaxRetryCount = -2
	r.Task.Pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	r.FrameworkAttemptCompletionPolicy = v1.CompletionPolicySpec{MinFailedTaskCount: 1, MinSucceededTaskCount: 1}
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("a service Framework (restartPolicy Always, maxRetryCount -2, description) must be accepted: %v", err)
	}
	// An explicit 0 is FC's zero value for both counts.
	raw := []byte(`{"apiVersion":"podkit.dev/v1alpha1","kind":"Framework","metadata":{"name":"zeros","namespace":"` + ns + `"},
	"spec":{"taskRoles":[{"name":"worker","taskNumber":2,"frameworkAttemptCompletionPolicy":{"minFailedTaskCount":0,"minSucceededTaskCount":0},
	"task":{"pod":{"spec":{"containers":[{"name":"main","image":"busybox"}]}}}}]}}`)
	res := env.Clientset.CoreV1().RESTClient().Post().AbsPath("/apis/podkit.dev/v1alpha1/namespaces/"+ns+"/frameworks").SetHeader("Content-Type", "application/json").Body(raw).Do(ctx)
	if err := res.Error(); err != nil {
		t.Fatalf("minFailedTaskCount 0 and minSucceededTaskCount 0 must be accepted as in FC: %v", err)
	}
	got := &v1.Framework{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "zeros"}, got); err != nil {
		t.Fatal(err)
	}
	if p := got.Spec.TaskRoles[0].FrameworkAttemptCompletionPolicy; p.MinFailedTaskCount != 0 || p.MinSucceededTaskCount != 0 {
		t.Errorf("explicit zeros became %+v, want them kept", p)
	}
}

// spec.managedBy follows batch/v1 Job's: podkit's value by default, a
// domain-prefixed path, immutable (CEL, checked by the apiserver).
func TestManagedByIsDefaultedValidatedAndImmutable(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()

	fw := validFramework(ns, "managed-default")
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatalf("create: %v", err)
	}
	if fw.Spec.ManagedBy != v1.ManagedByPodkit {
		t.Errorf("defaulted managedBy = %q, want %q", fw.Spec.ManagedBy, v1.ManagedByPodkit)
	}
	fw.Spec.ManagedBy = "example.com/dispatcher"
	err := env.Client.Update(ctx, fw)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.managedBy") || !strings.Contains(err.Error(), "managedBy is immutable") {
		t.Errorf("changing managedBy: err = %v, want Invalid naming spec.managedBy and saying it is immutable", err)
	}

	other := validFramework(ns, "managed-other")
	other.Spec.ManagedBy = "example.com/dispatcher"
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatalf("create with another controller's managedBy: %v", err)
	}
	other.Spec.ManagedBy = v1.ManagedByPodkit
	if err := env.Client.Update(ctx, other); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "managedBy is immutable") {
		t.Errorf("taking a Framework over by changing managedBy: err = %v, want Invalid (immutable)", err)
	}
	// Other spec changes of a Framework with a foreign managedBy still pass.
	other.Spec.ManagedBy = "example.com/dispatcher"
	other.Spec.Description = "edited"
	if err := env.Client.Update(ctx, other); err != nil {
		t.Errorf("editing the description of a foreign-managed Framework: %v", err)
	}

	for _, bad := range []string{"dispatcher", "Example.com/x", "example.com/", "example.com/" + strings.Repeat("x", 60)} {
		fw := validFramework(ns, "managed-bad")
		fw.Spec.ManagedBy = bad
		err := env.Client.Create(ctx, fw)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.managedBy") {
			t.Errorf("managedBy %q: err = %v, want Invalid naming spec.managedBy", bad, err)
		}
	}
}
