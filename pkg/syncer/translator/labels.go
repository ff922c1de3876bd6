package translator

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Label and annotation keys on the host.
//
// Tenant label keys never reach the host as they are: a host Service,
// NetworkPolicy or PodDisruptionBudget in the target namespace that selects
// app=web must not select a tenant's pod labelled app=web. vcluster does the
// same with a hashed key (vcluster.loft.sh/label-<vcluster>-x-<hash>, see
// loft-sh/vcluster pkg/util/translate); podkit keeps the key readable and
// reversible instead: the key's prefix gets LabelDomain appended, so "app"
// becomes "label.podkit.dev/app" and "app.kubernetes.io/name" becomes
// "app.kubernetes.io.label.podkit.dev/name". Values are unchanged.
const (
	// LabelDomain is the prefix (or prefix suffix) of every tenant label key
	// on the host.
	LabelDomain = "label.podkit.dev"
	// AnnotationManagedAnnotations lists, one per line, the tenant annotation
	// keys podkit wrote on a host object; other annotations on the host object
	// were written by someone else (a webhook, the CNI) and are kept.
	AnnotationManagedAnnotations = "podkit.dev/managed-annotations"
	// domain is podkit's own domain: host keys under it are podkit's.
	domain = "podkit.dev"
)

// maxPrefixLength is the longest label key prefix (a DNS subdomain).
const maxPrefixLength = validation.DNS1123SubdomainMaxLength

// HostLabelKey returns the host key of the tenant label key k. Keys whose
// prefix would grow past 253 characters get a hashed prefix (not reversible;
// VirtualLabels leaves them out).
func HostLabelKey(k string) string {
	prefix, name, ok := strings.Cut(k, "/")
	if !ok {
		return LabelDomain + "/" + k
	}
	if p := prefix + "." + LabelDomain; len(p) <= maxPrefixLength {
		return p + "/" + name
	}
	sum := sha256.Sum256([]byte(prefix))
	return "h" + hex.EncodeToString(sum[:])[:hashLen] + ".hashed-" + LabelDomain + "/" + name
}

// VirtualLabelKey returns the tenant key of the host label key k, and false
// when k is not a (reversible) tenant label key.
func VirtualLabelKey(k string) (string, bool) {
	prefix, name, ok := strings.Cut(k, "/")
	if !ok {
		return "", false
	}
	if prefix == LabelDomain {
		return name, true
	}
	orig, ok := strings.CutSuffix(prefix, "."+LabelDomain)
	if !ok {
		return "", false
	}
	return orig + "/" + name, true
}

// IsOwnedKey reports whether the host label or annotation key k belongs to
// podkit: its prefix is podkit.dev or a subdomain of it. Sync steps replace
// owned keys and keep every other key on a host object.
func IsOwnedKey(k string) bool {
	prefix, _, ok := strings.Cut(k, "/")
	return ok && (prefix == domain || strings.HasSuffix(prefix, "."+domain))
}

// TranslateLabels returns the host labels for virtual labels of an object in
// namespace: every tenant key rewritten with HostLabelKey, plus the
// managed-by and namespace markers.
func (t *Namespaced) TranslateLabels(vLabels map[string]string, namespace string) map[string]string {
	out := make(map[string]string, len(vLabels)+2)
	for k, v := range vLabels {
		out[HostLabelKey(k)] = v
	}
	out[LabelManagedBy] = t.vcluster
	out[LabelNamespace] = namespace
	return out
}

// TranslateSelector returns the host label selector for a virtual selector
// in namespace: keys rewritten as TranslateLabels does, and scoped to host
// objects of the same virtual namespace and cluster. A nil selector stays
// nil (it selects nothing).
func (t *Namespaced) TranslateSelector(vSelector map[string]string, namespace string) map[string]string {
	if vSelector == nil {
		return nil
	}
	return t.TranslateLabels(vSelector, namespace)
}

// TranslateLabelSelector is TranslateSelector for a metav1.LabelSelector:
// match labels and the keys of match expressions are rewritten, and the
// result is scoped to the virtual namespace. A nil selector stays nil.
func (t *Namespaced) TranslateLabelSelector(vSelector *metav1.LabelSelector, namespace string) *metav1.LabelSelector {
	if vSelector == nil {
		return nil
	}
	out := &metav1.LabelSelector{MatchLabels: t.TranslateLabels(vSelector.MatchLabels, namespace)}
	for _, e := range vSelector.MatchExpressions {
		e.Key = HostLabelKey(e.Key)
		e.Values = slices.Clone(e.Values)
		out.MatchExpressions = append(out.MatchExpressions, e)
	}
	return out
}

// TranslateAnnotations returns the host annotations: the virtual ones
// (without keys in podkit's domain or in a domain the host acts on, see
// IsHostInterpretedKey), the virtual name and namespace, and
// AnnotationManagedAnnotations listing the tenant keys.
func (t *Namespaced) TranslateAnnotations(vAnnotations map[string]string, name, namespace string) map[string]string {
	out := tenantAnnotations(vAnnotations)
	out[AnnotationName] = name
	out[AnnotationNamespace] = namespace
	return out
}

// hostDomains are annotation domains that components of the host act on:
// Kubernetes itself (kubernetes.io, k8s.io: AppArmor, bandwidth limits, …),
// CNI plugins (Multus attaches pods to host networks by annotation, Calico
// assigns addresses and pools), cloud identity (kube2iam assumes the IAM role
// an annotation names) and meshes. A tenant's annotation in one of them is not
// copied to the host; the keys stay in the virtual cluster.
var hostDomains = []string{
	"kubernetes.io", "k8s.io", "k8s.v1.cni.cncf.io", "cni.projectcalico.org", "cilium.io",
	"iam.amazonaws.com", "eks.amazonaws.com", "azure.workload.identity", "cloud.google.com",
	"networking.gke.io", "istio.io", "linkerd.io",
}

// IsHostInterpretedKey reports whether the annotation key k is in a domain
// the host's components act on (see hostDomains); such tenant annotations
// are not copied to the host.
func IsHostInterpretedKey(k string) bool {
	prefix, _, ok := strings.Cut(k, "/")
	if !ok {
		return false
	}
	for _, d := range hostDomains {
		if prefix == d || strings.HasSuffix(prefix, "."+d) {
			return true
		}
	}
	return false
}

// tenantAnnotations copies the annotations a tenant may set on a host object
// and records their keys in AnnotationManagedAnnotations.
func tenantAnnotations(vAnnotations map[string]string) map[string]string {
	out := make(map[string]string, len(vAnnotations)+3)
	keys := make([]string, 0, len(vAnnotations))
	for k, v := range vAnnotations {
		if IsOwnedKey(k) || IsHostInterpretedKey(k) {
			continue
		}
		out[k] = v
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		out[AnnotationManagedAnnotations] = strings.Join(keys, "\n")
	}
	return out
}

// MergeLabels returns the labels a managed host object should carry when it
// has current and podkit wants want: keys podkit owns (IsOwnedKey) come from
// want only, every other key stays as someone else wrote it on the host —
// except a tenant label copied verbatim by a podkit before the key rewrite
// (the tenant's key with the tenant's value), which is removed.
func MergeLabels(current, want map[string]string) map[string]string {
	verbatim := map[string]string{}
	for k, v := range want {
		if vk, ok := VirtualLabelKey(k); ok {
			verbatim[vk] = v
		}
	}
	out := make(map[string]string, len(current)+len(want))
	for k, v := range current {
		if w, ok := verbatim[k]; ok && w == v {
			continue
		}
		if !IsOwnedKey(k) {
			out[k] = v
		}
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// MergeAnnotations returns the annotations a managed host object should
// carry when it has current and podkit wants want. Keys podkit owns and the
// tenant keys it wrote before (listed in current's
// AnnotationManagedAnnotations) come from want only; every other key stays
// as someone else (a webhook, the CNI) wrote it on the host.
func MergeAnnotations(current, want map[string]string) map[string]string {
	ours := map[string]bool{}
	if list := current[AnnotationManagedAnnotations]; list != "" {
		for _, k := range strings.Split(list, "\n") {
			ours[k] = true
		}
	}
	out := make(map[string]string, len(current)+len(want))
	for k, v := range current {
		if !IsOwnedKey(k) && !ours[k] {
			out[k] = v
		}
	}
	for k, v := range want {
		out[k] = v
	}
	return out
}

// VirtualLabels returns the labels of a host object as the virtual object
// should carry them: tenant keys translated back, podkit's markers and keys
// written by others on the host left out.
func VirtualLabels(pLabels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range pLabels {
		vk, ok := VirtualLabelKey(k)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[vk] = v
	}
	return out
}

// VirtualAnnotations returns the annotations of a host object as the virtual
// object should carry them: keys in podkit's domain removed.
func VirtualAnnotations(pAnnotations map[string]string) map[string]string {
	var out map[string]string
	for k, v := range pAnnotations {
		if IsOwnedKey(k) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}
