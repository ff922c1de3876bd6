package translator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestHostLabelKeyIsValidReversibleAndOutsideTenantKeys(t *testing.T) {
	long := strings.Repeat("a", 240) + ".example.com"
	tests := []struct {
		key, want string // want empty: hashed, checked by shape
	}{
		{"app", "label.podkit.dev/app"},
		{"app.kubernetes.io/name", "app.kubernetes.io.label.podkit.dev/name"},
		{"podkit.dev/managed-by", "podkit.dev.label.podkit.dev/managed-by"},
		{"label.podkit.dev/app", "label.podkit.dev.label.podkit.dev/app"},
		{long + "/x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got := HostLabelKey(tt.key)
			if errs := validation.IsQualifiedName(got); len(errs) > 0 {
				t.Fatalf("HostLabelKey(%q) = %q is not a valid label key: %v", tt.key, got, errs)
			}
			if !IsOwnedKey(got) {
				t.Fatalf("HostLabelKey(%q) = %q is not in podkit's domain", tt.key, got)
			}
			back, ok := VirtualLabelKey(got)
			if tt.want == "" {
				if ok || !strings.HasSuffix(strings.Split(got, "/")[0], ".hashed-"+LabelDomain) {
					t.Fatalf("HostLabelKey(%q) = %q, want a hashed, irreversible key (VirtualLabelKey = %q, %v)", tt.key, got, back, ok)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("HostLabelKey(%q) = %q, want %q", tt.key, got, tt.want)
			}
			if !ok || back != tt.key {
				t.Fatalf("VirtualLabelKey(%q) = %q, %v; want %q", got, back, ok, tt.key)
			}
		})
	}
	for _, k := range []string{LabelManagedBy, LabelNamespace, "app", "example.com/app", "hashed-label.podkit.dev/x"} {
		if vk, ok := VirtualLabelKey(k); ok {
			t.Errorf("VirtualLabelKey(%q) = %q, want no tenant key", k, vk)
		}
	}
}

func TestTranslateLabelSelectorRewritesKeysAndScopes(t *testing.T) {
	tr := mustNamespaced(t)
	got := tr.TranslateLabelSelector(&metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "web"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}},
	}, "team")
	want := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"label.podkit.dev/app": "web", LabelManagedBy: "vc1", LabelNamespace: "team"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "label.podkit.dev/tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("TranslateLabelSelector (-want +got):\n%s", diff)
	}
	if tr.TranslateLabelSelector(nil, "team") != nil {
		t.Fatal("a nil selector must stay nil")
	}
}

func TestMergeKeepsKeysOthersWroteOnTheHost(t *testing.T) {
	tr := mustNamespaced(t)
	want := tr.TranslateAnnotations(map[string]string{"note": "v2"}, "cfg", "team")
	tests := []struct {
		name                string
		current, wantMerged map[string]string
	}{
		{
			name: "webhook annotation kept, old tenant annotation removed, tenant annotation updated",
			current: map[string]string{
				"webhook.example.com/injected": "yes", "note": "v1", "gone": "x",
				AnnotationManagedAnnotations: "gone\nnote", AnnotationName: "cfg", AnnotationNamespace: "team",
			},
			wantMerged: map[string]string{
				"webhook.example.com/injected": "yes", "note": "v2",
				AnnotationManagedAnnotations: "note", AnnotationName: "cfg", AnnotationNamespace: "team",
			},
		},
		{
			name:       "stale podkit keys removed",
			current:    map[string]string{"podkit.dev/other": "x", "k8s.v1.cni.cncf.io/network-status": "[]"},
			wantMerged: map[string]string{"note": "v2", "k8s.v1.cni.cncf.io/network-status": "[]", AnnotationManagedAnnotations: "note", AnnotationName: "cfg", AnnotationNamespace: "team"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.wantMerged, MergeAnnotations(tt.current, want)); diff != "" {
				t.Fatalf("MergeAnnotations (-want +got):\n%s", diff)
			}
		})
	}
	labels := MergeLabels(
		map[string]string{
			"cni.example.com/ip": "10.0.0.1", "label.podkit.dev/old": "x", LabelManagedBy: "vc1",
			"app": "web", "tier": "host-set", // app=web: the tenant's label as an older podkit copied it
		},
		tr.TranslateLabels(map[string]string{"app": "web", "tier": "front"}, "team"),
	)
	wantLabels := map[string]string{
		"cni.example.com/ip": "10.0.0.1", "tier": "host-set",
		"label.podkit.dev/app": "web", "label.podkit.dev/tier": "front", LabelManagedBy: "vc1", LabelNamespace: "team",
	}
	if diff := cmp.Diff(wantLabels, labels); diff != "" {
		t.Fatalf("MergeLabels (-want +got):\n%s", diff)
	}
}

func TestTenantCannotWritePodkitOrHostInterpretedAnnotations(t *testing.T) {
	tr := mustNamespaced(t)
	got := tr.TranslateAnnotations(map[string]string{
		AnnotationManagedAnnotations: "webhook.example.com/injected", AnnotationName: "other",
		"k8s.v1.cni.cncf.io/networks":                         "default/macvlan-host", // Multus: a host network
		"iam.amazonaws.com/role":                              "arn:aws:iam::1:role/admin",
		"container.apparmor.security.beta.kubernetes.io/main": "unconfined",
		"kubernetes.io/ingress-bandwidth":                     "10G",
		"cni.projectcalico.org/ipAddrs":                       `["10.0.0.1"]`,
		"sidecar.istio.io/inject":                             "false",
		"prometheus.io/scrape":                                "true",
		"kubectl.kubernetes.io/last-applied-configuration":    "{}",
		"example.com/kubernetes.io":                           "kept: the domain is example.com",
	}, "cfg", "team")
	want := map[string]string{
		AnnotationName: "cfg", AnnotationNamespace: "team",
		"prometheus.io/scrape": "true", "example.com/kubernetes.io": "kept: the domain is example.com",
		AnnotationManagedAnnotations: "example.com/kubernetes.io\nprometheus.io/scrape",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("TranslateAnnotations (-want +got):\n%s", diff)
	}
}
