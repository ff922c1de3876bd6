package pods

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// References returns the names of the ConfigMaps and Secrets of its own
// namespace that vPod uses: in volumes (projected ones and the secret
// references of CSI and in-tree volumes included), env, envFrom and image
// pull secrets (kube-root-ca.crt of the injected token volume included: the
// host pod reads the virtual cluster's CA from its copy). Each list is sorted
// and without duplicates.
func References(vPod *corev1.Pod) (configMaps, secrets []string) {
	cm := func(n string) {
		if n != "" {
			configMaps = append(configMaps, n)
		}
	}
	sec := func(n string) {
		if n != "" {
			secrets = append(secrets, n)
		}
	}
	ref := func(r *corev1.LocalObjectReference) {
		if r != nil {
			sec(r.Name)
		}
	}
	spec := &vPod.Spec
	for _, s := range spec.ImagePullSecrets {
		sec(s.Name)
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		switch {
		case v.ConfigMap != nil:
			cm(v.ConfigMap.Name)
		case v.Secret != nil:
			sec(v.Secret.SecretName)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					cm(s.ConfigMap.Name)
				}
				if s.Secret != nil {
					sec(s.Secret.Name)
				}
			}
		case v.CSI != nil:
			ref(v.CSI.NodePublishSecretRef)
		case v.ISCSI != nil:
			ref(v.ISCSI.SecretRef)
		case v.RBD != nil:
			ref(v.RBD.SecretRef)
		case v.CephFS != nil:
			ref(v.CephFS.SecretRef)
		case v.FlexVolume != nil:
			ref(v.FlexVolume.SecretRef)
		case v.Cinder != nil:
			ref(v.Cinder.SecretRef)
		case v.ScaleIO != nil:
			ref(v.ScaleIO.SecretRef)
		case v.StorageOS != nil:
			ref(v.StorageOS.SecretRef)
		case v.AzureFile != nil:
			sec(v.AzureFile.SecretName)
		}
	}
	containers := slices.Concat(spec.InitContainers, spec.Containers)
	for i := range spec.EphemeralContainers {
		containers = append(containers, corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon))
	}
	for _, c := range containers {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cm(e.ConfigMapRef.Name)
			}
			if e.SecretRef != nil {
				sec(e.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				cm(r.Name)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				sec(r.Name)
			}
		}
	}
	slices.Sort(configMaps)
	slices.Sort(secrets)
	return slices.Compact(configMaps), slices.Compact(secrets)
}
