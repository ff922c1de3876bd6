package demo

import (
	"context"
	"fmt"
	"k8s.io/apimachinery/pkg/util/wait"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/devcluster"
	"github.com/podkit-dev/podkit/pkg/fork"
)

// forkPath is the code path the demo's child takes.
const forkPath = "worker"

// fork creates a parent pod that knows its own name through the downward
// API, then forks it with pkg/fork exactly as a program inside that pod
// would (the demo stands in for the parent's process) and waits for the
// child's result.
func (d *demo) fork(ctx context.Context) (string, error) {
	if !d.kwok {
		return "", skip("needs a kwok cluster: the parent pod's image podkit:dev is not pulled here")
	}
	ctx, cancel := context.WithTimeout(ctx, d.f.timeout)
	defer cancel()
	parent := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:      forkParentName,
			Namespace: d.ns,
			Labels:    map[string]string{"app.kubernetes.io/part-of": "podkit-demo"},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:    "app",
				Image:   "podkit:dev",
				Command: []string{"/podkit", "version"},
				Env: []corev1.EnvVar{
					{Name: fork.EnvPodName, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: fork.EnvPodNamespace, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
				},
			}},
		},
	}
	if err := d.cl.Create(ctx, parent); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create parent pod %s: %w", forkParentName, err)
	}
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := d.cl.Get(ctx, client.ObjectKeyFromObject(parent), parent); err != nil {
			return false, fmt.Errorf("get parent pod: %w", err)
		}
		return parent.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		return "", fmt.Errorf("wait for parent pod %s to run: %w", forkParentName, err)
	}
	d.printf("    parent pod %s is Running; forking it for path %q\n", forkParentName, forkPath)
	env := map[string]string{fork.EnvPodName: parent.Name, fork.EnvPodNamespace: parent.Namespace}
	start := time.Now()
	res, err := fork.Run(ctx, d.cl, forkPath, fork.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		// kwok runs no containers: the child "exits 0" through kwok's stage.
		Annotations: map[string]string{devcluster.AnnotationExitCode: "0"},
		Timeout:     d.f.timeout,
		Progress: func(p fork.Progress) {
			d.printf("    child %s: %s\n", p.Pod.Name, p.Summary)
		},
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("child %s %s with exit code %d after %s", res.Name, res.Phase, res.ExitCode(), time.Since(start).Round(10*time.Millisecond)), nil
}
