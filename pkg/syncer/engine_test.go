package syncer_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/configmaps"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/secrets"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/services"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

var clusters syncertest.Clusters

func TestMain(m *testing.M) { os.Exit(syncertest.Main(m, &clusters)) }

const (
	waitTimeout = 30 * time.Second
	dataKeyIdx  = "dataKey"
)

// recorder is a ConfigMap syncer that records which of its optional
// interfaces the engine calls.
type recorder struct {
	*translator.Namespaced
	mu              sync.Mutex
	calls           []string
	cacheReadErr    error // from a virtual cache read inside ModifyController
	starts, ends    int
	skipPrefix      string
	indexedListErrs []error
}

func newRecorder(rc *synccontext.RegisterContext) (*recorder, error) {
	t, err := translator.NewNamespaced(rc.Options.Name, rc.TargetNamespace)
	return &recorder{Namespaced: t}, err
}

func (r *recorder) record(call string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call)
}

func (r *recorder) Name() string            { return "recorder" }
func (r *recorder) Resource() client.Object { return &corev1.ConfigMap{} }

func (r *recorder) Init(*synccontext.RegisterContext) error { r.record("Init"); return nil }

func (r *recorder) RegisterIndices(ctx *synccontext.RegisterContext) error {
	r.record("RegisterIndices")
	return ctx.VirtualManager.GetFieldIndexer().IndexField(ctx.Context, &corev1.ConfigMap{}, dataKeyIdx, func(o client.Object) []string {
		var keys []string
		for k := range o.(*corev1.ConfigMap).Data {
			keys = append(keys, k)
		}
		return keys
	})
}

func (r *recorder) ModifyController(ctx *synccontext.RegisterContext, b *builder.Builder) (*builder.Builder, error) {
	r.record("ModifyController")
	r.cacheReadErr = ctx.VirtualManager.GetClient().List(ctx.Context, &corev1.ConfigMapList{})
	return b, nil
}

func (r *recorder) Register(*synccontext.RegisterContext) error { r.record("Register"); return nil }

func (r *recorder) ReconcileStart(_ *synccontext.SyncContext, req ctrl.Request) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	return r.skipPrefix != "" && strings.HasPrefix(req.Name, r.skipPrefix), nil
}

func (r *recorder) ReconcileEnd() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends++
}

func (r *recorder) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	// The index registered in RegisterIndices is usable here.
	err := ctx.VirtualClient.List(ctx.Context, &corev1.ConfigMapList{}, client.MatchingFields{dataKeyIdx: "k"})
	r.mu.Lock()
	r.indexedListErrs = append(r.indexedListErrs, err)
	r.mu.Unlock()
	pObj := r.TranslateMetadata(vObj)
	if err := ctx.PhysicalClient.Create(ctx.Context, pObj); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

func (r *recorder) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

// upRecorder is a recorder that also implements UpSyncer: host-only objects
// are copied into the virtual cluster instead of deleted.
type upRecorder struct{ *recorder }

func (u upRecorder) SyncUp(ctx *synccontext.SyncContext, pObj client.Object) (ctrl.Result, error) {
	v := u.PhysicalToVirtual(pObj)
	vObj := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: v.Namespace, Name: v.Name, Labels: translator.VirtualLabels(pObj.GetLabels())},
		Data:       pObj.(*corev1.ConfigMap).Data,
	}
	if err := ctx.VirtualClient.Create(ctx.Context, vObj); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

var (
	_ syncer.Syncer             = (*recorder)(nil)
	_ syncer.Initializer        = (*recorder)(nil)
	_ syncer.IndicesRegisterer  = (*recorder)(nil)
	_ syncer.ControllerModifier = (*recorder)(nil)
	_ syncer.ControllerStarter  = (*recorder)(nil)
	_ syncer.Starter            = (*recorder)(nil)
	_ syncer.UpSyncer           = upRecorder{}
)

func startRecorder(t *testing.T, configure func(*recorder) syncer.Base) (*syncertest.Run, *recorder) {
	t.Helper()
	var rec *recorder
	run := clusters.Start(t, syncertest.Options{}, func(rc *synccontext.RegisterContext) ([]syncer.Base, error) {
		var err error
		rec, err = newRecorder(rc)
		if err != nil {
			return nil, err
		}
		return []syncer.Base{configure(rec)}, nil
	})
	return run, rec
}

func asIs(r *recorder) syncer.Base { return r }

func hostNN(run *syncertest.Run, name, ns string) types.NamespacedName {
	return types.NamespacedName{Namespace: run.TargetNamespace, Name: name + "-x-" + ns + "-x-" + syncertest.VirtualClusterName}
}

func waitExists(t *testing.T, c client.Client, nn types.NamespacedName, what string) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, what, func(ctx context.Context) (bool, error) {
		return c.Get(ctx, nn, &corev1.ConfigMap{}) == nil, nil
	})
}

func TestOptionalInterfacesAreCalledInOrder(t *testing.T) {
	run, rec := startRecorder(t, asIs)
	vns := clusters.Virtual.Namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "one"}, Data: map[string]string{"k": "v"}}
	if err := clusters.Virtual.Client.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	waitExists(t, clusters.Host.Client, hostNN(run, "one", vns), "host copy")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{"Init", "RegisterIndices", "ModifyController", "Register"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("calls = %v, want %v", rec.calls, want)
	}
	if rec.cacheReadErr != nil {
		t.Errorf("virtual cache read in ModifyController failed (caches must be synced): %v", rec.cacheReadErr)
	}
	if len(rec.indexedListErrs) == 0 {
		t.Fatal("SyncDown never ran")
	}
	for _, err := range rec.indexedListErrs {
		if err != nil {
			t.Errorf("list by the index from RegisterIndices: %v", err)
		}
	}
}

func TestStarterSkipsReconciles(t *testing.T) {
	run, rec := startRecorder(t, func(r *recorder) syncer.Base { r.skipPrefix = "skip-"; return r })
	vns := clusters.Virtual.Namespace(t)
	for _, name := range []string{"skip-me", "keep-me"} {
		if err := clusters.Virtual.Client.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	waitExists(t, clusters.Host.Client, hostNN(run, "keep-me", vns), "host copy of keep-me")
	testenv.WaitFor(t, waitTimeout, "ReconcileEnd after every ReconcileStart", func(context.Context) (bool, error) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.starts >= 2 && rec.starts == rec.ends, nil
	})
	err := clusters.Host.Client.Get(context.Background(), hostNN(run, "skip-me", vns), &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("skipped object reached the host: %v", err)
	}
}

func TestHostOnlyObjectIsDeletedUnlessUpSyncer(t *testing.T) {
	tests := []struct {
		name        string
		configure   func(*recorder) syncer.Base
		wantVirtual bool
	}{
		{"default deletes the host object", asIs, false},
		{"UpSyncer creates the virtual object", func(r *recorder) syncer.Base { return upRecorder{r} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, _ := startRecorder(t, tt.configure)
			vns := clusters.Virtual.Namespace(t)
			tr, err := translator.NewNamespaced(syncertest.VirtualClusterName, run.TargetNamespace)
			if err != nil {
				t.Fatal(err)
			}
			v := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "from-host"}, Data: map[string]string{"k": "host"}}
			pObj := tr.TranslateMetadata(v)
			if err := clusters.Host.Client.Create(context.Background(), pObj); err != nil {
				t.Fatal(err)
			}
			if tt.wantVirtual {
				waitExists(t, clusters.Virtual.Client, client.ObjectKeyFromObject(v), "virtual object created by SyncUp")
				got := &corev1.ConfigMap{}
				if err := clusters.Virtual.Client.Get(context.Background(), client.ObjectKeyFromObject(v), got); err != nil || got.Data["k"] != "host" {
					t.Fatalf("virtual object = %v, %v; want data k=host", got.Data, err)
				}
				if err := clusters.Host.Client.Get(context.Background(), client.ObjectKeyFromObject(pObj), &corev1.ConfigMap{}); err != nil {
					t.Fatalf("host object must stay: %v", err)
				}
				return
			}
			testenv.WaitFor(t, waitTimeout, "host-only object deleted", func(ctx context.Context) (bool, error) {
				return apierrors.IsNotFound(clusters.Host.Client.Get(ctx, client.ObjectKeyFromObject(pObj), &corev1.ConfigMap{})), nil
			})
			if !apierrors.IsNotFound(clusters.Virtual.Client.Get(context.Background(), client.ObjectKeyFromObject(v), &corev1.ConfigMap{})) {
				t.Fatal("default behaviour created a virtual object")
			}
		})
	}
}

func TestDefaultWorkersRunInParallel(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{}, func(*synccontext.RegisterContext) ([]syncer.Base, error) { return nil, nil })
	if got := run.Context.Options.Workers; got != syncer.DefaultWorkers || got < 2 {
		t.Fatalf("default workers = %d, want %d (> 1)", got, syncer.DefaultWorkers)
	}
}

func TestNewRegisterContextRejectsBadInput(t *testing.T) {
	good := syncer.Options{VirtualConfig: clusters.Virtual.Config, HostConfig: clusters.Host.Config, TargetNamespace: "ns"}
	unreachable := &rest.Config{Host: "https://127.0.0.1:1"}
	tests := []struct {
		name    string
		mutate  func(*syncer.Options)
		wantErr string
	}{
		{"missing target namespace", func(o *syncer.Options) { o.TargetNamespace = "" }, "TargetNamespace is empty"},
		{"missing host config", func(o *syncer.Options) { o.HostConfig = nil }, "HostConfig is nil"},
		{"negative workers", func(o *syncer.Options) { o.Workers = -1 }, "Workers is -1"},
		{"unreachable host", func(o *syncer.Options) { o.HostConfig = unreachable }, "reach host cluster at https://127.0.0.1:1"},
		{"unreachable virtual", func(o *syncer.Options) { o.VirtualConfig = unreachable }, "reach virtual cluster at https://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := good
			opts.ReachTimeout = 2 * time.Second
			tt.mutate(&opts)
			_, err := syncer.NewRegisterContext(context.Background(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMissingHostPermissionIsNamedInsteadOfWaitingForever(t *testing.T) {
	target := clusters.Host.Namespace(t)
	ctx := context.Background()
	// A host identity that may read ConfigMaps in the target namespace, and nothing else.
	const user = "syncer-without-secrets"
	if err := clusters.Host.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "configmaps-only"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "delete"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := clusters.Host.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: target, Name: "configmaps-only"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "configmaps-only"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}); err != nil {
		t.Fatal(err)
	}
	hostCfg := rest.CopyConfig(clusters.Host.Config)
	hostCfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	rc, err := syncer.NewRegisterContext(runCtx, syncer.Options{
		VirtualConfig: clusters.Virtual.Config, HostConfig: hostCfg, TargetNamespace: target, Name: syncertest.VirtualClusterName,
	})
	if err != nil {
		t.Fatal(err)
	}
	cms, err := configmaps.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	secs, err := secrets.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	// A plug-in that reads host EndpointSlices through the cache, beside
	// its own kind, has them checked too.
	up, err := services.NewEndpointSlicesUp(rc)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- syncer.Start(rc, cms, secs, up) }()
	select {
	case err = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Start still waits; want an error naming the missing permission")
	}
	for _, want := range []string{
		"cannot get, list, watch secrets in namespace " + target + " (syncer secrets)",
		"get, list, watch endpointslices.discovery.k8s.io in namespace " + target + " (syncer " + services.EndpointsName + ")",
	} {
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "configmaps in") {
			t.Fatalf("Start = %v, want an error containing %q and nothing about configmaps", err, want)
		}
	}
}

// stopping is a ConfigMap syncer whose host writes fail: at once for
// "broken-*" objects, and only when the syncer stops for the others (the
// step waits for its context, as a write in flight does).
type stopping struct {
	*translator.Namespaced
	namespace string // the test's virtual namespace; objects elsewhere sync at once
	entered   chan struct{}
	once      sync.Once
}

func (s *stopping) Name() string            { return "stopping" }
func (s *stopping) Resource() client.Object { return &corev1.ConfigMap{} }

func (s *stopping) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetNamespace() != s.namespace {
		// The syncer watches every virtual namespace, and the package's
		// other tests leave ConfigMaps behind (kube-root-ca.crt in each
		// namespace among them). Blocking on those filled all four
		// workers before broken-1's turn in one run in about 45: the
		// flake once put down to a slow machine.
		return ctrl.Result{}, nil
	}
	if strings.HasPrefix(vObj.GetName(), "broken-") {
		return ctrl.Result{}, apierrors.NewForbidden(corev1.Resource("configmaps"), vObj.GetName(), nil)
	}
	s.once.Do(func() { close(s.entered) })
	<-ctx.Context.Done()
	return ctrl.Result{}, ctx.Context.Err()
}

func (s *stopping) Sync(*synccontext.SyncContext, client.Object, client.Object) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

// reasons captures the reasons of the events recorders of a broadcaster record.
type reasons struct {
	record.EventBroadcaster
	mu   sync.Mutex
	seen map[string][]string // object name -> reasons
}

func (r *reasons) NewRecorder(scheme *runtime.Scheme, source corev1.EventSource) record.EventRecorderLogger {
	return &reasonRecorder{EventRecorderLogger: r.EventBroadcaster.NewRecorder(scheme, source), r: r}
}

func (r *reasons) of(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen[name])
}

type reasonRecorder struct {
	record.EventRecorderLogger
	r *reasons
}

func (rr *reasonRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	rr.r.mu.Lock()
	name := obj.(client.Object).GetName()
	rr.r.seen[name] = append(rr.r.seen[name], reason)
	rr.r.mu.Unlock()
	rr.EventRecorderLogger.Eventf(obj, eventtype, reason, messageFmt, args...)
}

// A failed step gets a SyncError event, but not one that failed because the
// syncer stopped: "context canceled" is no fault of the tenant's object.
func TestStoppingTheSyncerRecordsNoSyncError(t *testing.T) {
	target := clusters.Host.Namespace(t)
	vns := clusters.Virtual.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := syncer.NewRegisterContext(ctx, syncer.Options{
		VirtualConfig: clusters.Virtual.Config, HostConfig: clusters.Host.Config, TargetNamespace: target, Name: syncertest.VirtualClusterName,
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := &reasons{EventBroadcaster: rc.EventBroadcaster, seen: map[string][]string{}}
	rc.EventBroadcaster = seen
	tr, err := translator.NewNamespaced(rc.Options.Name, rc.TargetNamespace)
	if err != nil {
		t.Fatal(err)
	}
	s := &stopping{Namespaced: tr, namespace: vns, entered: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- syncer.Start(rc, s) }()
	for _, name := range []string{"broken-1", "in-flight"} {
		if err := clusters.Virtual.Client.Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	// A failure says what the syncer had done by then.
	defer func() {
		if t.Failed() {
			entered := false
			select {
			case <-s.entered:
				entered = true
			default:
			}
			seen.mu.Lock()
			t.Logf("events recorded by then: %v; the in-flight step started: %v", seen.seen, entered)
			seen.mu.Unlock()
		}
	}()
	testenv.WaitFor(t, waitTimeout, "SyncError recorded for broken-1", func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("syncer ended early: %v", err)
		default:
		}
		return slices.Contains(seen.of("broken-1"), syncer.ReasonSyncError), nil
	})
	select {
	case <-s.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the in-flight step never started")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Start did not return after cancellation")
	}
	if got := seen.of("in-flight"); len(got) != 0 {
		t.Errorf("events %v recorded for the step the stop interrupted, want none", got)
	}
}
