package fork

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Child is a forked pod that Start created or adopted.
type Child struct {
	// Pod is the child as the API server returned it from Start.
	Pod *corev1.Pod
	// Adopted is true when the child already existed (an earlier call with
	// the same parent, path and instance created it) and was not created again.
	Adopted bool
	// Dropped lists the parent's sidecars and volumes left out of the child
	// (see Options.KeepSidecars and Options.DropContainers).
	Dropped []Dropped

	c    client.Client
	opts Options
}

// Run forks the current pod for forkPath and waits for the child to
// complete: Start followed by Child.Wait. A child that exits non-zero is not
// an error; the Result says so. Calling Run again with the same forkPath and
// Options.Instance (after a crash, say) adopts the existing child instead of
// creating a second one.
//
// Run needs to watch pods: c must implement client.WithWatch (see
// client.NewWithWatch), or Options.Clientset must be set.
func Run(ctx context.Context, c client.Client, forkPath string, opts Options) (*Result, error) {
	if _, ok := c.(client.WithWatch); !ok && opts.Clientset == nil {
		return nil, errors.New("fork run: the client cannot watch pods: build it with client.NewWithWatch or set Options.Clientset")
	}
	child, err := Start(ctx, c, forkPath, opts)
	if err != nil {
		return nil, err
	}
	return child.Wait(ctx)
}

// Start creates the child pod for forkPath, or adopts it when it already
// exists, and returns without waiting. The child runs the parent's spec made
// safe by PodSpecFrom, changed by opts; it has a deterministic name
// (ChildName), an ownerReference to the parent (so it is garbage-collected
// with it), and labels LabelParentUID and LabelPath.
func Start(ctx context.Context, c client.Client, forkPath string, opts Options) (*Child, error) {
	opts.setDefaults()
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if err := opts.validate(forkPath); err != nil {
		return nil, fmt.Errorf("fork options: %w", err)
	}
	parent, err := getParent(ctx, c, opts.LookupEnv)
	if err != nil {
		return nil, err
	}
	pod, dropped, err := newChildPod(parent, forkPath, &opts)
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		names := make([]string, 0, len(dropped))
		for _, d := range dropped {
			names = append(names, d.Kind+" "+d.Name+" ("+d.Reason+")")
		}
		opts.Logger.InfoContext(ctx, "fork leaves injected sidecars out of the child; set Options.KeepSidecars to keep them",
			"namespace", pod.Namespace, "name", pod.Name, "dropped", names)
	}
	child := &Child{Pod: pod, Dropped: dropped, c: c, opts: opts}
	err = c.Create(ctx, pod)
	if err == nil {
		return child, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, explain(err, "create", "pods", pod.Namespace, fmt.Sprintf("create child pod %s/%s", pod.Namespace, pod.Name))
	}
	existing := &corev1.Pod{}
	nn := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	if err := c.Get(ctx, nn, existing); err != nil {
		return nil, explain(err, "get", "pods", pod.Namespace, fmt.Sprintf("get existing child pod %s", nn))
	}
	// Labels can be set by anyone who can create pods; only the controller
	// owner reference, which names the parent's UID, says who made the child.
	if owner := metav1.GetControllerOf(existing); owner == nil || owner.UID != parent.UID || owner.Kind != "Pod" {
		got := "no controller"
		if owner != nil {
			got = fmt.Sprintf("controller %s %s (uid %s)", owner.Kind, owner.Name, owner.UID)
		}
		return nil, fmt.Errorf("%w: adopt child pod %s: it exists but its controller owner reference is not parent pod %s/%s (uid %s) but %s: delete it or choose another Options.Instance",
			ErrConflict, nn, parent.Namespace, parent.Name, parent.UID, got)
	}
	if existing.DeletionTimestamp != nil {
		return nil, fmt.Errorf("adopt child pod %s: it is being deleted: call again once it is gone", nn)
	}
	child.Pod = existing
	child.Adopted = true
	return child, nil
}

// newChildPod builds the child pod object from its parent and the options.
func newChildPod(parent *corev1.Pod, forkPath string, opts *Options) (*corev1.Pod, []Dropped, error) {
	for _, n := range opts.DropContainers {
		if !hasContainer(&parent.Spec, n) {
			return nil, nil, fmt.Errorf("fork options: Options.DropContainers names %q, which is no container of parent pod %s/%s", n, parent.Namespace, parent.Name)
		}
	}
	spec, dropped := podSpecFrom(parent, forkPath, opts.KeepSidecars, opts.DropContainers)
	if len(spec.Containers) == 0 {
		return nil, nil, fmt.Errorf("fork options: leaving out %v leaves the child of %s/%s without containers: drop fewer", dropped, parent.Namespace, parent.Name)
	}
	spec.RestartPolicy = opts.RestartPolicy
	if opts.ServiceAccountName != "" {
		spec.ServiceAccountName = opts.ServiceAccountName
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for _, v := range opts.Volumes {
		if volumes[v.Name] {
			return nil, nil, fmt.Errorf("fork options: Options.Volumes %q collides with a volume of the parent pod: rename it", v.Name)
		}
		volumes[v.Name] = true
		spec.Volumes = append(spec.Volumes, *v.DeepCopy())
	}
	for _, m := range opts.VolumeMounts {
		if !volumes[m.Name] {
			return nil, nil, fmt.Errorf("fork options: Options.VolumeMounts %q names no volume of the parent or of Options.Volumes", m.Name)
		}
	}
	for i := range spec.Containers {
		ctr := &spec.Containers[i]
		for _, e := range opts.Env {
			ctr.Env = slices.DeleteFunc(ctr.Env, func(x corev1.EnvVar) bool { return x.Name == e.Name })
			ctr.Env = append(ctr.Env, *e.DeepCopy())
		}
		for _, m := range opts.VolumeMounts {
			ctr.VolumeMounts = append(ctr.VolumeMounts, *m.DeepCopy())
		}
		if opts.Resources != nil {
			ctr.Resources = *opts.Resources.DeepCopy()
		}
	}

	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelParentUID] = string(parent.UID)
	labels[LabelPath] = forkPath
	annotations := maps.Clone(opts.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationParent] = parent.Name
	if opts.Instance != "" {
		annotations[AnnotationInstance] = opts.Instance
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        ChildName(parent.Name, parent.UID, forkPath, opts.Instance),
			Namespace:   parent.Namespace,
			Labels:      labels,
			Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1",
				Kind:       "Pod",
				Name:       parent.Name,
				UID:        parent.UID,
				// Controller keeps other controllers from adopting the child;
				// blockOwnerDeletion is left unset because setting it needs
				// update rights on the parent's finalizers.
				Controller: ptr.To(true),
			}},
		},
		Spec: *spec,
	}, dropped, nil
}

func hasContainer(spec *corev1.PodSpec, name string) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}
