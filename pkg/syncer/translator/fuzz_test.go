package translator

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzNamespacedPhysicalName checks, for any two valid virtual objects, that
// host names are at most 63 characters, valid, distinct for distinct inputs,
// and that managed host objects map back to their virtual names.
func FuzzNamespacedPhysicalName(f *testing.F) {
	f.Add("web", "default", "web", "other")
	f.Add("a-x-b", "c", "a", "b-x-c")
	f.Add("a-x", "x-b", "a", "x-x-b")
	f.Add(strings.Repeat("a", 63), "default", strings.Repeat("a", 62), "default")
	f.Add("n", "0123456789abcdef", "n-x-0123456789abcdef", "x")
	tr, err := NewNamespaced("vc1", "host")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name1, ns1, name2, ns2 string) {
		if !validVirtual(name1, ns1) {
			return
		}
		p1 := tr.PhysicalName(name1, ns1)
		if len(p1) > MaxNameLength {
			t.Fatalf("PhysicalName(%q, %q) = %q: %d characters", name1, ns1, p1, len(p1))
		}
		if errs := validation.IsDNS1123Subdomain(p1); len(errs) > 0 {
			t.Fatalf("PhysicalName(%q, %q) = %q is not a valid name: %v", name1, ns1, p1, errs)
		}
		if !looksHashed(p1) {
			// The readable form must split back into exactly its input.
			rest := strings.TrimSuffix(p1, separator+"vc1")
			name, ns, ok := strings.Cut(rest, separator)
			if !ok || name != name1 || ns != ns1 {
				t.Fatalf("readable name %q reads back as (%q, %q), want (%q, %q)", p1, name, ns, name1, ns1)
			}
		}
		pObj := tr.TranslateMetadata(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name1, Namespace: ns1}})
		if managed, err := tr.IsManaged(pObj); err != nil || !managed {
			t.Fatalf("translated (%q, %q) is not managed: %v", name1, ns1, err)
		}
		if v := tr.PhysicalToVirtual(pObj); v.Name != name1 || v.Namespace != ns1 {
			t.Fatalf("PhysicalToVirtual(%q) = %v, want %s/%s", p1, v, ns1, name1)
		}
		if !validVirtual(name2, ns2) || (name1 == name2 && ns1 == ns2) {
			return
		}
		if p2 := tr.PhysicalName(name2, ns2); p1 == p2 {
			t.Fatalf("(%q, %q) and (%q, %q) both translate to %q", name1, ns1, name2, ns2, p1)
		}
	})
}
