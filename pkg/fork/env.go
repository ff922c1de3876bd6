package fork

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// Environment variables read by this package. The parent's container must
// receive its own pod name and namespace through the downward API; the child
// receives EnvForkPath. The PS_OPERATOR_* names are the ones of the original
// fork package and are accepted as fallbacks so existing manifests keep working.
const (
	// EnvPodName holds the name of the pod this process runs in.
	EnvPodName = "PODKIT_POD_NAME"
	// EnvPodNamespace holds the namespace of the pod this process runs in.
	EnvPodNamespace = "PODKIT_POD_NAMESPACE"
	// EnvForkPath names the forked code path a child should take.
	EnvForkPath = "PODKIT_FORK_PATH"

	// LegacyEnvPodName is the original package's name for EnvPodName.
	LegacyEnvPodName = "PS_OPERATOR_POD_NAME"
	// LegacyEnvPodNamespace is the original package's name for EnvPodNamespace.
	LegacyEnvPodNamespace = "PS_OPERATOR_POD_NAMESPACE"
	// LegacyEnvForkPath is the original package's name for EnvForkPath.
	LegacyEnvForkPath = "PS_OPERATOR_FORK_PATH"
)

// EnvSnippet is the YAML to add to the parent container's spec so that this
// package can find the pod it runs in.
const EnvSnippet = `env:
- name: PODKIT_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: PODKIT_POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace`

// ErrNoParentEnv is wrapped by the error returned when the downward-API
// variables that identify the parent pod are missing.
var ErrNoParentEnv = errors.New("parent pod unknown")

// LookupEnvFunc looks up an environment variable; os.LookupEnv is one.
type LookupEnvFunc func(key string) (string, bool)

// Path returns the name of the forked code path this process should take, or
// "" when it is not a forked child (the root process). It reads EnvForkPath,
// then LegacyEnvForkPath.
func Path() string {
	return pathFrom(os.LookupEnv)
}

func pathFrom(lookup LookupEnvFunc) string {
	v, _ := firstEnv(lookup, EnvForkPath, LegacyEnvForkPath)
	return v
}

// firstEnv returns the first non-empty value among keys and the key it came from.
func firstEnv(lookup LookupEnvFunc, keys ...string) (value, key string) {
	for _, k := range keys {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v), k
		}
	}
	return "", ""
}

// parentFromEnv returns the namespace and name of the pod this process runs
// in, or an error that shows the YAML to add when either is missing.
func parentFromEnv(lookup LookupEnvFunc) (types.NamespacedName, error) {
	name, _ := firstEnv(lookup, EnvPodName, LegacyEnvPodName)
	ns, _ := firstEnv(lookup, EnvPodNamespace, LegacyEnvPodNamespace)
	var missing []string
	if name == "" {
		missing = append(missing, EnvPodName)
	}
	if ns == "" {
		missing = append(missing, EnvPodNamespace)
	}
	if len(missing) > 0 {
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return types.NamespacedName{}, fmt.Errorf("%w: %s %s not set (fork runs inside a pod); add this to the container's spec:\n%s",
			ErrNoParentEnv, strings.Join(missing, " and "), verb, EnvSnippet)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
