package fork

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Labels and annotations fork puts on a child pod. The labels link the child
// to its parent (select a parent's children with LabelParentUID).
const (
	// LabelParentUID holds the UID of the parent pod.
	LabelParentUID = "podkit.dev/fork-parent-uid"
	// LabelPath holds the fork path the child runs.
	LabelPath = "podkit.dev/fork-path"
	// AnnotationParent holds the parent pod's name (names may be longer than
	// a label value allows).
	AnnotationParent = "podkit.dev/fork-parent"
	// AnnotationInstance holds Options.Instance when it is set.
	AnnotationInstance = "podkit.dev/fork-instance"
)

const (
	maxNameLength = 63 // a DNS label, so the name is also a valid hostname
	hashLength    = 8
)

// ChildName returns the deterministic name of the child forked by the
// parent pod (name and UID) for forkPath and instance:
// "<parent>-<path>-<hash>", lowercased, with characters a DNS label does not
// allow replaced by '-', shortened to at most 63 characters. The hash covers
// the parent UID, the path and the instance, so the same call made again
// names the same child, a restarted parent (new UID) names a new one, and two
// different inputs never share a name because of shortening.
func ChildName(parentName string, parentUID types.UID, forkPath, instance string) string {
	sum := sha256.Sum256([]byte(string(parentUID) + "\x00" + forkPath + "\x00" + instance))
	hash := hex.EncodeToString(sum[:])[:hashLength]

	prefix := sanitize(parentName + "-" + forkPath)
	if limit := maxNameLength - 1 - hashLength; len(prefix) > limit {
		prefix = strings.TrimRight(prefix[:limit], "-")
	}
	if prefix == "" {
		prefix = "fork"
	}
	return prefix + "-" + hash
}

// sanitize lowercases s, maps every character outside [a-z0-9] to '-',
// collapses runs of '-' and trims them from both ends.
func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.Trim(b.String(), "-")
}
