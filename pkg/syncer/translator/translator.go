package translator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NameTranslator is how the syncer engine maps objects between the clusters.
type NameTranslator interface {
	// IsManaged reports whether the host object pObj was created by this
	// syncer. The engine never touches a host object that is not managed.
	IsManaged(pObj client.Object) (bool, error)
	// VirtualToPhysical returns the host name of the virtual object req.
	// vObj is nil when the virtual object no longer exists.
	VirtualToPhysical(req types.NamespacedName, vObj client.Object) types.NamespacedName
	// PhysicalToVirtual returns the virtual name of the managed host object
	// pObj, or an empty name when pObj cannot be mapped.
	PhysicalToVirtual(pObj client.Object) types.NamespacedName
}

// Keys podkit puts on host objects it manages.
const (
	// LabelManagedBy holds the name of the virtual cluster that owns a host object.
	LabelManagedBy = "podkit.dev/managed-by"
	// LabelNamespace holds the virtual namespace of a host object, so that
	// label selectors can be scoped to one virtual namespace.
	LabelNamespace = "podkit.dev/namespace"
	// AnnotationName holds the virtual name of a host object.
	AnnotationName = "podkit.dev/object-name"
	// AnnotationNamespace holds the virtual namespace of a host object.
	AnnotationNamespace = "podkit.dev/object-namespace"
)

// MaxNameLength is the longest host name a translator produces: a DNS label,
// so that the result is valid for every kind (Services included).
const MaxNameLength = validation.DNS1123LabelMaxLength

const (
	separator = "-x-"
	hashLen   = 16
)

// ValidateVirtualClusterName checks the name every host object is suffixed
// with: a DNS label of at most 20 characters without "-x-".
func ValidateVirtualClusterName(name string) error {
	if name == "" {
		return fmt.Errorf("virtual cluster name is empty; set it to a short DNS label such as %q", "vc1")
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("virtual cluster name %q: %s", name, strings.Join(errs, "; "))
	}
	if len(name) > 20 {
		return fmt.Errorf("virtual cluster name %q is longer than 20 characters; choose a shorter name", name)
	}
	if strings.Contains(name, separator) {
		return fmt.Errorf("virtual cluster name %q contains %q; choose a name without it", name, separator)
	}
	return nil
}

// hashedName returns a stable name of at most MaxNameLength characters that
// starts with a readable prefix and ends with "-" and 16 hex characters of a
// hash of every part.
func hashedName(readable string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	suffix := hex.EncodeToString(sum[:])[:hashLen]
	prefix := readable
	if max := MaxNameLength - hashLen - 1; len(prefix) > max {
		prefix = prefix[:max]
	}
	prefix = strings.TrimRight(prefix, "-.")
	if prefix == "" {
		return "h" + suffix
	}
	return prefix + "-" + suffix
}

// looksHashed reports whether s ends like a name from hashedName.
func looksHashed(s string) bool {
	if len(s) < hashLen+1 {
		return false
	}
	if s[len(s)-hashLen-1] != '-' {
		// "h" + hash with an empty prefix
		return len(s) == hashLen+1 && s[0] == 'h' && isHex(s[1:])
	}
	return isHex(s[len(s)-hashLen:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// copyWithout copies m without the keys that podkit owns.
func copyWithout(m map[string]string, drop ...string) map[string]string {
	out := make(map[string]string, len(m)+len(drop))
	for k, v := range m {
		out[k] = v
	}
	for _, k := range drop {
		delete(out, k)
	}
	return out
}
