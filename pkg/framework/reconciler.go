package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podkit-dev/podkit/api/fcv1"
	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// ControllerName names the controller in logs, metrics and events.
const ControllerName = "podkit-framework-controller"

// +kubebuilder:rbac:groups=podkit.dev,resources=frameworks,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=podkit.dev,resources=frameworks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=podkit.dev,resources=frameworks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch;update
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Options configure a Reconciler. The zero value is valid.
type Options struct {
	// MaxConcurrentReconciles is how many Frameworks are reconciled at once.
	// Default 4.
	MaxConcurrentReconciles int
	// CreationConcurrency is how many pod creations or deletions one
	// reconcile runs in parallel; the client's QPS and burst still bound
	// the rate. Default 32.
	CreationConcurrency int
	// StatusUpdateInterval is the shortest gap between two status writes of
	// one Framework that only record progress (pod IPs, nodes, running).
	// Completions, retries and new pods are written at once. Default 1s;
	// a negative value disables batching.
	StatusUpdateInterval time.Duration
	// ExpectationTimeout is how long a pod this controller created may be
	// missing from the informer cache before the controller asks the
	// apiserver whether it was deleted. Default 30s.
	ExpectationTimeout time.Duration
	// ReleaseMinTasks is the Framework size (tasks counted by the spec) from
	// which the controller publishes v1alpha1.AnnotationBarrierRelease,
	// with one patch after each status write that changes the release
	// state. 0 means v1alpha1.BarrierReleaseMinTasks (2000); a negative
	// value publishes for every size.
	ReleaseMinTasks int
	// Clock is the time source. Default: the real clock.
	Clock clock.Clock
	// Registerer receives the Prometheus metrics. Default:
	// controller-runtime's metrics registry.
	Registerer prometheus.Registerer
	// Config is FrameworkController's configuration file contents: the
	// pod failure spec and retry delays (see LoadConfig). Default: FC's
	// defaults.
	Config *Config
	// Rand returns a uniform random number in [0, 1) for the random retry
	// delay of Transient Conflict failures. Default: math/rand/v2.
	Rand func() float64
	// API is the Framework API served: APIPodkit (podkit.dev/v1alpha1,
	// the default) or APIFrameworkController
	// (frameworkcontroller.microsoft.com/v1, api/fcv1). Run one Reconciler
	// per API to serve both.
	API API
	// Gang says whether each attempt is placed all-or-nothing through the
	// upstream scheduling.k8s.io/v1beta1 PodGroup (see gang.go): GangAuto
	// (the default) when the cluster serves it, GangOff never.
	Gang GangMode
}

// API names a Framework API group a Reconciler serves.
type API int

const (
	// APIPodkit is podkit.dev/v1alpha1.
	APIPodkit API = iota
	// APIFrameworkController is FrameworkController's
	// frameworkcontroller.microsoft.com/v1, the same types (api/fcv1).
	APIFrameworkController
)

// gvk is the Framework kind of the API.
func (a API) gvk() schema.GroupVersionKind {
	if a == APIFrameworkController {
		return fcv1.FrameworkGroupVersionKind
	}
	return v1.FrameworkGroupVersionKind
}

// newObject returns an empty Framework of the API.
func (a API) newObject() client.Object {
	if a == APIFrameworkController {
		return &fcv1.Framework{}
	}
	return &v1.Framework{}
}

// object returns fw as the API's type (the same memory).
func (a API) object(fw *v1.Framework) client.Object {
	if a == APIFrameworkController {
		return fcv1.FromV1alpha1(fw)
	}
	return fw
}

// view returns an object of the API as podkit's type (the same memory).
func (a API) view(obj client.Object) *v1.Framework {
	if fc, ok := obj.(*fcv1.Framework); ok {
		return fc.V1alpha1()
	}
	return obj.(*v1.Framework)
}

func (o *Options) setDefaults() {
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = 4
	}
	if o.CreationConcurrency == 0 {
		o.CreationConcurrency = 32
	}
	if o.StatusUpdateInterval == 0 {
		o.StatusUpdateInterval = time.Second
	}
	if o.ReleaseMinTasks == 0 {
		o.ReleaseMinTasks = v1.BarrierReleaseMinTasks
	}
	if o.ExpectationTimeout == 0 {
		o.ExpectationTimeout = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
}

func (o *Options) validate() error {
	var errs []error
	if o.API != APIPodkit && o.API != APIFrameworkController {
		errs = append(errs, fmt.Errorf("options: API is %d; use APIPodkit or APIFrameworkController", o.API))
	}
	if o.Gang != GangAuto && o.Gang != GangOff {
		errs = append(errs, fmt.Errorf("options: Gang is %d; use GangAuto or GangOff", o.Gang))
	}
	if o.MaxConcurrentReconciles < 0 {
		errs = append(errs, fmt.Errorf("options: MaxConcurrentReconciles is %d; use 0 for the default (4) or a positive number", o.MaxConcurrentReconciles))
	}
	if o.CreationConcurrency < 0 {
		errs = append(errs, fmt.Errorf("options: CreationConcurrency is %d; use 0 for the default (32) or a positive number", o.CreationConcurrency))
	}
	if o.ExpectationTimeout < 0 {
		errs = append(errs, fmt.Errorf("options: ExpectationTimeout is %s; use 0 for the default (30s) or a positive duration", o.ExpectationTimeout))
	}
	return errors.Join(errs...)
}

// Reconciler runs Frameworks. Build it with New and register it with
// SetupWithManager.
type Reconciler struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	opts     Options
	metrics  *metrics
	// gangAPI is whether the cluster serves scheduling.k8s.io/v1beta1
	// PodGroups, read from discovery in SetupWithManager.
	gangAPI bool
	// classifier turns failed pods into completion statuses.
	classifier *classifier
	// conflictDelay bounds the random delay before retrying a Transient
	// Conflict failure.
	minConflictDelay, maxConflictDelay time.Duration

	mu sync.Mutex
	// lastWrite is when each Framework's status was last written.
	lastWrite map[types.NamespacedName]time.Time
	// staleRV holds the resourceVersions each Framework had before our
	// status writes since the cache last caught up: seeing one of them
	// means the cache has not caught up. A reconcile may write twice, so
	// one version is not enough; an informer's cache never goes back, so
	// any other version means it caught up.
	staleRV map[types.NamespacedName][]string
	// created holds pods (and ConfigMaps) created but not yet seen in the
	// cache, by namespace/name, with their UID and creation time.
	created map[types.NamespacedName]expectation
}

type expectation struct {
	uid types.UID
	at  time.Time
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// New returns a Reconciler with validated, defaulted options.
func New(opts Options) (*Reconciler, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	cl, err := opts.Config.classifier()
	if err != nil {
		return nil, err
	}
	minD, maxD, err := opts.Config.conflictDelays()
	if err != nil {
		return nil, err
	}
	return &Reconciler{
		classifier:       cl,
		minConflictDelay: minD,
		maxConflictDelay: maxD,
		opts:             opts,
		metrics:          newMetrics(opts.Registerer),
		lastWrite:        map[types.NamespacedName]time.Time{},
		staleRV:          map[types.NamespacedName][]string{},
		created:          map[types.NamespacedName]expectation{},
	}, nil
}

// SetupWithManager wires the Reconciler into mgr: it watches Frameworks and
// the pods, ConfigMaps and (where the cluster serves them, unless
// Options.Gang is GangOff) PodGroups they own. The manager's scheme must
// include v1alpha1 (v1alpha1.AddToScheme) and, for gang placement,
// client-go's scheduling/v1beta1 (in client-go's scheme).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.opts.Gang == GangAuto {
		// The manager's REST mapper, not a discovery request of its own:
		// where CacheByObjectFor put PodGroups in the cache, the mapper
		// has resolved them already.
		ok, err := servesGangKind(mgr.GetRESTMapper())
		if err != nil {
			return fmt.Errorf("set up framework controller: %w", err)
		}
		r.gangAPI = ok
		log.Log.WithName(ControllerName).Info("gang placement", "podGroupsServed", ok)
	}
	r.client = mgr.GetClient()
	r.reader = mgr.GetAPIReader()
	r.recorder = mgr.GetEventRecorder(ControllerName)
	name := "framework"
	if r.opts.API == APIFrameworkController {
		name = "fcframework"
	}
	// Pods and ConfigMaps map to their Framework by the FC_FRAMEWORK_NAME
	// label rather than by owner: FrameworkController's pods are owned by
	// the attempt's ConfigMap, and a Framework it started must keep
	// reconciling under this controller.
	byLabel := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		fw := obj.GetLabels()[v1.LabelFrameworkName]
		if fw == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: fw}}}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(r.opts.API.newObject()).
		Watches(&corev1.Pod{}, byLabel).
		Watches(&corev1.ConfigMap{}, byLabel)
	if r.gangEnabled() {
		// The scheduler writes the gang's outcome into the PodGroup's status.
		b = b.Watches(&schedulingv1beta1.PodGroup{}, byLabel)
	}
	err := b.WithOptions(controller.Options{MaxConcurrentReconciles: r.opts.MaxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("set up framework controller: %w", err)
	}
	return nil
}

// Reconcile brings one Framework a step closer to its desired state: it
// observes pods into the status, writes the status when a completion must
// be persisted, then creates and deletes pods, and writes the status again.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	nn := req.NamespacedName
	logger := log.FromContext(ctx).WithValues("namespace", nn.Namespace, "name", nn.Name)
	ctx = log.IntoContext(ctx, logger)

	obj := r.opts.API.newObject()
	if err := r.client.Get(ctx, nn, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(nn)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("get framework %s: %w", nn, err)
	}
	fw := r.opts.API.view(obj)
	if !managedByPodkit(fw) {
		// Another controller owns it (spec.managedBy, immutable): touch
		// neither its status nor its pods.
		logger.V(1).Info("skipped: managed by another controller", "managedBy", fw.Spec.ManagedBy)
		r.forget(nn)
		return reconcile.Result{}, nil
	}
	if !fw.DeletionTimestamp.IsZero() {
		// Pods and the ConfigMap are garbage-collected through their
		// owner references.
		return reconcile.Result{}, nil
	}
	if r.isStale(nn, fw.ResourceVersion) {
		// Our last status write is not in the cache yet; its watch event
		// will bring us back with fresh data.
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}
	if fw.Status != nil && fw.Status.State == v1.FrameworkCompleted {
		// A completed Framework changes no more, but its conditions follow
		// its generation (a description edit) and are added to Frameworks
		// completed before conditions existed.
		s := &syncState{fw: fw, written: fw.Status.DeepCopy(), now: metav1.NewTime(r.opts.Clock.Now())}
		if res, done, err := r.writeStatus(ctx, s, true); done {
			return res, err
		}
		return reconcile.Result{}, r.publishRelease(ctx, fw, fw.Status)
	}

	start := r.opts.Clock.Now()
	s, err := r.newSyncState(ctx, fw)
	if err != nil {
		return reconcile.Result{}, err
	}
	defer func() {
		logger.V(1).Info("reconciled", "state", fw.Status.State, "took", r.opts.Clock.Since(start).String())
	}()
	if err := r.observe(ctx, s); err != nil {
		return reconcile.Result{}, err
	}
	if s.urgent {
		// Persist completions before acting on them (deleting pods), so
		// that a crash never loses how a task ended.
		if res, done, err := r.writeStatus(ctx, s, true); done {
			return res, err
		}
	}
	logger.V(1).Info("observed", "urgent", s.urgent, "took", r.opts.Clock.Since(start).String())
	if err := r.act(ctx, s); err != nil {
		// Persist what was done before the error, then retry.
		if _, _, werr := r.writeStatus(ctx, s, true); werr != nil {
			err = errors.Join(err, werr)
		}
		return reconcile.Result{}, err
	}
	logger.V(1).Info("acted", "took", r.opts.Clock.Since(start).String())
	res, _, err := r.writeStatus(ctx, s, s.urgent)
	if err != nil {
		return res, err
	}
	if err := r.publishRelease(ctx, s.fw, s.written); err != nil {
		return reconcile.Result{}, err
	}
	if s.requeueAfter > 0 && (res.RequeueAfter == 0 || s.requeueAfter < res.RequeueAfter) {
		res.RequeueAfter = s.requeueAfter
	}
	return res, nil
}

// writeStatus writes fw.Status when it differs from what was read. A
// non-urgent write within StatusUpdateInterval of the previous one is
// postponed with a requeue. done is true when the caller must return res.
func (r *Reconciler) writeStatus(ctx context.Context, s *syncState, urgent bool) (res reconcile.Result, done bool, err error) {
	s.fw.Status.ReadyTasks = readyTasks(s.fw)
	setConditions(s.fw, s.now)
	r.setGangCondition(s)
	if statusEqual(s.written, s.fw.Status) {
		return reconcile.Result{}, false, nil
	}
	nn := client.ObjectKeyFromObject(s.fw)
	now := r.opts.Clock.Now()
	if !urgent && r.opts.StatusUpdateInterval > 0 {
		r.mu.Lock()
		last := r.lastWrite[nn]
		r.mu.Unlock()
		if wait := r.opts.StatusUpdateInterval - now.Sub(last); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, true, nil
		}
	}
	oldRV := s.fw.ResourceVersion
	if err := r.client.Status().Update(ctx, r.opts.API.object(s.fw)); err != nil {
		if apierrors.IsConflict(err) {
			r.metrics.statusWrites.WithLabelValues("conflict").Inc()
			log.FromContext(ctx).V(1).Info("status write conflicted; retrying with fresh data")
			return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, true, nil
		}
		r.metrics.statusWrites.WithLabelValues("error").Inc()
		return reconcile.Result{}, true, fmt.Errorf("update status of framework %s: %w", nn, err)
	}
	r.metrics.statusWrites.WithLabelValues("ok").Inc()
	s.written = s.fw.Status.DeepCopy()
	s.urgent = false
	r.mu.Lock()
	r.lastWrite[nn] = now
	r.staleRV[nn] = append(r.staleRV[nn], oldRV)
	r.mu.Unlock()
	return reconcile.Result{}, false, nil
}

// publishRelease keeps the Framework's v1.AnnotationBarrierRelease equal to
// the release state of written, the status last persisted, so that barriers
// read the whole Framework only when it changes (pkg/barrier). It writes
// only when the value changes, about twice per attempt, and only on
// Frameworks of at least Options.ReleaseMinTasks tasks (or already
// published): below that barriers watch the whole Framework, and the patch
// would send each of them the Framework again as they are released.
func (r *Reconciler) publishRelease(ctx context.Context, fw *v1.Framework, written *v1.FrameworkStatus) error {
	persisted := *fw
	persisted.Status = written
	want, write := v1.BarrierReleaseUpdate(&persisted, r.opts.ReleaseMinTasks)
	if !write {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         fw.UID, // refused if the Framework was replaced
		"annotations": map[string]string{v1.AnnotationBarrierRelease: want},
	}})
	if err != nil {
		return fmt.Errorf("encode release annotation: %w", err)
	}
	nn := client.ObjectKeyFromObject(fw)
	obj := r.opts.API.newObject()
	obj.SetNamespace(nn.Namespace)
	obj.SetName(nn.Name)
	superseded := fw.ResourceVersion
	if err := r.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("publish release state %q on framework %s: %w", want, nn, err)
	}
	r.metrics.releasePublished.Inc()
	r.mu.Lock()
	r.staleRV[nn] = append(r.staleRV[nn], superseded)
	r.mu.Unlock()
	return nil
}

func (r *Reconciler) isStale(nn types.NamespacedName, rv string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.staleRV[nn], rv) {
		return true
	}
	delete(r.staleRV, nn)
	return false
}

func (r *Reconciler) forget(nn types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.lastWrite, nn)
	delete(r.staleRV, nn)
}

// expect records that the object nn with uid was just created.
func (r *Reconciler) expect(nn types.NamespacedName, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created[nn] = expectation{uid: uid, at: r.opts.Clock.Now()}
}

// observed clears the expectation of nn once the cache shows it.
func (r *Reconciler) observed(nn types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.created, nn)
}

// pending reports whether nn with uid was created recently enough that its
// absence from the cache is only the cache lagging.
func (r *Reconciler) pending(nn types.NamespacedName, uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.created[nn]
	if !ok || e.uid != uid {
		return false
	}
	if r.opts.Clock.Since(e.at) > r.opts.ExpectationTimeout {
		delete(r.created, nn)
		return false
	}
	return true
}

func (r *Reconciler) event(fw *v1.Framework, eventType, reason, action, note string, args ...any) {
	if r.recorder != nil {
		r.recorder.Eventf(r.opts.API.object(fw), nil, eventType, reason, action, note, args...)
	}
}

// managedByPodkit reports whether this controller reconciles fw: its
// spec.managedBy is podkit's (or empty, as in an object the apiserver did
// not default, such as one built in memory).
func managedByPodkit(fw *v1.Framework) bool {
	return fw.Spec.ManagedBy == "" || fw.Spec.ManagedBy == v1.ManagedByPodkit
}

// readyTasks renders "ready/total" for the Ready printer column.
func readyTasks(fw *v1.Framework) string {
	ready, total := 0, fw.Spec.TotalTasks()
	for _, rs := range fw.Status.AttemptStatus.TaskRoleStatuses {
		for i := range rs.TaskStatuses {
			if podReady(&rs.TaskStatuses[i]) {
				ready++
			}
		}
	}
	return fmt.Sprintf("%d/%d", ready, total)
}
