package resources_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/pods"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Each escape of issue #17 tried against the real host API server: the
// syncer runs with the default policy, as `podkit sync run` does.

func pod(ns, name string, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.example/app:1"}}},
	}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// waitRefused waits for the PolicyRefused event on the virtual object and
// returns its message.
func waitRefused(t *testing.T, vns, name string) string {
	t.Helper()
	var msg string
	testenv.WaitFor(t, waitTimeout, "PolicyRefused event on virtual "+name, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := clusters.Virtual.Client.List(ctx, events, client.InNamespace(vns)); err != nil {
			return false, nil
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == name && e.Reason == syncer.ReasonPolicyRefused && e.Type == corev1.EventTypeWarning {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	return msg
}

func TestEscapesThroughPodSpecsAreRefusedWithAnEvent(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods", "secrets"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		mutate    func(*corev1.Pod)
		wantField string
		wantAllow string // empty: refused whatever the policy
	}{
		{"privileged", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, "spec.containers[0].securityContext.privileged", "--allow=privileged"},
		{"host-path", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}, "spec.volumes[0].hostPath", "--allow=host-path"},
		{"host-network", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, "spec.hostNetwork", "--allow=host-namespaces"},
		{"sys-admin", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
		}, "spec.containers[0].securityContext.capabilities.add[0]", "--allow=capabilities"},
		{"token-projection", func(p *corev1.Pod) {
			p.Spec.ServiceAccountName = "default"
			p.Spec.Volumes = []corev1.Volume{{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "host-vault"}},
			}}}}}
		}, "spec.volumes[0].projected.sources[0].serviceAccountToken", ""},
		{"control-plane-toleration", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}, "spec.tolerations[0]", "--allow=tolerations"},
	}
	for _, tt := range tests {
		create(t, clusters.Virtual.Client, pod(vns, tt.name, tt.mutate))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := waitRefused(t, vns, tt.name)
			if !strings.Contains(msg, tt.wantField) || !strings.Contains(msg, tt.wantAllow) {
				t.Errorf("event message %q: want it to name %s and %q", msg, tt.wantField, tt.wantAllow)
			}
			err := clusters.Host.Client.Get(ctx, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName(tt.name, vns)}, &corev1.Pod{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("refused pod reached the host: %v", err)
			}
		})
	}
}

func TestHostPVCAndSecretsCannotBeMountedByName(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods", "secrets"))
	vns := clusters.Virtual.Namespace(t)
	// The host's own objects in the target namespace, which a tenant names.
	create(t, clusters.Host.Client, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: "host-data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	})
	create(t, clusters.Host.Client, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: "host-creds"}, StringData: map[string]string{"key": "host"}})
	create(t, clusters.Virtual.Client, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "host-creds"}, StringData: map[string]string{"key": "tenant"}})
	create(t, clusters.Virtual.Client, pod(vns, "thief", func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{
			{Name: "pvc", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "host-data"}}},
			{Name: "csi", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "secrets-store.csi.k8s.io", NodePublishSecretRef: &corev1.LocalObjectReference{Name: "host-creds"}}}},
		}
	}))

	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("thief", vns)}, "host pod created", nil)
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName != hostName("host-data", vns) {
			t.Errorf("host pod mounts PVC %q, want the tenant's own %q", v.PersistentVolumeClaim.ClaimName, hostName("host-data", vns))
		}
		if v.CSI != nil && v.CSI.NodePublishSecretRef.Name != hostName("host-creds", vns) {
			t.Errorf("host pod's CSI secret is %q, want the tenant's own %q", v.CSI.NodePublishSecretRef.Name, hostName("host-creds", vns))
		}
	}
	// The name it gets is a copy of the tenant's Secret, not the host's.
	s := &corev1.Secret{}
	waitHost(t, s, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("host-creds", vns)}, "tenant Secret copied for the pod", nil)
	if string(s.Data["key"]) != "tenant" {
		t.Errorf("host copy holds %q, want the tenant's data", s.Data["key"])
	}
}

func TestHostPodsGetNoServiceAccountToken(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, pod(vns, "plain", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "default" }))
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("plain", vns)}, "host pod created", nil)
	if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
		t.Errorf("host pod automountServiceAccountToken = %v, want false", p.Spec.AutomountServiceAccountToken)
	}
	for _, v := range p.Spec.Volumes {
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ServiceAccountToken != nil {
					t.Errorf("host pod projects a service account token in volume %s", v.Name)
				}
			}
		}
	}
	if p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks {
		t.Error("host pod gets the host's service links")
	}
}

func TestHostPodGetsATokenOfTheVirtualClusterNotOfTheHost(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	// envtest runs no service account controller or admission: create what they would.
	create(t, clusters.Virtual.Client, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "default"}})
	create(t, clusters.Virtual.Client, pod(vns, "api-client", func(p *corev1.Pod) {
		p.Spec.ServiceAccountName = "default"
		p.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-x1y2z", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
		}}}}}
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-x1y2z", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	}))
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("api-client", vns)}, "host pod created", nil)
	for _, v := range p.Spec.Volumes {
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				t.Fatalf("host pod asks the host for a token in volume %s", v.Name)
			}
		}
	}
	token := p.Annotations[pods.AnnotationToken]
	review := func(c client.Client) *authenticationv1.TokenReview {
		t.Helper()
		r := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
		if err := c.Create(ctx, r); err != nil {
			t.Fatalf("token review: %v", err)
		}
		return r
	}
	r := review(clusters.Virtual.Client)
	if !r.Status.Authenticated || r.Status.User.Username != "system:serviceaccount:"+vns+":default" {
		t.Errorf("virtual API server: token authenticates %v as %q, want the virtual service account", r.Status.Authenticated, r.Status.User.Username)
	}
	if got := r.Status.User.Extra["authentication.kubernetes.io/pod-name"]; len(got) != 1 || got[0] != "api-client" {
		t.Errorf("token bound to pod %v, want the virtual pod api-client", got)
	}
	var claims struct{ Exp, Iat int64 }
	if parts := strings.Split(token, "."); len(parts) == 3 {
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(payload, &claims)
	}
	if life := claims.Exp - claims.Iat; life != 365*24*60*60 {
		t.Errorf("token lives %d s, want a year", life)
	}
	if r := review(clusters.Host.Client); r.Status.Authenticated {
		t.Errorf("host API server accepts the token as %q", r.Status.User.Username)
	}
}

func TestDownwardAPIShowsVirtualNameNamespaceAndLabels(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, pod(vns, "self", func(p *corev1.Pod) {
		p.Labels = map[string]string{"app": "web"}
		field := func(path string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
		}
		p.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: "APP", ValueFrom: field("metadata.labels['app']")},
		}
	}))
	// The host API server accepts the rewritten field paths, and what they
	// read holds the virtual values (the kubelet resolves them from these).
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("self", vns)}, "host pod created", nil)
	read := func(path string) string {
		if key, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
			return p.Annotations[strings.TrimSuffix(key, "']")]
		}
		if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
			return p.Labels[strings.TrimSuffix(key, "']")]
		}
		return "unresolved " + path
	}
	want := map[string]string{"POD_NAME": "self", "POD_NAMESPACE": vns, "APP": "web"}
	for _, e := range p.Spec.Containers[0].Env {
		if got := read(e.ValueFrom.FieldRef.FieldPath); got != want[e.Name] {
			t.Errorf("%s reads %s = %q on the host, want %q", e.Name, e.ValueFrom.FieldRef.FieldPath, got, want[e.Name])
		}
	}
}

func TestHostServiceCannotSelectTenantPodsByLabel(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods", "services"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	// A Service of the host in the target namespace: its selector must not pick up tenant pods.
	create(t, clusters.Host.Client, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: "host-web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}},
	})
	create(t, clusters.Virtual.Client, pod(vns, "impostor", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "web"} }))
	create(t, clusters.Virtual.Client, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	})
	waitHost(t, &corev1.Pod{}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("impostor", vns)}, "host pod created", nil)
	_, vSvcCopy := waitClusterIP(t, types.NamespacedName{Namespace: vns, Name: "web"}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("web", vns)})

	// The host API server's own label selection is the check: what the host
	// Service selects, the endpoints controller would route to.
	selected := func(sel map[string]string) []string {
		t.Helper()
		list := &corev1.PodList{}
		if err := clusters.Host.Client.List(ctx, list, client.InNamespace(run.TargetNamespace), client.MatchingLabels(sel)); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Name)
		}
		return names
	}
	if got := selected(map[string]string{"app": "web"}); len(got) != 0 {
		t.Errorf("host Service selector app=web selects tenant pods %v", got)
	}
	if got := selected(vSvcCopy.Spec.Selector); len(got) != 1 || got[0] != hostName("impostor", vns) {
		t.Errorf("the virtual Service's host copy selects %v, want the tenant's own pod", got)
	}
}

func TestServiceHostExposureIsClearedWithAnEvent(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("services"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "mitm"},
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeLoadBalancer,
			ExternalIPs:              []string{"203.0.113.10"}, // CVE-2020-8554: intercept traffic to this address
			LoadBalancerSourceRanges: []string{"0.0.0.0/0"},
			Selector:                 map[string]string{"app": "web"},
			Ports:                    []corev1.ServicePort{{Port: 443}},
		},
	}
	create(t, clusters.Virtual.Client, v)
	msg := waitRefused(t, vns, "mitm")
	for _, want := range []string{"spec.externalIPs", "--allow=external-ips", "spec.type LoadBalancer", "--allow=service-exposure", "spec.loadBalancerSourceRanges"} {
		if !strings.Contains(msg, want) {
			t.Errorf("event message %q does not mention %q", msg, want)
		}
	}
	_, p := waitClusterIP(t, client.ObjectKeyFromObject(v), types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("mitm", vns)})
	if len(p.Spec.ExternalIPs) != 0 || p.Spec.Type != corev1.ServiceTypeClusterIP || len(p.Spec.LoadBalancerSourceRanges) != 0 {
		t.Fatalf("host Service type %s externalIPs %v sourceRanges %v; want ClusterIP without them", p.Spec.Type, p.Spec.ExternalIPs, p.Spec.LoadBalancerSourceRanges)
	}
	for _, port := range p.Spec.Ports {
		if port.NodePort != 0 {
			t.Fatalf("host Service opens node port %d", port.NodePort)
		}
	}

	// Adding externalIPs later does not reach the host either.
	if err := clusters.Virtual.Client.Get(ctx, client.ObjectKeyFromObject(v), v); err != nil {
		t.Fatal(err)
	}
	v.Spec.Type = corev1.ServiceTypeClusterIP
	v.Spec.LoadBalancerSourceRanges = nil
	v.Spec.ExternalTrafficPolicy = ""
	v.Spec.AllocateLoadBalancerNodePorts = nil
	for i := range v.Spec.Ports {
		v.Spec.Ports[i].NodePort = 0
	}
	v.Spec.ExternalIPs = []string{"203.0.113.11"}
	v.Spec.Ports[0].Port = 8443
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, client.ObjectKeyFromObject(p), "port change flows down", func(s *corev1.Service) bool { return s.Spec.Ports[0].Port == 8443 })
	if len(p.Spec.ExternalIPs) != 0 {
		t.Fatalf("host Service externalIPs %v after an update, want none", p.Spec.ExternalIPs)
	}
}

func TestServiceExposureWhenAllowed(t *testing.T) {
	allow := synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowServiceExposure, synccontext.AllowExternalIPs}}
	run := clusters.Start(t, syncertest.Options{Policy: allow}, builtins("services"))
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "public"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, ExternalIPs: []string{"203.0.113.12"},
			Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}},
		},
	})
	waitHost(t, &corev1.Service{}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("public", vns)}, "NodePort Service with externalIPs on the host", func(s *corev1.Service) bool {
		return s.Spec.Type == corev1.ServiceTypeNodePort && len(s.Spec.ExternalIPs) == 1
	})
	// Let the virtual Service settle before the test deletes it.
	waitClusterIP(t, types.NamespacedName{Namespace: vns, Name: "public"}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("public", vns)})
}

func TestOnlySecretsThatSyncedPodsUseReachTheHost(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods", "secrets", "configmaps"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	for _, name := range []string{"used", "unused", "used-by-refused-pod"} {
		create(t, clusters.Virtual.Client, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: name}, StringData: map[string]string{"k": name}})
	}
	// A bootstrap token, as kube-system of a cluster holds: never copied unless a pod uses it.
	create(t, clusters.Virtual.Client, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "bootstrap-token-abcdef"},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{"token-id": "abcdef", "token-secret": "0123456789abcdef"},
	})
	create(t, clusters.Virtual.Client, configMap(vns, "unused-cm", nil))
	envFrom := func(secret string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
		}
	}
	user := pod(vns, "user", envFrom("used"))
	create(t, clusters.Virtual.Client, user)
	create(t, clusters.Virtual.Client, pod(vns, "refused", func(p *corev1.Pod) {
		envFrom("used-by-refused-pod")(p)
		p.Spec.HostPID = true
	}))
	used := &corev1.Secret{}
	waitHost(t, used, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("used", vns)}, "Secret used by a pod copied", nil)
	waitRefused(t, vns, "refused")
	// The used Secret and the refusal are there, so the syncers have seen
	// every object of this test (a barrier ConfigMap is not available: unused
	// ConfigMaps are not copied either). The virtual cluster keeps other
	// tests' namespaces, whose objects this syncer copies too: look at vns only.
	list := &corev1.SecretList{}
	if err := clusters.Host.Client.List(ctx, list, client.InNamespace(run.TargetNamespace), client.MatchingLabels{translator.LabelNamespace: vns}); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if s.Name != used.Name {
			t.Errorf("host Secret %s (virtual %s) copied though no synced pod uses it", s.Name, s.Annotations[translator.AnnotationName])
		}
	}
	if err := clusters.Host.Client.Get(ctx, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("unused-cm", vns)}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("unused ConfigMap copied to the host: %v", err)
	}

	// Once no pod uses it, the host copy goes.
	if err := clusters.Virtual.Client.Delete(ctx, user, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, clusters.Host.Client, used, "host Secret deleted once no pod uses it")
}

func TestHostLabelsAndAnnotationsWrittenByOthersSurviveASync(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := pod(vns, "annotated", func(p *corev1.Pod) {
		p.Labels = map[string]string{"app": "web"}
		p.Annotations = map[string]string{"team.example.com/owner": "a"}
	})
	create(t, clusters.Virtual.Client, v)
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("annotated", vns)}
	p := &corev1.Pod{}
	waitHost(t, p, pNN, "host pod created", nil)

	// A webhook and the CNI write their own keys on the host pod.
	p.Annotations["webhook.example.com/injected"] = "sidecar-v1"
	p.Labels["cni.example.com/network"] = "blue"
	if err := clusters.Host.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	// The tenant changes its metadata: the syncer updates the host pod.
	if err := clusters.Virtual.Client.Get(ctx, client.ObjectKeyFromObject(v), v); err != nil {
		t.Fatal(err)
	}
	v.Annotations = map[string]string{"team.example.com/owner": "b"}
	v.Labels["tier"] = "front"
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "tenant metadata change flows down", func(p *corev1.Pod) bool {
		return p.Annotations["team.example.com/owner"] == "b" && p.Labels[translator.HostLabelKey("tier")] == "front"
	})
	if p.Annotations["webhook.example.com/injected"] != "sidecar-v1" || p.Labels["cni.example.com/network"] != "blue" {
		t.Fatalf("keys written on the host by others were lost: labels %v annotations %v", p.Labels, p.Annotations)
	}

	// A tenant annotation removed in the virtual cluster goes from the host; the webhook's stays.
	v.Annotations = nil
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "tenant annotation removed on the host", func(p *corev1.Pod) bool {
		_, ok := p.Annotations["team.example.com/owner"]
		return !ok
	})
	if p.Annotations["webhook.example.com/injected"] != "sidecar-v1" {
		t.Fatalf("webhook annotation lost when a tenant annotation was removed: %v", p.Annotations)
	}
}

func TestHostRejectionIsReportedOnTheVirtualPod(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: run.TargetNamespace, Name: "no-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}
	create(t, clusters.Host.Client, quota)
	// No quota controller runs here: publish the usage it would.
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}}
	if err := clusters.Host.Client.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	create(t, clusters.Virtual.Client, pod(vns, "over-quota", nil))
	var msg string
	testenv.WaitFor(t, waitTimeout, "SyncError event on the virtual pod", func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := clusters.Virtual.Client.List(ctx, events, client.InNamespace(vns)); err != nil {
			return false, nil
		}
		for _, e := range events.Items {
			if e.InvolvedObject.Name == "over-quota" && e.Reason == syncer.ReasonSyncError {
				msg = e.Message
				return true, nil
			}
		}
		return false, nil
	})
	if !strings.Contains(msg, "exceeded quota") || !strings.Contains(msg, hostName("over-quota", vns)) {
		t.Fatalf("event message %q: want the host's rejection naming the host pod", msg)
	}
}

func TestHostInterpretedAnnotationsStayInTheVirtualCluster(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	create(t, clusters.Virtual.Client, pod(vns, "multus", func(p *corev1.Pod) {
		p.Annotations = map[string]string{
			"k8s.v1.cni.cncf.io/networks": "default/macvlan-host",      // Multus: attach to a host network
			"iam.amazonaws.com/role":      "arn:aws:iam::1:role/admin", // kube2iam: assume a node's role
			"team.example.com/owner":      "a",
		}
	}))
	p := &corev1.Pod{}
	waitHost(t, p, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("multus", vns)}, "host pod created", nil)
	for _, k := range []string{"k8s.v1.cni.cncf.io/networks", "iam.amazonaws.com/role"} {
		if v, ok := p.Annotations[k]; ok {
			t.Errorf("host pod carries the tenant's %s=%q", k, v)
		}
	}
	if p.Annotations["team.example.com/owner"] != "a" {
		t.Errorf("tenant annotation outside host domains not copied: %v", p.Annotations)
	}
}

func TestNamesAndLabelsAtTheLengthLimitsReachTheHost(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("pods"))
	vns := clusters.Virtual.Namespace(t)
	// A pod name of 253 characters (the limit) and a label whose prefix (253)
	// and name (63) are at theirs, with a 63-character value.
	name := strings.Repeat("n", 240) + "-" + strings.Repeat("m", 12)
	prefix := strings.Repeat("p", 63) + "." + strings.Repeat("q", 63) + "." + strings.Repeat("r", 63) + "." + strings.Repeat("s", 61)
	key := prefix + "/" + strings.Repeat("k", 63)
	value := strings.Repeat("v", 63)
	create(t, clusters.Virtual.Client, pod(vns, name, func(p *corev1.Pod) { p.Labels = map[string]string{key: value, "app": "web"} }))
	var found *corev1.Pod
	testenv.WaitFor(t, waitTimeout, "host pod of the longest name", func(ctx context.Context) (bool, error) {
		list := &corev1.PodList{}
		if err := clusters.Host.Client.List(ctx, list, client.InNamespace(run.TargetNamespace), client.MatchingLabels{translator.LabelNamespace: vns}); err != nil {
			return false, nil
		}
		for i := range list.Items {
			if list.Items[i].Annotations[translator.AnnotationName] == name {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if len(found.Name) > translator.MaxNameLength {
		t.Errorf("host pod name has %d characters, want at most %d", len(found.Name), translator.MaxNameLength)
	}
	if found.Labels[translator.HostLabelKey(key)] != value || found.Labels[translator.HostLabelKey("app")] != "web" {
		t.Errorf("host labels %v: want the long key (hashed prefix) and app rewritten", found.Labels)
	}
}

func TestGenericSyncerKeepsPodTemplatesOffTheHost(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, builtins("gvk:Deployment.v1.apps"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	labels := map[string]string{"app": "root"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "root"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "root", Image: "img", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
				}}},
			},
		},
	}
	create(t, clusters.Virtual.Client, deploy)
	msg := waitRefused(t, vns, "root")
	if !strings.Contains(msg, "spec.template.spec") || !strings.Contains(msg, "--allow=pod-templates") {
		t.Errorf("event message %q: want the pod template and --allow=pod-templates named", msg)
	}
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("root", vns)}
	if err := clusters.Host.Client.Get(ctx, pNN, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a Deployment with a privileged pod template reached the host: %v", err)
	}

	allowed := synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowPodTemplates}}
	run2 := clusters.Start(t, syncertest.Options{Policy: allowed}, builtins("gvk:Deployment.v1.apps"))
	waitHost(t, &appsv1.Deployment{}, types.NamespacedName{Namespace: run2.TargetNamespace, Name: hostName("root", vns)}, "Deployment copied with --allow=pod-templates", nil)
}
