package fork

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// DefaultLogLines is the number of log lines per container Run collects when
// Options.Clientset is set and Options.LogLines is 0.
const DefaultLogLines = 20

// DefaultLogLimitBytes is Options.LogLimitBytes when it is 0: 1 MiB per container.
const DefaultLogLimitBytes = 1 << 20

// Options tune Start and Run. The zero value forks the parent as it is,
// waits without a deadline and keeps the child.
type Options struct {
	// ServiceAccountName runs the child under another service account.
	// Default: the parent's.
	ServiceAccountName string

	// Env is set in every app container of the child, replacing variables of
	// the same name. EnvForkPath cannot be set here. Default: none.
	Env []corev1.EnvVar

	// Volumes are added to the child's pod; their names must not collide with
	// the parent's volumes. Default: none.
	Volumes []corev1.Volume

	// VolumeMounts are added to every app container of the child; each must
	// name a volume of the parent or of Volumes. Default: none.
	VolumeMounts []corev1.VolumeMount

	// Resources replaces the resources of every app container of the child.
	// Default: nil, the parent's resources are kept.
	Resources *corev1.ResourceRequirements

	// Labels and Annotations are added to the child's metadata. The child
	// does not inherit the parent's labels (a ReplicaSet selecting the parent
	// would otherwise count the child), and keys under podkit.dev/fork- are
	// reserved. Default: none.
	Labels      map[string]string
	Annotations map[string]string

	// RestartPolicy of the child: Never or OnFailure (Always would never
	// complete). Default: Never.
	RestartPolicy corev1.RestartPolicy

	// Instance tells apart several children forked by the same parent for the
	// same path; it is part of the child's name hash. Calls with the same
	// parent, path and Instance address the same child. Default: "".
	Instance string

	// Timeout bounds waiting for the child to complete (Wait, and so Run).
	// Default: 0, wait until the context is done.
	Timeout time.Duration

	// Delete removes the child once it has completed and its result and logs
	// are collected. Default: false, the child stays until its parent is
	// deleted (it is garbage-collected through its ownerReference).
	Delete bool

	// Progress, when set, is called from the waiting goroutine each time the
	// child's observed state changes (scheduled, running, completed, ...).
	// Default: nil.
	Progress func(Progress)

	// Clientset, when set, is used to read the child's logs into the Result
	// and to watch the child when the client.Client passed to Run cannot
	// watch (client.WithWatch). Default: nil, no logs.
	Clientset kubernetes.Interface

	// LogLines is how many of the last log lines of each app container are
	// collected when Clientset is set. Default: 0, meaning DefaultLogLines.
	LogLines int

	// LogLimitBytes caps the bytes of log kept per container (the tail is
	// kept, ContainerResult.LogsTruncated says so). Default: 0, meaning
	// DefaultLogLimitBytes (1 MiB).
	LogLimitBytes int64

	// KeepSidecars keeps in the child the sidecars that admission webhooks
	// injected into the parent (Istio, Linkerd, Vault) and its native
	// sidecars (init containers with restartPolicy Always). Default: false,
	// they are left out (Child.Dropped lists them and Start logs them), as
	// the webhooks inject the child again.
	KeepSidecars bool

	// DropContainers names further containers or init containers of the
	// parent to leave out of the child, e.g. a sidecar injected by a webhook
	// fork does not know. Default: none.
	DropContainers []string

	// Logger receives Start's log lines (which sidecars were left out).
	// Default: slog.Default().
	Logger *slog.Logger

	// LookupEnv reads the downward-API variables that identify the parent
	// pod. Default: os.LookupEnv. Tests and programs that know their parent
	// by other means set it.
	LookupEnv LookupEnvFunc
}

func (o *Options) setDefaults() {
	if o.RestartPolicy == "" {
		o.RestartPolicy = corev1.RestartPolicyNever
	}
	if o.LogLines == 0 {
		o.LogLines = DefaultLogLines
	}
	if o.LogLimitBytes == 0 {
		o.LogLimitBytes = DefaultLogLimitBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// validate checks the options and the fork path; setDefaults runs first.
func (o *Options) validate(forkPath string) error {
	var errs []error
	if err := validateForkPath(forkPath); err != nil {
		errs = append(errs, err)
	} else if msgs := validation.IsValidLabelValue(forkPath); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("fork path %q is not a valid label value (%s): use at most 63 letters, digits, '-', '_' or '.'",
			forkPath, strings.Join(msgs, "; ")))
	}
	if o.RestartPolicy != corev1.RestartPolicyNever && o.RestartPolicy != corev1.RestartPolicyOnFailure {
		errs = append(errs, fmt.Errorf("Options.RestartPolicy %q: use Never or OnFailure (a child with Always never completes)", o.RestartPolicy))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("Options.Timeout %s is negative: use 0 to wait without a deadline", o.Timeout))
	}
	if o.LogLimitBytes < 0 {
		errs = append(errs, fmt.Errorf("Options.LogLimitBytes %d is negative: use 0 for the default (%d)", o.LogLimitBytes, DefaultLogLimitBytes))
	}
	for i, n := range o.DropContainers {
		if n == "" {
			errs = append(errs, fmt.Errorf("Options.DropContainers[%d] is empty: name a container of the parent pod", i))
		}
	}
	if o.LogLines < 0 {
		errs = append(errs, fmt.Errorf("Options.LogLines %d is negative: use 0 for the default (%d)", o.LogLines, DefaultLogLines))
	}
	for _, e := range o.Env {
		switch {
		case e.Name == "":
			errs = append(errs, errors.New("Options.Env has an entry without a name"))
		case e.Name == EnvForkPath || e.Name == LegacyEnvForkPath:
			errs = append(errs, fmt.Errorf("Options.Env sets %s: pass the path as the forkPath argument instead", e.Name))
		}
	}
	for i, v := range o.Volumes {
		if v.Name == "" {
			errs = append(errs, fmt.Errorf("Options.Volumes[%d] has no name", i))
		}
	}
	for k, v := range o.Labels {
		if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("Options.Labels key %q: %s", k, strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("Options.Labels[%q] value %q: %s", k, v, strings.Join(msgs, "; ")))
		}
		if isReserved(k) {
			errs = append(errs, fmt.Errorf("Options.Labels key %q is reserved by fork: choose another key", k))
		}
	}
	for k := range o.Annotations {
		if isReserved(k) {
			errs = append(errs, fmt.Errorf("Options.Annotations key %q is reserved by fork: choose another key", k))
		}
	}
	return errors.Join(errs...)
}

func isReserved(key string) bool {
	return strings.HasPrefix(key, "podkit.dev/fork-")
}
