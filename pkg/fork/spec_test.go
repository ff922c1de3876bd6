package fork

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func tokenVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}},
		},
	}}}
}

func probe() *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
}

func TestPodSpecFromMakesParentSpecSafeToCreate(t *testing.T) {
	saMount := corev1.VolumeMount{Name: "kube-api-access-abcde", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}
	data := corev1.VolumeMount{Name: "data", MountPath: "/data"}
	tests := []struct {
		name   string
		parent corev1.PodSpec
		want   corev1.PodSpec
	}{{
		name: "scheduled parent with probes, token volume, ephemeral container and hostname",
		parent: corev1.PodSpec{
			NodeName:                 "node-1",
			Hostname:                 "web-0",
			Subdomain:                "web",
			RestartPolicy:            corev1.RestartPolicyAlways,
			ServiceAccountName:       "op",
			DeprecatedServiceAccount: "op",
			Priority:                 ptr.To(int32(1000)),
			PreemptionPolicy:         ptr.To(corev1.PreemptLowerPriority),
			Overhead:                 corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")},
			ReadinessGates:           []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}},
			Volumes:                  []corev1.Volume{{Name: "data"}, tokenVolume("kube-api-access-abcde")},
			InitContainers: []corev1.Container{{
				Name: "init", Image: "app:1", VolumeMounts: []corev1.VolumeMount{saMount},
				StartupProbe: probe(),
				Env:          []corev1.EnvVar{{Name: "A", Value: "1"}},
			}},
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1",
				LivenessProbe: probe(), ReadinessProbe: probe(), StartupProbe: probe(),
				VolumeMounts: []corev1.VolumeMount{data, saMount},
				Env:          []corev1.EnvVar{{Name: "A", Value: "1"}},
			}},
			EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}},
		},
		want: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: "op",
			Volumes:            []corev1.Volume{{Name: "data"}},
			InitContainers: []corev1.Container{{
				Name: "init", Image: "app:1",
				Env: []corev1.EnvVar{{Name: "A", Value: "1"}},
			}},
			Containers: []corev1.Container{{
				Name: "app", Image: "app:1",
				VolumeMounts: []corev1.VolumeMount{data},
				Env:          []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: EnvForkPath, Value: "worker"}},
			}},
		},
	}, {
		name: "parent that is itself a fork gets its fork path replaced in every app container",
		parent: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{
				{Name: "a", Env: []corev1.EnvVar{{Name: EnvForkPath, Value: "old"}, {Name: "B", Value: "2"}}},
				{Name: "b", Env: []corev1.EnvVar{{Name: LegacyEnvForkPath, Value: "old"}}},
			},
		},
		want: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{
				{Name: "a", Env: []corev1.EnvVar{{Name: "B", Value: "2"}, {Name: EnvForkPath, Value: "worker"}}},
				{Name: "b", Env: []corev1.EnvVar{{Name: EnvForkPath, Value: "worker"}}},
			},
		},
	}, {
		name: "user-declared token volume under its own name is kept",
		parent: corev1.PodSpec{
			Volumes:    []corev1.Volume{tokenVolume("vault-token")},
			Containers: []corev1.Container{{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "vault-token", MountPath: "/vault"}}}},
		},
		want: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes:       []corev1.Volume{tokenVolume("vault-token")},
			Containers: []corev1.Container{{
				Name:         "app",
				VolumeMounts: []corev1.VolumeMount{{Name: "vault-token", MountPath: "/vault"}},
				Env:          []corev1.EnvVar{{Name: EnvForkPath, Value: "worker"}},
			}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: tt.parent}
			before := parent.DeepCopy()
			got := PodSpecFrom(parent, "worker")
			if diff := cmp.Diff(tt.want, *got); diff != "" {
				t.Errorf("PodSpecFrom() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, parent); diff != "" {
				t.Errorf("PodSpecFrom() modified the parent (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNewChildPodAppliesOptions(t *testing.T) {
	parent := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "op-0", Namespace: "ns", UID: "uid-1", Labels: map[string]string{"app": "op"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "op",
			Volumes:            []corev1.Volume{{Name: "data"}},
			InitContainers:     []corev1.Container{{Name: "init"}},
			Containers:         []corev1.Container{{Name: "app", Env: []corev1.EnvVar{{Name: "LEVEL", Value: "info"}}}},
		},
	}
	res := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}
	opts := Options{
		ServiceAccountName: "worker",
		Env:                []corev1.EnvVar{{Name: "LEVEL", Value: "debug"}},
		Volumes:            []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		VolumeMounts:       []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}},
		Resources:          &res,
		Labels:             map[string]string{"team": "a"},
		Annotations:        map[string]string{"note": "x"},
		RestartPolicy:      corev1.RestartPolicyOnFailure,
		Instance:           "7",
	}
	got, _, err := newChildPod(parent, "worker", &opts)
	if err != nil {
		t.Fatalf("newChildPod() error = %v", err)
	}
	wantMeta := metav1.ObjectMeta{
		Name:        ChildName("op-0", "uid-1", "worker", "7"),
		Namespace:   "ns",
		Labels:      map[string]string{"team": "a", LabelParentUID: "uid-1", LabelPath: "worker"},
		Annotations: map[string]string{"note": "x", AnnotationParent: "op-0", AnnotationInstance: "7"},
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Pod", Name: "op-0", UID: "uid-1", Controller: ptr.To(true),
		}},
	}
	if diff := cmp.Diff(wantMeta, got.ObjectMeta); diff != "" {
		t.Errorf("child metadata mismatch (-want +got):\n%s", diff)
	}
	wantSpec := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyOnFailure,
		ServiceAccountName: "worker",
		Volumes:            []corev1.Volume{{Name: "data"}, opts.Volumes[0]},
		InitContainers:     []corev1.Container{{Name: "init"}},
		Containers: []corev1.Container{{
			Name:         "app",
			Env:          []corev1.EnvVar{{Name: EnvForkPath, Value: "worker"}, {Name: "LEVEL", Value: "debug"}},
			VolumeMounts: opts.VolumeMounts,
			Resources:    res,
		}},
	}
	if diff := cmp.Diff(wantSpec, got.Spec); diff != "" {
		t.Errorf("child spec mismatch (-want +got):\n%s", diff)
	}
}

func TestNewChildPodRejectsBadVolumes(t *testing.T) {
	parent := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u"},
		Spec:       corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data"}}, Containers: []corev1.Container{{Name: "app"}}},
	}
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"volume name taken by parent", Options{Volumes: []corev1.Volume{{Name: "data"}}}, `Options.Volumes "data" collides`},
		{"mount of unknown volume", Options{VolumeMounts: []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}}, `Options.VolumeMounts "nope" names no volume`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := newChildPod(parent, "w", &tt.opts)
			assertErrorContains(t, err, tt.want)
		})
	}
}
