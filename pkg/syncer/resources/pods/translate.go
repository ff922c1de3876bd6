package pods

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// tokenVolumePrefix names the service account token volume the virtual API
// server injects; the host pod runs without it.
const tokenVolumePrefix = "kube-api-access-"

// AnnotationToken, on a host pod, holds a token of the virtual pod's service
// account, issued by the virtual API server and bound to the virtual pod;
// the injected token volume reads it through the downward API (as vcluster's
// pod translator does with its token annotation). It is no token of the host.
const AnnotationToken = "podkit.dev/token"

// injectedTokenVolume reports whether v is the service account token volume
// the virtual API server injects: named kube-api-access-*, projected, and
// made of nothing but a service account token, ConfigMaps and downward API
// items. Any other volume, whatever its name, is checked like every volume.
func injectedTokenVolume(v *corev1.Volume) bool {
	if !strings.HasPrefix(v.Name, tokenVolumePrefix) || v.Projected == nil {
		return false
	}
	for _, s := range v.Projected.Sources {
		if s.Secret != nil || s.ClusterTrustBundle != nil || s.PodCertificate != nil {
			return false
		}
		if s.ServiceAccountToken == nil && s.ConfigMap == nil && s.DownwardAPI == nil {
			return false
		}
	}
	return true
}

// tokenSource returns the service account token projection of vPod's
// injected token volume, or nil.
func tokenSource(vPod *corev1.Pod) *corev1.ServiceAccountTokenProjection {
	for i := range vPod.Spec.Volumes {
		if v := &vPod.Spec.Volumes[i]; injectedTokenVolume(v) {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					return s.ServiceAccountToken
				}
			}
		}
	}
	return nil
}

// translatePod returns the host pod for vPod: metadata translated (label
// keys rewritten), every reference to a virtual object renamed to its host
// copy, no service account, token or service links of the host, and
// scheduling left to the host; the API server and DNS of the virtual cluster
// where n sets them. token is a token of the virtual cluster for the
// injected token volume; without one that volume and its mounts are
// dropped. It does not check the policy: see Check.
func translatePod(t *translator.Namespaced, vPod *corev1.Pod, token string, n synccontext.PodNetwork) *corev1.Pod {
	pPod := t.TranslateMetadata(vPod).(*corev1.Pod)
	ns := vPod.Namespace
	name := func(n string) string { return t.PhysicalName(n, ns) }
	spec := &pPod.Spec
	spec.NodeName = ""
	spec.ServiceAccountName = ""
	spec.DeprecatedServiceAccount = ""
	spec.AutomountServiceAccountToken = ptr.To(false)
	spec.EnableServiceLinks = ptr.To(false) // host Services are none of the tenant's business
	spec.PriorityClassName = ""
	spec.Priority = nil
	spec.PreemptionPolicy = nil
	spec.SchedulerName = ""
	if spec.Hostname == "" && len(validation.IsDNS1123Label(vPod.Name)) == 0 {
		spec.Hostname = vPod.Name
	}
	spec.Subdomain = ""
	translateDownwardAPI(pPod, vPod)
	translateNetwork(pPod, vPod, n)
	if spec.Affinity != nil {
		translateAffinity(t, spec.Affinity, ns)
	}
	for i := range spec.TopologySpreadConstraints {
		c := &spec.TopologySpreadConstraints[i]
		c.LabelSelector = t.TranslateLabelSelector(c.LabelSelector, ns)
		for j, k := range c.MatchLabelKeys {
			c.MatchLabelKeys[j] = translator.HostLabelKey(k)
		}
	}
	for i := range spec.ImagePullSecrets {
		spec.ImagePullSecrets[i].Name = name(spec.ImagePullSecrets[i].Name)
	}
	volumes := spec.Volumes[:0]
	dropped := map[string]bool{}
	for _, v := range spec.Volumes {
		if injectedTokenVolume(&v) {
			if token == "" {
				dropped[v.Name] = true
				continue
			}
			readTokenFromAnnotation(v.Projected)
			pPod.Annotations[AnnotationToken] = token
		}
		translateVolume(&v.VolumeSource, name)
		volumes = append(volumes, v)
	}
	spec.Volumes = volumes
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			translateContainer(&cs[i], name, dropped)
		}
	}
	for i := range spec.EphemeralContainers {
		c := corev1.Container(spec.EphemeralContainers[i].EphemeralContainerCommon)
		translateContainer(&c, name, dropped)
		spec.EphemeralContainers[i].EphemeralContainerCommon = corev1.EphemeralContainerCommon(c)
	}
	pPod.Status = corev1.PodStatus{}
	return pPod
}

// Annotations of host pods that hold virtual values for the downward API.
const (
	// AnnotationUID holds the virtual pod's UID.
	AnnotationUID = "podkit.dev/object-uid"
	// AnnotationLabels holds the virtual pod's labels as the downward API
	// writes metadata.labels: sorted key="value" lines.
	AnnotationLabels = "podkit.dev/labels"
	// AnnotationServiceAccountName holds the virtual pod's
	// spec.serviceAccountName (the host pod runs without one).
	AnnotationServiceAccountName = "podkit.dev/service-account-name"
)

// translateDownwardAPI points the downward API at virtual values: the host
// pod's metadata.name, namespace, uid, labels and spec.serviceAccountName
// are the host's, so fields
// that read them read annotations holding the virtual ones instead, and a
// label key is rewritten as the labels are (vcluster does the same, see
// loft-sh/vcluster pkg/controllers/resources/pods/translate translateFieldRef).
func translateDownwardAPI(pPod, vPod *corev1.Pod) {
	pPod.Annotations[AnnotationUID] = string(vPod.UID)
	pPod.Annotations[AnnotationLabels] = formatLabels(vPod.Labels)
	pPod.Annotations[AnnotationServiceAccountName] = vPod.Spec.ServiceAccountName
	ref := func(f *corev1.ObjectFieldSelector) {
		if f == nil {
			return
		}
		annotation := func(k string) string { return "metadata.annotations['" + k + "']" }
		switch path := f.FieldPath; {
		case path == "metadata.name":
			f.FieldPath = annotation(translator.AnnotationName)
		case path == "metadata.namespace":
			f.FieldPath = annotation(translator.AnnotationNamespace)
		case path == "metadata.uid":
			f.FieldPath = annotation(AnnotationUID)
		case path == "metadata.labels":
			f.FieldPath = annotation(AnnotationLabels)
		case path == "spec.serviceAccountName":
			f.FieldPath = annotation(AnnotationServiceAccountName)
		case strings.HasPrefix(path, "metadata.labels['") && strings.HasSuffix(path, "']"):
			key := strings.TrimSuffix(strings.TrimPrefix(path, "metadata.labels['"), "']")
			f.FieldPath = "metadata.labels['" + translator.HostLabelKey(key) + "']"
		}
	}
	items := func(files []corev1.DownwardAPIVolumeFile) {
		for i := range files {
			ref(files[i].FieldRef)
		}
	}
	spec := &pPod.Spec
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		if v.DownwardAPI != nil {
			items(v.DownwardAPI.Items)
		}
		if v.Projected != nil {
			for j := range v.Projected.Sources {
				if d := v.Projected.Sources[j].DownwardAPI; d != nil {
					items(d.Items)
				}
			}
		}
	}
	env := func(cs []corev1.Container) {
		for i := range cs {
			for j := range cs[i].Env {
				if from := cs[i].Env[j].ValueFrom; from != nil {
					ref(from.FieldRef)
				}
			}
		}
	}
	env(spec.InitContainers)
	env(spec.Containers)
	for i := range spec.EphemeralContainers {
		for j := range spec.EphemeralContainers[i].Env {
			if from := spec.EphemeralContainers[i].Env[j].ValueFrom; from != nil {
				ref(from.FieldRef)
			}
		}
	}
}

// formatLabels renders labels as the downward API renders metadata.labels:
// one key="value" line per label (the value quoted as Go quotes strings),
// sorted by key.
func formatLabels(labels map[string]string) string {
	lines := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		lines = append(lines, fmt.Sprintf("%s=%q", k, labels[k]))
	}
	return strings.Join(lines, "\n")
}

// translateAffinity rewrites the label selectors of pod (anti-)affinity
// terms so they select the host copies of pods of the same virtual namespace.
func translateAffinity(t *translator.Namespaced, a *corev1.Affinity, ns string) {
	terms := func(req []corev1.PodAffinityTerm, pref []corev1.WeightedPodAffinityTerm) {
		all := make([]*corev1.PodAffinityTerm, 0, len(req)+len(pref))
		for i := range req {
			all = append(all, &req[i])
		}
		for i := range pref {
			all = append(all, &pref[i].PodAffinityTerm)
		}
		for _, term := range all {
			term.LabelSelector = t.TranslateLabelSelector(term.LabelSelector, ns)
			term.Namespaces, term.NamespaceSelector = nil, nil // the target namespace only
			for j, k := range term.MatchLabelKeys {
				term.MatchLabelKeys[j] = translator.HostLabelKey(k)
			}
			for j, k := range term.MismatchLabelKeys {
				term.MismatchLabelKeys[j] = translator.HostLabelKey(k)
			}
		}
	}
	if a.PodAffinity != nil {
		terms(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
	if a.PodAntiAffinity != nil {
		terms(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	}
}

// translateVolume renames every virtual object a volume source names (see
// volumeRefs).
func translateVolume(v *corev1.VolumeSource, name func(string) string) {
	rename := func(n *string) { *n = name(*n) }
	volumeRefs(v, rename, rename, rename)
}

// readTokenFromAnnotation replaces the service account token source of the
// injected token volume by a downward API item that reads AnnotationToken
// into the same file: the host kubelet never asks the host for a token.
func readTokenFromAnnotation(p *corev1.ProjectedVolumeSource) {
	for i := range p.Sources {
		src := &p.Sources[i]
		if sat := src.ServiceAccountToken; sat != nil {
			src.ServiceAccountToken = nil
			src.DownwardAPI = &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{
				Path:     sat.Path,
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations['" + AnnotationToken + "']"},
			}}}
		}
	}
}

func translateContainer(c *corev1.Container, name func(string) string, dropped map[string]bool) {
	mounts := c.VolumeMounts[:0]
	for _, m := range c.VolumeMounts {
		if !dropped[m.Name] {
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
