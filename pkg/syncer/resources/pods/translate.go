package pods

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// tokenVolumePrefix names the service account token volume the virtual API
// server injects; the host pod runs without it.
const tokenVolumePrefix = "kube-api-access-"

// translatePod returns the host pod for vPod.
func translatePod(t *translator.Namespaced, vPod *corev1.Pod) *corev1.Pod {
	pPod := t.TranslateMetadata(vPod).(*corev1.Pod)
	ns := vPod.Namespace
	name := func(n string) string { return t.PhysicalName(n, ns) }
	spec := &pPod.Spec
	spec.NodeName = ""
	spec.ServiceAccountName = ""
	spec.DeprecatedServiceAccount = ""
	spec.AutomountServiceAccountToken = ptr.To(false)
	spec.PriorityClassName = ""
	spec.Priority = nil
	spec.PreemptionPolicy = nil
	spec.SchedulerName = ""
	if spec.Hostname == "" && len(validation.IsDNS1123Label(vPod.Name)) == 0 {
		spec.Hostname = vPod.Name
	}
	spec.Subdomain = ""
	for i := range spec.ImagePullSecrets {
		spec.ImagePullSecrets[i].Name = name(spec.ImagePullSecrets[i].Name)
	}
	volumes := spec.Volumes[:0]
	for _, v := range spec.Volumes {
		if strings.HasPrefix(v.Name, tokenVolumePrefix) {
			continue
		}
		if v.ConfigMap != nil {
			v.ConfigMap.Name = name(v.ConfigMap.Name)
		}
		if v.Secret != nil {
			v.Secret.SecretName = name(v.Secret.SecretName)
		}
		if v.Projected != nil {
			for j := range v.Projected.Sources {
				s := &v.Projected.Sources[j]
				if s.ConfigMap != nil {
					s.ConfigMap.Name = name(s.ConfigMap.Name)
				}
				if s.Secret != nil {
					s.Secret.Name = name(s.Secret.Name)
				}
			}
		}
		volumes = append(volumes, v)
	}
	spec.Volumes = volumes
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			translateContainer(&cs[i], name)
		}
	}
	for i := range spec.EphemeralContainers {
		c := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		translateContainer(&c, name)
		spec.EphemeralContainers[i].EphemeralContainerCommon = corev1.EphemeralContainerCommon(c)
	}
	pPod.Status = corev1.PodStatus{}
	return pPod
}

func translateContainer(c *corev1.Container, name func(string) string) {
	mounts := c.VolumeMounts[:0]
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(m.Name, tokenVolumePrefix) {
			mounts = append(mounts, m)
		}
	}
	c.VolumeMounts = mounts
	for i := range c.EnvFrom {
		if r := c.EnvFrom[i].ConfigMapRef; r != nil {
			r.Name = name(r.Name)
		}
		if r := c.EnvFrom[i].SecretRef; r != nil {
			r.Name = name(r.Name)
		}
	}
	for i := range c.Env {
		from := c.Env[i].ValueFrom
		if from == nil {
			continue
		}
		if r := from.ConfigMapKeyRef; r != nil {
			r.Name = name(r.Name)
		}
		if r := from.SecretKeyRef; r != nil {
			r.Name = name(r.Name)
		}
	}
}
