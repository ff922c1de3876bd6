package fork

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// serviceAccountTokenVolumePrefix is the name prefix of the projected volume
// the ServiceAccount admission plugin adds to every pod that automounts its
// token (kube-api-access-<random>).
const serviceAccountTokenVolumePrefix = "kube-api-access-"

// NewPodSpec returns the specification for a child Pod to be forked off from
// the Pod in which you're currently running. The parent is found through the
// EnvPodName and EnvPodNamespace variables (or their PS_OPERATOR_* forms); the
// returned spec is the parent's made safe to create (see PodSpecFrom), with
// EnvForkPath set to forkPath in every app container.
func NewPodSpec(ctx context.Context, c client.Client, forkPath string) (*corev1.PodSpec, error) {
	parent, err := getParent(ctx, c, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	if err := validateForkPath(forkPath); err != nil {
		return nil, err
	}
	return PodSpecFrom(parent, forkPath), nil
}

// getParent reads the pod this process runs in.
func getParent(ctx context.Context, c client.Client, lookup LookupEnvFunc) (*corev1.Pod, error) {
	if c == nil {
		return nil, errors.New("get parent pod: client is nil")
	}
	nn, err := parentFromEnv(lookup)
	if err != nil {
		return nil, err
	}
	parent := &corev1.Pod{}
	if err := c.Get(ctx, nn, parent); err != nil {
		return nil, explain(err, "get", "pods", nn.Namespace, fmt.Sprintf("get parent pod %s", nn))
	}
	return parent, nil
}

func validateForkPath(forkPath string) error {
	if strings.TrimSpace(forkPath) == "" {
		return errors.New("fork path is empty: pass the name of the code path the child should take, e.g. \"worker\"")
	}
	return nil
}

// PodSpecFrom returns a deep copy of parent's spec made safe to create as a
// new pod, and it never modifies parent. It:
//
//   - clears nodeName so the scheduler places the child,
//   - leaves out the sidecars that admission webhooks injected into the parent
//     (Istio, Linkerd and Vault, known by their annotations) and native
//     sidecars (init containers with restartPolicy Always), with their
//     volumes: the child is injected afresh, not twice (Options.KeepSidecars
//     keeps them),
//   - clears every hostPort, which would keep the child off its parent's node,
//   - removes ephemeral containers and every liveness, readiness and startup probe,
//   - sets restartPolicy to Never,
//   - removes the service-account token volumes the API server injected
//     (projected kube-api-access-*) and their mounts, so that the child gets
//     its own,
//   - clears hostname, subdomain, readiness gates and the values admission
//     plugins compute again (priority, preemptionPolicy, overhead, the
//     deprecated serviceAccount field),
//   - sets EnvForkPath=forkPath in every app container, replacing any fork
//     path inherited from a parent that is itself a fork; init containers are
//     left alone.
func PodSpecFrom(parent *corev1.Pod, forkPath string) *corev1.PodSpec {
	spec, _ := podSpecFrom(parent, forkPath, false, nil)
	return spec
}

// podSpecFrom is PodSpecFrom with the sidecar policy of Options (KeepSidecars,
// DropContainers); it also returns what it left out.
func podSpecFrom(parent *corev1.Pod, forkPath string, keepSidecars bool, drop []string) (*corev1.PodSpec, []Dropped) {
	spec := parent.Spec.DeepCopy()
	dropped := dropSidecars(spec, parent, keepSidecars, drop)
	dropHostPorts(spec)

	spec.NodeName = ""
	spec.EphemeralContainers = nil
	spec.RestartPolicy = corev1.RestartPolicyNever
	spec.Hostname = ""
	spec.Subdomain = ""
	spec.ReadinessGates = nil
	spec.Priority = nil
	spec.PreemptionPolicy = nil
	spec.Overhead = nil
	spec.DeprecatedServiceAccount = ""

	removed := map[string]bool{}
	spec.Volumes = slices.DeleteFunc(spec.Volumes, func(v corev1.Volume) bool {
		if isInjectedTokenVolume(v) {
			removed[v.Name] = true
			return true
		}
		return false
	})
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c := &cs[i]
			c.LivenessProbe = nil
			c.ReadinessProbe = nil
			c.StartupProbe = nil
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
				return removed[m.Name]
			})
			if len(c.VolumeMounts) == 0 {
				c.VolumeMounts = nil
			}
		}
	}
	if len(spec.Volumes) == 0 {
		spec.Volumes = nil
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == EnvForkPath || e.Name == LegacyEnvForkPath
		})
		c.Env = append(c.Env, corev1.EnvVar{Name: EnvForkPath, Value: forkPath})
	}
	return spec, dropped
}

// isInjectedTokenVolume reports whether v is the service-account token volume
// added by the ServiceAccount admission plugin: a projected volume named
// kube-api-access-* whose sources include a service-account token. Token
// volumes a user declared under another name are kept.
func isInjectedTokenVolume(v corev1.Volume) bool {
	if !strings.HasPrefix(v.Name, serviceAccountTokenVolumePrefix) || v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}
