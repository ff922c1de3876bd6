package translator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

func mustNamespaced(t testing.TB) *Namespaced {
	t.Helper()
	tr, err := NewNamespaced("vc1", "host-ns")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestNamespacedPhysicalName(t *testing.T) {
	tr := mustNamespaced(t)
	long := strings.Repeat("a", 60)
	tests := []struct {
		name, namespace string
		want            string // empty: hashed, checked by shape
	}{
		{"web", "default", "web-x-default-x-vc1"},
		{"a.b", "team", "a.b-x-team-x-vc1"},
		{long, "default", ""},
		{"a-x-b", "c", ""}, // would read as name "a", namespace "b-x-c"
		{"a-x", "x-b", ""}, // would read as name "a", namespace "x-x-b"
		{"n", "0123456789abcdef", "n-x-0123456789abcdef-x-vc1"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.namespace, func(t *testing.T) {
			got := tr.PhysicalName(tt.name, tt.namespace)
			if tt.want != "" && got != tt.want {
				t.Fatalf("PhysicalName = %q, want %q", got, tt.want)
			}
			if tt.want == "" && !looksHashed(got) {
				t.Fatalf("PhysicalName = %q, want a hashed name", got)
			}
			if len(got) > MaxNameLength {
				t.Fatalf("PhysicalName = %q is %d characters, want at most %d", got, len(got), MaxNameLength)
			}
			if again := tr.PhysicalName(tt.name, tt.namespace); again != got {
				t.Fatalf("PhysicalName is not stable: %q then %q", got, again)
			}
		})
	}
}

func TestLongNamesShareAPrefixButNotAName(t *testing.T) {
	tr := mustNamespaced(t)
	a := tr.PhysicalName(strings.Repeat("a", 70)+"1", "default")
	b := tr.PhysicalName(strings.Repeat("a", 70)+"2", "default")
	if a == b {
		t.Fatalf("two long names translate to the same host name %q", a)
	}
	if !strings.HasPrefix(a, "aaaa") {
		t.Fatalf("hashed name %q lost its readable prefix", a)
	}
}

func TestTranslateMetadataRoundTrip(t *testing.T) {
	tr := mustNamespaced(t)
	vObj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "cfg", Namespace: "team", ResourceVersion: "7", UID: "u1",
		Labels:      map[string]string{"app": "web", LabelManagedBy: "someone-else"},
		Annotations: map[string]string{"note": "x"},
		Finalizers:  []string{"example.com/f"},
	}}
	pObj := tr.TranslateMetadata(vObj)
	want := metav1.ObjectMeta{
		Name: "cfg-x-team-x-vc1", Namespace: "host-ns",
		Labels: map[string]string{
			"label.podkit.dev/app": "web", "podkit.dev.label.podkit.dev/managed-by": "someone-else",
			LabelManagedBy: "vc1", LabelNamespace: "team",
		},
		Annotations: map[string]string{"note": "x", AnnotationName: "cfg", AnnotationNamespace: "team", AnnotationManagedAnnotations: "note"},
	}
	if diff := cmp.Diff(want, pObj.(*corev1.ConfigMap).ObjectMeta); diff != "" {
		t.Fatalf("host metadata (-want +got):\n%s", diff)
	}
	if vObj.ResourceVersion != "7" || vObj.Labels[LabelManagedBy] != "someone-else" {
		t.Fatal("TranslateMetadata modified the virtual object")
	}
	managed, err := tr.IsManaged(pObj)
	if err != nil || !managed {
		t.Fatalf("IsManaged = %v, %v; want true", managed, err)
	}
	if got := tr.PhysicalToVirtual(pObj); got != (types.NamespacedName{Namespace: "team", Name: "cfg"}) {
		t.Fatalf("PhysicalToVirtual = %v", got)
	}
	if diff := cmp.Diff(vObj.Labels, VirtualLabels(pObj.GetLabels())); diff != "" {
		t.Fatalf("VirtualLabels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"note": "x"}, VirtualAnnotations(pObj.GetAnnotations())); diff != "" {
		t.Fatalf("VirtualAnnotations (-want +got):\n%s", diff)
	}
}

func TestIsManagedRejectsLookalikes(t *testing.T) {
	tr := mustNamespaced(t)
	good := tr.TranslateMetadata(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "team"}})
	tests := []struct {
		name   string
		mutate func(m *metav1.ObjectMeta)
	}{
		{"no managed-by label", func(m *metav1.ObjectMeta) { delete(m.Labels, LabelManagedBy) }},
		{"other virtual cluster", func(m *metav1.ObjectMeta) { m.Labels[LabelManagedBy] = "vc2" }},
		{"other namespace", func(m *metav1.ObjectMeta) { m.Namespace = "elsewhere" }},
		{"no name annotation", func(m *metav1.ObjectMeta) { delete(m.Annotations, AnnotationName) }},
		{"annotations point elsewhere", func(m *metav1.ObjectMeta) { m.Annotations[AnnotationName] = "other" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cm := good.DeepCopyObject().(*corev1.ConfigMap)
			tt.mutate(&cm.ObjectMeta)
			managed, err := tr.IsManaged(cm)
			if err != nil || managed {
				t.Fatalf("IsManaged = %v, %v; want false", managed, err)
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	tests := []struct{ vcluster, target string }{
		{"", "ns"}, {"Bad_Name", "ns"}, {"a-x-b", "ns"}, {strings.Repeat("v", 21), "ns"}, {"vc", ""},
	}
	for _, tt := range tests {
		if _, err := NewNamespaced(tt.vcluster, tt.target); err == nil {
			t.Errorf("NewNamespaced(%q, %q) succeeded, want an error", tt.vcluster, tt.target)
		}
	}
	if _, err := NewCluster(""); err == nil {
		t.Error("NewCluster(\"\") succeeded, want an error")
	}
}

func TestClusterTranslator(t *testing.T) {
	tr, err := NewCluster("vc1")
	if err != nil {
		t.Fatal(err)
	}
	pObj := tr.TranslateMetadata(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}})
	if pObj.GetName() != "node-1-x-vc1" {
		t.Fatalf("host name = %q", pObj.GetName())
	}
	if managed, _ := tr.IsManaged(pObj); !managed {
		t.Fatal("translated object is not managed")
	}
	if got := tr.PhysicalToVirtual(pObj).Name; got != "node-1" {
		t.Fatalf("PhysicalToVirtual = %q", got)
	}
	if long := tr.PhysicalName(strings.Repeat("n", 80)); len(long) > MaxNameLength || !looksHashed(long) {
		t.Fatalf("long cluster name = %q", long)
	}
}

// validVirtual reports whether name/namespace are names a virtual API server accepts.
func validVirtual(name, namespace string) bool {
	return len(validation.IsDNS1123Subdomain(name)) == 0 && len(validation.IsDNS1123Label(namespace)) == 0
}
