package pods

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
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
	spec := &vPod.Spec
	for _, s := range spec.ImagePullSecrets {
		sec(s.Name)
	}
	for i := range spec.Volumes {
		volumeRefs(&spec.Volumes[i].VolumeSource, visit(cm), visit(sec), nil)
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

// SyncedReferences is References for a pod the policy lets through to the
// host, and nothing for one it refuses: a pod that is not synced uses
// nothing on the host.
func SyncedReferences(policy synccontext.Policy, vPod *corev1.Pod) (configMaps, secrets []string) {
	if len(Check(policy, vPod)) > 0 {
		return nil, nil
	}
	return References(vPod)
}

// visit adapts a name collector to volumeRefs.
func visit(collect func(string)) func(*string) { return func(n *string) { collect(*n) } }

// volumeRefs calls configMap, secret and other (PersistentVolumeClaims,
// Glusterfs endpoints) with each non-empty name of a virtual object that v
// names, through a pointer the caller may rewrite: ConfigMaps and Secrets of
// configMap, secret and projected sources, and the secret references of CSI
// and in-tree volumes (vcluster's pod translator renames the same set, see
// loft-sh/vcluster pkg/controllers/resources/pods/translate/translator.go
// translateVolumes). A nil function skips that kind.
func volumeRefs(v *corev1.VolumeSource, configMap, secret, other func(*string)) {
	call := func(fn func(*string), n *string) {
		if fn != nil && *n != "" {
			fn(n)
		}
	}
	ref := func(r *corev1.LocalObjectReference) {
		if r != nil {
			call(secret, &r.Name)
		}
	}
	switch {
	case v.ConfigMap != nil:
		call(configMap, &v.ConfigMap.Name)
	case v.Secret != nil:
		call(secret, &v.Secret.SecretName)
	case v.PersistentVolumeClaim != nil:
		call(other, &v.PersistentVolumeClaim.ClaimName)
	case v.Projected != nil:
		for j := range v.Projected.Sources {
			s := &v.Projected.Sources[j]
			if s.ConfigMap != nil {
				call(configMap, &s.ConfigMap.Name)
			}
			if s.Secret != nil {
				call(secret, &s.Secret.Name)
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
		call(secret, &v.AzureFile.SecretName)
	case v.Glusterfs != nil:
		call(other, &v.Glusterfs.EndpointsName)
	}
}
