package fork

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// meshedParent is a parent pod as Istio's injector (with native sidecars) and
// Vault's agent injector leave it, plus a native sidecar of the user's own.
func meshedParent() *corev1.Pod {
	always := ptr.To(corev1.ContainerRestartPolicyAlways)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "op-0", Namespace: "ns", UID: "uid-1", Annotations: map[string]string{
			annotationIstioStatus:       `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data"],"revision":"default"}`,
			annotationVaultInjectStatus: "injected",
		}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: "istio-envoy"}, {Name: "istio-data"}, {Name: "vault-secrets"}, {Name: "data"}, {Name: "shipper-state"}},
			InitContainers: []corev1.Container{
				{Name: "istio-init"},
				{Name: "vault-agent-init", VolumeMounts: []corev1.VolumeMount{{Name: "vault-secrets", MountPath: "/vault/secrets"}}},
				{Name: "migrate", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}},
				{Name: "log-shipper", RestartPolicy: always, VolumeMounts: []corev1.VolumeMount{{Name: "shipper-state", MountPath: "/s"}, {Name: "data", MountPath: "/data"}}},
			},
			Containers: []corev1.Container{
				{Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, HostIP: "0.0.0.0"}},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "vault-secrets", MountPath: "/vault/secrets"}}},
				{Name: "istio-proxy", VolumeMounts: []corev1.VolumeMount{{Name: "istio-envoy", MountPath: "/etc/istio/proxy"}}},
				{Name: "vault-agent", VolumeMounts: []corev1.VolumeMount{{Name: "vault-secrets", MountPath: "/vault/secrets"}}},
			},
		},
	}
}

func TestPodSpecFromLeavesInjectedSidecarsAndHostPortsOut(t *testing.T) {
	spec, dropped := podSpecFrom(meshedParent(), "worker", false, nil)
	want := []Dropped{
		{Kind: "container", Name: "istio-proxy", Reason: "istio"},
		{Kind: "container", Name: "vault-agent", Reason: "vault"},
		{Kind: "initContainer", Name: "istio-init", Reason: "istio"},
		{Kind: "initContainer", Name: "log-shipper", Reason: "native sidecar"},
		{Kind: "initContainer", Name: "vault-agent-init", Reason: "vault"},
		{Kind: "volume", Name: "istio-data", Reason: "istio"},
		{Kind: "volume", Name: "istio-envoy", Reason: "istio"},
		{Kind: "volume", Name: "shipper-state", Reason: "used only by dropped containers"},
		{Kind: "volume", Name: "vault-secrets", Reason: "vault"},
	}
	if diff := cmp.Diff(want, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	wantSpec := corev1.PodSpec{
		RestartPolicy:  corev1.RestartPolicyNever,
		Volumes:        []corev1.Volume{{Name: "data"}},
		InitContainers: []corev1.Container{{Name: "migrate", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
		Containers: []corev1.Container{{
			Name: "app", Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			Env:          []corev1.EnvVar{{Name: EnvForkPath, Value: "worker"}},
		}},
	}
	if diff := cmp.Diff(wantSpec, *spec); diff != "" {
		t.Errorf("child spec (-want +got):\n%s", diff)
	}
	// The public function applies the same default.
	if diff := cmp.Diff(wantSpec, *PodSpecFrom(meshedParent(), "worker")); diff != "" {
		t.Errorf("PodSpecFrom (-want +got):\n%s", diff)
	}
}

func TestKeepSidecarsKeepsThemButDropContainersStillApplies(t *testing.T) {
	parent := meshedParent()
	opts := Options{KeepSidecars: true, DropContainers: []string{"vault-agent"}}
	opts.setDefaults()
	pod, dropped, err := newChildPod(parent, "worker", &opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Dropped{{Kind: "container", Name: "vault-agent", Reason: "Options.DropContainers"}}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	var names []string
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"istio-init", "vault-agent-init", "migrate", "log-shipper", "app", "istio-proxy"}, names); diff != "" {
		t.Errorf("child containers (-want +got):\n%s", diff)
	}
	if pod.Spec.Containers[0].Ports[0].HostPort != 0 {
		t.Errorf("hostPort kept with KeepSidecars: %+v", pod.Spec.Containers[0].Ports)
	}
}

func TestDropContainersErrors(t *testing.T) {
	for _, tt := range []struct {
		drop []string
		want string
	}{
		{[]string{"nope"}, `Options.DropContainers names "nope", which is no container`},
		{[]string{"app"}, "without containers"},
	} {
		opts := Options{DropContainers: tt.drop}
		opts.setDefaults()
		if _, _, err := newChildPod(meshedParent(), "w", &opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DropContainers %v: error %v, want %q", tt.drop, err, tt.want)
		}
	}
	opts := Options{DropContainers: []string{""}}
	opts.setDefaults()
	if err := opts.validate("w"); err == nil || !strings.Contains(err.Error(), "Options.DropContainers[0] is empty") {
		t.Errorf("empty DropContainers entry: %v", err)
	}
}

// endless writes numbered lines forever; the reader stops it after n bytes.
type endless struct{ n, limit int }

func (e *endless) Read(p []byte) (int, error) {
	if e.n >= e.limit {
		return 0, io.EOF
	}
	line := []byte(strings.Repeat("x", 99) + "\n")
	k := 0
	for k+len(line) <= len(p) && e.n < e.limit {
		k += copy(p[k:], line)
		e.n += len(line)
	}
	return k, nil
}

func TestReadTailKeepsTheLastBytesFromALineStart(t *testing.T) {
	got, cut, err := readTail(&endless{limit: 50 << 20}, 1<<20)
	if err != nil || !cut {
		t.Fatalf("readTail = cut %v, err %v; want cut, nil", cut, err)
	}
	if len(got) > 1<<20 || len(got) < 1<<20-100 || got[0] != 'x' || got[len(got)-1] != '\n' || len(got)%100 != 0 {
		t.Errorf("tail is %d bytes starting %q, want ≤ 1 MiB of whole lines", len(got), got[:10])
	}
	small, cut, err := readTail(bytes.NewReader([]byte("a\nb\n")), 1<<20)
	if err != nil || cut || string(small) != "a\nb\n" {
		t.Errorf("readTail(short) = %q, %v, %v", small, cut, err)
	}
}
