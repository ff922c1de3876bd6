package pods

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

func basePod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "app", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "main", Image: "img"}},
			// What every API server adds (DefaultTolerationSeconds): not refused.
			Tolerations: []corev1.Toleration{
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
		},
	}
}

func secCtx(p *corev1.Pod) *corev1.SecurityContext {
	if p.Spec.Containers[0].SecurityContext == nil {
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{}
	}
	return p.Spec.Containers[0].SecurityContext
}

// The refused settings are Pod Security "baseline" (which vcluster's
// isolated mode enforces in its syncer, loft-sh/vcluster v0.7.0 release
// notes) plus host references only a syncer must care about.
func TestCheckRefusesHostLevelSettingsUnlessAllowed(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*corev1.Pod)
		wantField string
		perm      synccontext.Permission // empty: refused whatever the policy
	}{
		{"hostNetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork", synccontext.AllowHostNamespaces},
		{"hostPID", func(p *corev1.Pod) { p.Spec.HostPID = true }, "spec.hostPID", synccontext.AllowHostNamespaces},
		{"hostIPC", func(p *corev1.Pod) { p.Spec.HostIPC = true }, "spec.hostIPC", synccontext.AllowHostNamespaces},
		{"runtimeClassName", func(p *corev1.Pod) { p.Spec.RuntimeClassName = ptr.To("runc-unsandboxed") }, "spec.runtimeClassName", synccontext.AllowRuntimeClass},
		{"privileged", func(p *corev1.Pod) { secCtx(p).Privileged = ptr.To(true) }, "spec.containers[0].securityContext.privileged", synccontext.AllowPrivileged},
		{"privileged init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}, "spec.initContainers[0].securityContext.privileged", synccontext.AllowPrivileged},
		{"privileged ephemeral container", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}}
		}, "spec.ephemeralContainers[0].securityContext.privileged", synccontext.AllowPrivileged},
		{"SYS_ADMIN", func(p *corev1.Pod) {
			secCtx(p).Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE", "CAP_SYS_ADMIN"}}
		}, "spec.containers[0].securityContext.capabilities.add[1]", synccontext.AllowCapabilities},
		{"allowPrivilegeEscalation", func(p *corev1.Pod) { secCtx(p).AllowPrivilegeEscalation = ptr.To(true) }, "spec.containers[0].securityContext.allowPrivilegeEscalation", synccontext.AllowPrivilegeEscalation},
		{"procMount Unmasked", func(p *corev1.Pod) { secCtx(p).ProcMount = ptr.To(corev1.UnmaskedProcMount) }, "spec.containers[0].securityContext.procMount", synccontext.AllowUnmaskedProcMount},
		{"seccomp Unconfined", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}}
		}, "spec.securityContext.seccompProfile", synccontext.AllowUnconfined},
		{"AppArmor annotation unconfined", func(p *corev1.Pod) {
			p.Annotations = map[string]string{apparmorAnnotationPrefix + "main": "unconfined"}
		}, "metadata.annotations[" + apparmorAnnotationPrefix + "main]", synccontext.AllowUnconfined},
		{"AppArmor Unconfined", func(p *corev1.Pod) {
			secCtx(p).AppArmorProfile = &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}
		}, "spec.containers[0].securityContext.appArmorProfile", synccontext.AllowUnconfined},
		{"Windows host process", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{WindowsOptions: &corev1.WindowsSecurityContextOptions{HostProcess: ptr.To(true)}}
		}, "spec.securityContext.windowsOptions.hostProcess", synccontext.AllowUnconfined},
		{"SELinux type spc_t", func(p *corev1.Pod) { secCtx(p).SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"} }, "spec.containers[0].securityContext.seLinuxOptions", synccontext.AllowUnconfined},
		{"unsafe sysctl", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}}}
		}, "spec.securityContext.sysctls[0]", synccontext.AllowUnconfined},
		{"hostPort", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, "spec.containers[0].ports[0].hostPort", synccontext.AllowHostPorts},
		{"toleration of a dedicated node", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists})
		}, "spec.tolerations[2]", synccontext.AllowTolerations},
		{"toleration of every taint", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Operator: corev1.TolerationOpExists})
		}, "spec.tolerations[2]", synccontext.AllowTolerations},
		{"hostPath", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}, "spec.volumes[0].hostPath", synccontext.AllowHostPath},
		{"NFS", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "n", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "filer", Path: "/"}}}}
		}, "spec.volumes[0].nfs", synccontext.AllowInfrastructureVolumes},
		{"projected service account token", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault"}},
			}}}}}
		}, "spec.volumes[0].projected.sources[0].serviceAccountToken", ""},
		{"projected cluster trust bundle", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "ctb", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ClusterTrustBundle: &corev1.ClusterTrustBundleProjection{Name: ptr.To("host-ca"), Path: "ca"}},
			}}}}}
		}, "spec.volumes[0].projected.sources[0].clusterTrustBundle", ""},
		{"ephemeral volume cloned from a host PVC", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "e", VolumeSource: corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{
				VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "host-data"}}},
			}}}}
		}, "spec.volumes[0].ephemeral.volumeClaimTemplate.spec.dataSource", ""},
		{"projected pod certificate", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "pc", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{PodCertificate: &corev1.PodCertificateProjection{SignerName: "host.example.com/signer"}},
			}}}}}
		}, "spec.volumes[0].projected.sources[0].podCertificate", ""},
		{"host ResourceClaim", func(p *corev1.Pod) {
			p.Spec.ResourceClaims = []corev1.PodResourceClaim{{Name: "gpu", ResourceClaimName: ptr.To("host-gpu")}}
		}, "spec.resourceClaims", ""},
		{"host PodGroup", func(p *corev1.Pod) {
			p.Spec.SchedulingGroup = &corev1.PodSchedulingGroup{PodGroupName: ptr.To("host-gang")}
		}, "spec.schedulingGroup", ""},
	}
	narrowed := basePod() // nodeSelector and node affinity only narrow where the host schedules
	narrowed.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
	narrowed.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
	}}}
	narrowed.Spec.Tolerations = append(narrowed.Spec.Tolerations, corev1.Toleration{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists})
	if got := Check(synccontext.Policy{}, narrowed); len(got) != 0 {
		t.Fatalf("Check(pod with nodeSelector, node affinity, condition tolerations) = %v, want no violations", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := basePod()
			tt.mutate(pod)
			got := Check(synccontext.Policy{}, pod)
			if len(got) != 1 || got[0].Field != tt.wantField || got[0].Permission != tt.perm {
				t.Fatalf("Check = %v, want one violation of %s needing %q", got, tt.wantField, tt.perm)
			}
			msg := got[0].String()
			if !strings.Contains(msg, tt.wantField) || (tt.perm != "" && !strings.Contains(msg, "--allow="+string(tt.perm))) {
				t.Fatalf("message %q does not name the field and the setting", msg)
			}
			all := synccontext.Policy{Allow: synccontext.Permissions()}
			if tt.perm != "" {
				if got := Check(all, pod); len(got) != 0 {
					t.Fatalf("Check with every permission = %v, want none", got)
				}
			} else if got := Check(all, pod); len(got) != 1 {
				t.Fatalf("Check with every permission = %v, want it still refused", got)
			}
		})
	}
}

// TestEveryVolumeSourceIsTranslatedOrRefused walks every field of
// corev1.VolumeSource, so a volume type added to the API is classified (or
// refused as unknown) rather than passed through unnoticed.
func TestEveryVolumeSourceIsTranslatedOrRefused(t *testing.T) {
	vs := reflect.TypeFor[corev1.VolumeSource]()
	for i := range vs.NumField() {
		f := vs.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			pod := basePod()
			var src corev1.VolumeSource
			reflect.ValueOf(&src).Elem().Field(i).Set(reflect.New(f.Type.Elem()))
			pod.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: src}}
			got := Check(synccontext.Policy{}, pod)
			kind, known := volumeKinds[f.Name]
			if !known {
				t.Fatalf("volume source %s is not classified; add it to volumeKinds", f.Name)
			}
			if refused := len(got) > 0; refused != (kind == volumeHostPath || kind == volumeInfrastructure) {
				t.Fatalf("Check = %v for a %s volume of kind %d", got, f.Name, kind)
			}
		})
	}
	pod := basePod()
	pod.Spec.Volumes = []corev1.Volume{{Name: "v"}} // no source set: not a volume the syncer knows
	if got := Check(synccontext.Policy{Allow: synccontext.Permissions()}, pod); len(got) != 1 || got[0].Permission != "" {
		t.Fatalf("Check of a volume without a known source = %v, want it refused", got)
	}
}

func TestTranslatePodRenamesEveryReferenceAndGivesNoHostToken(t *testing.T) {
	tr, err := translator.NewNamespaced("vc", "host")
	if err != nil {
		t.Fatal(err)
	}
	h := func(n string) string { return tr.PhysicalName(n, "team") }
	ref := func(n string) *corev1.LocalObjectReference { return &corev1.LocalObjectReference{Name: n} }
	v := basePod()
	v.Spec.ServiceAccountName = "builder"
	v.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	v.Spec.Volumes = []corev1.Volume{
		{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
		{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
		{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: ref("csi-creds")}}},
		{Name: "rbd", VolumeSource: corev1.VolumeSource{RBD: &corev1.RBDVolumeSource{SecretRef: ref("rbd-creds")}}},
		{Name: "cephfs", VolumeSource: corev1.VolumeSource{CephFS: &corev1.CephFSVolumeSource{SecretRef: ref("ceph-creds")}}},
		{Name: "iscsi", VolumeSource: corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{SecretRef: ref("iscsi-creds")}}},
		{Name: "flex", VolumeSource: corev1.VolumeSource{FlexVolume: &corev1.FlexVolumeSource{SecretRef: ref("flex-creds")}}},
		{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "psec"}}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "pcm"}}},
		}}}},
	}
	web := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	v.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{
		{LabelSelector: web, TopologyKey: "kubernetes.io/hostname", Namespaces: []string{"kube-system"}},
	}}}
	v.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{MaxSkew: 1, TopologyKey: "zone", LabelSelector: web, MatchLabelKeys: []string{"pod-template-hash"}}}
	v.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}, {Name: "pvc", MountPath: "/data"}}
	p := translatePod(tr, v, "", synccontext.PodNetwork{})

	got := map[string]string{"pull": p.Spec.ImagePullSecrets[0].Name}
	for _, vol := range p.Spec.Volumes {
		switch {
		case vol.PersistentVolumeClaim != nil:
			got["data"] = vol.PersistentVolumeClaim.ClaimName
		case vol.CSI != nil:
			got["csi-creds"] = vol.CSI.NodePublishSecretRef.Name
		case vol.RBD != nil:
			got["rbd-creds"] = vol.RBD.SecretRef.Name
		case vol.CephFS != nil:
			got["ceph-creds"] = vol.CephFS.SecretRef.Name
		case vol.ISCSI != nil:
			got["iscsi-creds"] = vol.ISCSI.SecretRef.Name
		case vol.FlexVolume != nil:
			got["flex-creds"] = vol.FlexVolume.SecretRef.Name
		case vol.Projected != nil:
			for _, s := range vol.Projected.Sources {
				switch {
				case s.Secret != nil:
					got["psec"] = s.Secret.Name
				case s.ConfigMap != nil:
					got["pcm"] = s.ConfigMap.Name
				default:
					t.Errorf("host pod has projected source %+v", s)
				}
			}
		}
	}
	want := map[string]string{}
	for n := range got {
		want[n] = h(n)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("host references (-want +got):\n%s", diff)
	}
	if len(p.Spec.Volumes) != len(v.Spec.Volumes)-1 || len(p.Spec.Containers[0].VolumeMounts) != 1 {
		t.Errorf("host pod keeps the injected token volume: %v / %v", p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts)
	}
	if p.Spec.ServiceAccountName != "" || p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
		t.Errorf("host pod service account %q automount %v; want none and false", p.Spec.ServiceAccountName, p.Spec.AutomountServiceAccountToken)
	}
	if p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks {
		t.Error("host pod gets host service links")
	}
	if _, ok := p.Labels["app"]; ok || p.Labels[translator.HostLabelKey("app")] != "web" {
		t.Errorf("host pod labels %v: want the tenant key rewritten", p.Labels)
	}
	wantSelector := tr.TranslateLabelSelector(web, "team")
	term := p.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0]
	if diff := cmp.Diff(wantSelector, term.LabelSelector); diff != "" || term.Namespaces != nil {
		t.Errorf("anti-affinity term selects (-want +got):\n%s namespaces %v; want the tenant's own pods only", diff, term.Namespaces)
	}
	spread := p.Spec.TopologySpreadConstraints[0]
	if diff := cmp.Diff(wantSelector, spread.LabelSelector); diff != "" || spread.MatchLabelKeys[0] != translator.HostLabelKey("pod-template-hash") {
		t.Errorf("topology spread selects (-want +got):\n%s matchLabelKeys %v", diff, spread.MatchLabelKeys)
	}
	if v.Spec.Volumes[1].PersistentVolumeClaim.ClaimName != "data" {
		t.Error("translatePod modified the virtual pod")
	}
}

func TestReferencesListsWhatAPodUses(t *testing.T) {
	v := basePod()
	v.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	v.Spec.Volumes = []corev1.Volume{
		{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
		}}}},
		{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret"}}},
		{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "vol-cm"}}}},
		{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "d", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "csi-creds"}}}},
	}
	v.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "env-secret"}}}}
	v.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "K", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-cm"}, Key: "k"}}}}
	cms, secrets := References(v)
	if diff := cmp.Diff([]string{"env-cm", "kube-root-ca.crt", "vol-cm"}, cms); diff != "" {
		t.Errorf("ConfigMaps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"csi-creds", "env-secret", "pull", "vol-secret"}, secrets); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
}

func TestDownwardAPIReadsVirtualValues(t *testing.T) {
	tr, err := translator.NewNamespaced("vc", "host")
	if err != nil {
		t.Fatal(err)
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	v := basePod()
	v.UID = "virtual-uid"
	v.Labels = map[string]string{"app": "web", "tier": `fr"ont`}
	v.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: "NAME", ValueFrom: field("metadata.name")},
		{Name: "NS", ValueFrom: field("metadata.namespace")},
		{Name: "UID", ValueFrom: field("metadata.uid")},
		{Name: "APP", ValueFrom: field("metadata.labels['app']")},
		{Name: "NODE", ValueFrom: field("spec.nodeName")},
	}
	v.Spec.Volumes = []corev1.Volume{{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
		{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
	}}}}}
	p := translatePod(tr, v, "", synccontext.PodNetwork{})
	var got []string
	for _, e := range p.Spec.Containers[0].Env {
		got = append(got, e.ValueFrom.FieldRef.FieldPath)
	}
	got = append(got, p.Spec.Volumes[0].DownwardAPI.Items[0].FieldRef.FieldPath)
	want := []string{
		"metadata.annotations['podkit.dev/object-name']", "metadata.annotations['podkit.dev/object-namespace']",
		"metadata.annotations['podkit.dev/object-uid']", "metadata.labels['label.podkit.dev/app']", "spec.nodeName",
		"metadata.annotations['podkit.dev/labels']",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("host field paths (-want +got):\n%s", diff)
	}
	wantAnnotations := map[string]string{
		translator.AnnotationName: "app", translator.AnnotationNamespace: "team",
		AnnotationUID: "virtual-uid", AnnotationLabels: "app=\"web\"\ntier=\"fr\\\"ont\"",
	}
	for k, v := range wantAnnotations {
		if p.Annotations[k] != v {
			t.Errorf("host annotation %s = %q, want %q", k, p.Annotations[k], v)
		}
	}
}

// BenchmarkCheckAndTranslate is the policy's cost per pod create: Check and
// translatePod of a pod with the usual shape (two containers, env and
// volumes from ConfigMaps and Secrets, the injected token volume).
func BenchmarkCheckAndTranslate(b *testing.B) {
	tr, err := translator.NewNamespaced("vc", "host")
	if err != nil {
		b.Fatal(err)
	}
	v := basePod()
	v.Spec.Containers = append(v.Spec.Containers, corev1.Container{Name: "sidecar", Image: "img"})
	for i := range v.Spec.Containers {
		v.Spec.Containers[i].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
		v.Spec.Containers[i].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-x", MountPath: "/var/run/secrets"}, {Name: "s", MountPath: "/s"}}
	}
	v.Spec.Volumes = []corev1.Volume{
		{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
		{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(Check(synccontext.Policy{}, v)) != 0 {
			b.Fatal("refused")
		}
		_ = translatePod(tr, v, "", synccontext.PodNetwork{})
	}
}

func TestInjectedTokenVolumeReadsAVirtualTokenFromAnAnnotation(t *testing.T) {
	tr, err := translator.NewNamespaced("vc", "host")
	if err != nil {
		t.Fatal(err)
	}
	v := basePod()
	v.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-abcde", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
	}}}}}
	v.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	if got := Check(synccontext.Policy{}, v); len(got) != 0 {
		t.Fatalf("Check refuses the injected token volume: %v", got)
	}
	p := translatePod(tr, v, "virtual-jwt", synccontext.PodNetwork{})
	want := []corev1.VolumeProjection{
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "token", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations['podkit.dev/token']"}}}}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: tr.PhysicalName("kube-root-ca.crt", "team")}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['podkit.dev/object-namespace']"}}}}},
	}
	if diff := cmp.Diff(want, p.Spec.Volumes[0].Projected.Sources); diff != "" {
		t.Fatalf("host token volume (-want +got):\n%s", diff)
	}
	if p.Annotations[AnnotationToken] != "virtual-jwt" || len(p.Spec.Containers[0].VolumeMounts) != 1 {
		t.Fatalf("host pod token annotation %q, mounts %v", p.Annotations[AnnotationToken], p.Spec.Containers[0].VolumeMounts)
	}

	// A volume that only borrows the name is checked like any other.
	v.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-evil", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	if got := Check(synccontext.Policy{}, v); len(got) != 1 || got[0].Permission != synccontext.AllowHostPath {
		t.Fatalf("Check of a hostPath volume named like the token volume = %v, want it refused", got)
	}
}
