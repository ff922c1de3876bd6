package podoperator

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
)

// Defaults applied by New to unset Options fields.
const (
	DefaultName                = "podoperator"
	DefaultWorkers             = 2
	DefaultMaxRetries          = 10
	DefaultShutdownGracePeriod = 30 * time.Second
	DefaultLeaseDuration       = 15 * time.Second
	DefaultRenewDeadline       = 10 * time.Second
	DefaultRetryPeriod         = 2 * time.Second
)

// Options configure an Operator. The zero value of every field but Handler
// is valid and means the documented default.
type Options struct {
	// Handler receives the pod events. Required.
	Handler Handler

	// Namespace limits the operator to one namespace. Default "": all
	// namespaces.
	Namespace string
	// LabelSelector filters pods on the server, in kubectl's syntax
	// ("app=web,tier!=cache"). Default "": every pod.
	LabelSelector string
	// FieldSelector filters pods on the server ("spec.nodeName=node-1",
	// "status.phase=Running"). Default "": every pod.
	FieldSelector string

	// Workers is how many pods are handled in parallel. Default 2.
	Workers int
	// RateLimiter delays retries of a failed event. Default: per pod, an
	// exponential backoff from 100 ms to 5 s, combined with an overall token
	// bucket of 10 retries/s (burst 100), whichever waits longer.
	RateLimiter workqueue.TypedRateLimiter[types.NamespacedName]
	// MaxRetries is how many times a failing event is retried before it is
	// dropped (logged, counted, and recorded as a Kubernetes Event when
	// EventRecorder is set). Default (nil) 10; 0 means never retry.
	MaxRetries *int
	// ResyncPeriod makes the informer replay every cached pod as an
	// OnUpdate with old == new at this interval. Default 0: no resync.
	ResyncPeriod time.Duration
	// Transform trims each pod before it is cached and handed to handlers.
	// Default (nil) NewDefaultTransform(): drop managedFields and the
	// last-applied-configuration annotation, and share parts that are equal
	// between pods (see NewDefaultTransform). Set StripTransform to only
	// drop, or NoTransform to keep objects exactly as the API server sent
	// them.
	Transform cache.TransformFunc
	// ShutdownGracePeriod bounds how long Run waits, after its context
	// ends, for handlers already running to return; then their context is
	// cancelled. Default 30 s.
	ShutdownGracePeriod time.Duration

	// Name identifies this operator in logs, metrics (the "operator" label)
	// and as the default lease name. Default "podoperator".
	Name string
	// Logger receives the operator's logs. Default slog.Default().
	Logger *slog.Logger
	// Registerer is where the operator registers its Prometheus metrics.
	// Default: a private registry, served by MetricsHandler.
	Registerer prometheus.Registerer
	// EventRecorder, when set, records a Warning Event on a pod whose event
	// was dropped after MaxRetries. Default nil: log only.
	EventRecorder record.EventRecorder
	// LeaderElection, when set, makes only the holder of a Lease handle
	// events; the others keep a warm cache and wait. Default nil: always
	// handle.
	LeaderElection *LeaderElection
	// PendingWatch, when set, turns on the pending-pod watcher: pods stuck
	// in Pending longer than a limit get an Event, are deleted, or are
	// handed to a callback (see PendingWatch). Default nil: off.
	PendingWatch *PendingWatch
}

// LeaderElection configures leader election with a coordination.k8s.io Lease.
type LeaderElection struct {
	// LeaseNamespace is where the Lease lives. Required.
	LeaseNamespace string
	// LeaseName names the Lease. Default Options.Name.
	LeaseName string
	// Identity names this candidate in the Lease. Default hostname plus a
	// random suffix.
	Identity string
	// LeaseDuration is how long followers wait before taking over a lease
	// that is not renewed. Default 15 s.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before it
	// gives up leading. Default 10 s; must be less than LeaseDuration.
	RenewDeadline time.Duration
	// RetryPeriod is the interval between attempts to acquire or renew.
	// Default 2 s; must be less than RenewDeadline.
	RetryPeriod time.Duration
}

// defaultRateLimiter is the seed's per-item backoff plus an overall bucket.
func defaultRateLimiter() workqueue.TypedRateLimiter[types.NamespacedName] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[types.NamespacedName](100*time.Millisecond, 5*time.Second),
		&workqueue.TypedBucketRateLimiter[types.NamespacedName]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// setDefaults fills unset fields; it runs after validate.
func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.RateLimiter == nil {
		o.RateLimiter = defaultRateLimiter()
	}
	if o.MaxRetries == nil {
		n := DefaultMaxRetries
		o.MaxRetries = &n
	}
	if o.Transform == nil {
		o.Transform = NewDefaultTransform()
	}
	if o.ShutdownGracePeriod == 0 {
		o.ShutdownGracePeriod = DefaultShutdownGracePeriod
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.PendingWatch != nil {
		o.PendingWatch.setDefaults()
	}
	if le := o.LeaderElection; le != nil {
		if le.LeaseName == "" {
			le.LeaseName = o.Name
		}
		if le.Identity == "" {
			host, _ := os.Hostname()
			le.Identity = host + "_" + rand.String(8)
		}
		if le.LeaseDuration == 0 {
			le.LeaseDuration = DefaultLeaseDuration
		}
		if le.RenewDeadline == 0 {
			le.RenewDeadline = DefaultRenewDeadline
		}
		if le.RetryPeriod == 0 {
			le.RetryPeriod = DefaultRetryPeriod
		}
	}
}

// validate reports every invalid field, each naming the field and the fix.
func (o *Options) validate() error {
	var errs []error
	if o.Handler == nil {
		errs = append(errs, errors.New("Options.Handler is nil: set a Handler, e.g. podoperator.HandlerFuncs{AddFunc: ...}"))
	}
	if o.Namespace != "" {
		if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("Options.Namespace %q is not a valid namespace name: %s", o.Namespace, msgs[0]))
		}
	}
	if _, err := labels.Parse(o.LabelSelector); err != nil {
		errs = append(errs, fmt.Errorf("Options.LabelSelector %q: %w", o.LabelSelector, err))
	}
	if _, err := fields.ParseSelector(o.FieldSelector); err != nil {
		errs = append(errs, fmt.Errorf("Options.FieldSelector %q: %w", o.FieldSelector, err))
	}
	if o.Workers < 0 {
		errs = append(errs, fmt.Errorf("Options.Workers is %d: use a positive number, or 0 for the default %d", o.Workers, DefaultWorkers))
	}
	if o.MaxRetries != nil && *o.MaxRetries < 0 {
		errs = append(errs, fmt.Errorf("Options.MaxRetries is %d: use 0 (never retry) or more, or nil for the default %d", *o.MaxRetries, DefaultMaxRetries))
	}
	if o.ResyncPeriod < 0 {
		errs = append(errs, fmt.Errorf("Options.ResyncPeriod is %s: use a positive duration, or 0 to disable resync", o.ResyncPeriod))
	}
	if o.ShutdownGracePeriod < 0 {
		errs = append(errs, fmt.Errorf("Options.ShutdownGracePeriod is %s: use a positive duration, or 0 for the default %s", o.ShutdownGracePeriod, DefaultShutdownGracePeriod))
	}
	if o.Name != "" {
		if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("Options.Name %q: %s", o.Name, msgs[0]))
		}
	}
	if le := o.LeaderElection; le != nil {
		errs = append(errs, le.validate()...)
	}
	if pw := o.PendingWatch; pw != nil {
		errs = append(errs, pw.validate()...)
	}
	return errors.Join(errs...)
}

func (le *LeaderElection) validate() []error {
	var errs []error
	if le.LeaseNamespace == "" {
		errs = append(errs, errors.New("Options.LeaderElection.LeaseNamespace is empty: set the namespace the Lease lives in"))
	}
	if le.LeaseDuration < 0 || le.RenewDeadline < 0 || le.RetryPeriod < 0 {
		errs = append(errs, errors.New("Options.LeaderElection durations must not be negative: use 0 for the defaults"))
	}
	d, r, p := le.LeaseDuration, le.RenewDeadline, le.RetryPeriod
	if d == 0 {
		d = DefaultLeaseDuration
	}
	if r == 0 {
		r = DefaultRenewDeadline
	}
	if p == 0 {
		p = DefaultRetryPeriod
	}
	if r >= d {
		errs = append(errs, fmt.Errorf("Options.LeaderElection.RenewDeadline (%s) must be less than LeaseDuration (%s)", r, d))
	}
	if p >= r {
		errs = append(errs, fmt.Errorf("Options.LeaderElection.RetryPeriod (%s) must be less than RenewDeadline (%s)", p, r))
	}
	return errs
}
