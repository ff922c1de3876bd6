package fc_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/podkit-dev/podkit/api/fcv1"
	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
	"github.com/podkit-dev/podkit/internal/k8sbin"
	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/internal/testenv/fwtest"
	"github.com/podkit-dev/podkit/pkg/framework"
)

// installFCCRD renders config/fc-compat with kubectl kustomize, as the
// docs tell an FC user to, and installs it (the CRD and its RBAC).
func installFCCRD(t *testing.T) {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubectl, err := k8sbin.Path(k8sbin.Kubectl)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", root+"/config/fc-compat").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize config/fc-compat: %v", err)
	}
	ctx := context.Background()
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			t.Fatal(err)
		}
		// Already there when -count runs this test again on the package's
		// control plane: the same objects, from the same kustomization.
		if err := env.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create %s %s from config/fc-compat: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
	testenv.WaitFor(t, 30*time.Second, "FC CRD served", func(ctx context.Context) (bool, error) {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(fcv1.GroupVersion.WithKind("FrameworkList"))
		return env.Client.List(ctx, l) == nil, nil
	})
}

// startFCController runs the controller on FrameworkController's API group.
func startFCController(t *testing.T, ns string) {
	t.Helper()
	fwtest.Start(t, env, fwtest.Options{Namespace: ns, Reconciler: framework.Options{API: framework.APIFrameworkController}})
}

func getFC(t *testing.T, ctx context.Context, ns, name string) *fcv1.Framework {
	t.Helper()
	fw := &fcv1.Framework{}
	if err := fcClient(t).Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, fw); err != nil {
		t.Fatal(err)
	}
	return fw
}

func fcClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(env.Config, client.Options{Scheme: fwtest.Scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFC(t *testing.T, ns, name, what string, cond func(*v1.Framework) bool) *v1.Framework {
	t.Helper()
	c := fcClient(t)
	var last *v1.Framework
	testenv.WaitFor(t, 60*time.Second, name+": "+what, func(ctx context.Context) (bool, error) {
		fw := &fcv1.Framework{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, fw); err != nil {
			return false, err
		}
		last = fw.V1alpha1()
		return last.Status != nil && cond(last), nil
	})
	return last
}

// TestFCCompatServesFrameworkControllersAPI runs FC's own YAML (apiVersion
// frameworkcontroller.microsoft.com/v1) and takes over a Framework that
// FrameworkController itself started: its ConfigMap, its pod owned by that
// ConfigMap without a task-index label, and its status, as FC writes them.
func TestFCCompatServesFrameworkControllersAPI(t *testing.T) {
	installFCCRD(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	c := fcClient(t)

	// A Framework FC started before the swap.
	inherited := &fcv1.Framework{}
	if err := yaml.UnmarshalStrict([]byte(fcManifest("inherited", 2, "")), inherited); err != nil {
		t.Fatal(err)
	}
	inherited.Namespace = ns
	if err := c.Create(ctx, inherited); err != nil {
		t.Fatalf("create an FC-group Framework: %v", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "inherited-attempt", Namespace: ns,
		Labels:          map[string]string{v1.LabelFrameworkName: "inherited"},
		Annotations:     map[string]string{v1.AnnotationFrameworkAttemptID: "0"},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(inherited, fcv1.FrameworkGroupVersionKind)}}}
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	instance := types.UID("0_" + string(cm.UID))
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "inherited-w-0", Namespace: ns,
		Labels: map[string]string{v1.LabelFrameworkName: "inherited", v1.LabelTaskRoleName: "w"},
		Annotations: map[string]string{v1.AnnotationTaskIndex: "0", v1.AnnotationTaskRoleName: "w", v1.AnnotationTaskAttemptID: "0",
			v1.AnnotationFrameworkAttemptInstanceUID: string(instance)},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cm, corev1.SchemeGroupVersion.WithKind("ConfigMap"))}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "ubuntu:trusty"}}}}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// Task 1's pod: FC created it and stopped before recording it.
	unrecorded := pod.DeepCopy()
	unrecorded.ResourceVersion, unrecorded.UID = "", ""
	unrecorded.Name = "inherited-w-1"
	unrecorded.Annotations[v1.AnnotationTaskIndex] = "1"
	if err := c.Create(ctx, unrecorded); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	cmUID, podUID := cm.UID, pod.UID
	podInstance := types.UID("0_" + string(pod.UID))
	inherited.Status = &v1.FrameworkStatus{StartTime: now, State: v1.FrameworkAttemptRunning, TransitionTime: now,
		AttemptStatus: v1.FrameworkAttemptStatus{StartTime: now, RunTime: &now, ConfigMapName: "inherited-attempt", ConfigMapUID: &cmUID, InstanceUID: &instance,
			TaskRoleStatuses: []v1.TaskRoleStatus{{Name: "w", TaskStatuses: []v1.TaskStatus{{Index: 0, StartTime: now, State: v1.TaskAttemptRunning, TransitionTime: now,
				InstanceUID: &podInstance, AttemptStatus: v1.TaskAttemptStatus{StartTime: now, RunTime: &now, PodName: "inherited-w-0", PodUID: &podUID, InstanceUID: &podInstance}},
				{Index: 1, StartTime: now, State: v1.TaskAttemptCreationPending, TransitionTime: now, AttemptStatus: v1.TaskAttemptStatus{StartTime: now, PodName: "inherited-w-1"}}}}}}}
	if err := c.Status().Update(ctx, inherited); err != nil {
		t.Fatalf("write FC's status: %v", err)
	}

	startFCController(t, ns)

	// A new Framework from FC's own YAML, unchanged.
	fresh := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(fcManifest("batchsucceeded", 1, "0")), &fresh.Object); err != nil {
		t.Fatal(err)
	}
	fresh.SetNamespace(ns)
	if err := env.Client.Create(ctx, fresh); err != nil {
		t.Fatalf("create FC's batchsucceeded: %v", err)
	}
	got := waitFC(t, ns, "batchsucceeded", "Completed", completed)
	check(t, got, want{0, "Succeeded", "[]", 0, 0})

	// The inherited one: taken over, never duplicated.
	got = waitFC(t, ns, "inherited", "observed by podkit", func(fw *v1.Framework) bool { return fw.Status.ReadyTasks == "2/2" })
	if n := podCount(t, ns, "inherited"); n != 2 {
		t.Fatalf("%d pods for the inherited Framework, want FC's two", n)
	}
	if uid := task(got, "w", 1).AttemptStatus.PodUID; uid == nil || *uid != unrecorded.UID {
		t.Errorf("task w-1 records pod %v, want FC's unrecorded pod %s adopted", uid, unrecorded.UID)
	}
	for _, p := range []*corev1.Pod{pod, unrecorded} {
		live := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), live); err != nil || live.UID != p.UID {
			t.Fatalf("FC's pod %s was replaced: %v", p.Name, err)
		}
		patchBody := fmt.Sprintf(`{"metadata":{"annotations":{%q:"0"}}}`, testenv.AnnotationExitCode)
		if err := c.Patch(ctx, live, client.RawPatch(types.MergePatchType, []byte(patchBody))); err != nil {
			t.Fatal(err)
		}
	}
	got = waitFC(t, ns, "inherited", "Completed", completed)
	check(t, got, want{0, "Succeeded", "[]", 0, 0})
	if fw := getFC(t, ctx, ns, "inherited"); fw.Status.AttemptStatus.ID != 0 {
		t.Errorf("attempt %d, want FC's attempt 0 completed", fw.Status.AttemptStatus.ID)
	}
}

// fcManifest is an FC example Framework of n tasks, apiVersion and all.
func fcManifest(name string, n int, exit string) string {
	m := manifest(name, false, 0, role("w", n, false, 0, 1, -1, exit, ""))
	return string(bytes.Replace([]byte(m), []byte("apiVersion: podkit.dev/v1alpha1"), []byte("apiVersion: frameworkcontroller.microsoft.com/v1"), 1))
}
