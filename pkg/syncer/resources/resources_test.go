package resources_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/internal/syncertest"
	"github.com/podkit-dev/podkit/pkg/syncer/resources"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

var clusters syncertest.Clusters

func TestMain(m *testing.M) { os.Exit(syncertest.Main(m, &clusters)) }

const waitTimeout = 30 * time.Second

// syncAll syncs every ConfigMap and Secret, as the tests of the engine's
// mechanics need; the default policy syncs only those synced pods use.
var syncAll = synccontext.Policy{Allow: []synccontext.Permission{synccontext.AllowAllConfigMaps, synccontext.AllowAllSecrets}}

func builtins(names ...string) func(*synccontext.RegisterContext) ([]syncer.Base, error) {
	return func(rc *synccontext.RegisterContext) ([]syncer.Base, error) { return resources.New(rc, names) }
}

func hostName(name, namespace string) string {
	return name + "-x-" + namespace + "-x-" + syncertest.VirtualClusterName
}

// waitHost waits until the host object nn satisfies cond (nil: exists).
func waitHost[T client.Object](t *testing.T, obj T, nn types.NamespacedName, what string, cond func(T) bool) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, what, func(ctx context.Context) (bool, error) {
		if err := clusters.Host.Client.Get(ctx, nn, obj); err != nil {
			return false, nil // absent, or the API server is restarting
		}
		return cond == nil || cond(obj), nil
	})
}

// waitGone waits until obj no longer exists in c.
func waitGone(t *testing.T, c client.Client, obj client.Object, what string) {
	t.Helper()
	testenv.WaitFor(t, waitTimeout, what, func(ctx context.Context) (bool, error) {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), nil
	})
}

func create(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
	if svc, ok := obj.(*corev1.Service); ok {
		deleteLater(t, c, svc)
	}
}

// deleteLater deletes svc when the test ends. Namespaces are never emptied
// here (no controller manager): a Service left behind would hold its cluster
// IP in its API server for the rest of the binary, and a host Service given
// the same address could not pass it to its virtual Service.
func deleteLater(t *testing.T, c client.Client, svc *corev1.Service) {
	key := client.ObjectKeyFromObject(svc)
	t.Cleanup(func() {
		err := c.Delete(context.Background(), &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete Service %s: %v", key, err)
		}
	})
}

func configMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"}}, Data: data}
}

// barrier creates a virtual ConfigMap and waits for its host copy: once it
// is there, the syncer has handled the events queued before it.
func barrier(t *testing.T, run *syncertest.Run, vns string) {
	t.Helper()
	name := fmt.Sprintf("barrier-%d", time.Now().UnixNano())
	create(t, clusters.Virtual.Client, configMap(vns, name, nil))
	waitHost(t, &corev1.ConfigMap{}, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName(name, vns)}, "barrier "+name, nil)
}

func TestConfigMapRoundTrip(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := configMap(vns, "settings", map[string]string{"k": "v1"})
	create(t, clusters.Virtual.Client, v)

	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("settings", vns)}
	p := &corev1.ConfigMap{}
	waitHost(t, p, pNN, "host ConfigMap created", nil)
	if diff := cmp.Diff(map[string]string{"k": "v1"}, p.Data); diff != "" {
		t.Errorf("host data (-want +got):\n%s", diff)
	}
	wantLabels := map[string]string{translator.HostLabelKey("app"): "web", translator.LabelManagedBy: syncertest.VirtualClusterName, translator.LabelNamespace: vns}
	if diff := cmp.Diff(wantLabels, p.Labels); diff != "" {
		t.Errorf("host labels (-want +got):\n%s", diff)
	}

	v.Data["k"] = "v2"
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "virtual update reaches the host", func(p *corev1.ConfigMap) bool { return p.Data["k"] == "v2" })

	p.Data["k"] = "changed-on-host"
	if err := clusters.Host.Client.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitHost(t, p, pNN, "host edit reverted to the virtual data", func(p *corev1.ConfigMap) bool { return p.Data["k"] == "v2" })

	if err := clusters.Virtual.Client.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	waitGone(t, clusters.Host.Client, p, "host ConfigMap deleted with the virtual one")
}

func TestSecretRoundTripAndImmutableRecreate(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps", "secrets"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	v := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "creds"},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"password": []byte("one")},
		Immutable:  new(true),
	}
	create(t, clusters.Virtual.Client, v)
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("creds", vns)}
	p := &corev1.Secret{}
	waitHost(t, p, pNN, "host Secret created", nil)
	firstUID := p.UID
	if string(p.Data["password"]) != "one" || p.Type != corev1.SecretTypeOpaque {
		t.Fatalf("host Secret = %v %q, want Opaque password=one", p.Type, p.Data)
	}

	// An immutable virtual Secret is replaced by delete+create: the host follows.
	if err := clusters.Virtual.Client.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	v = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "creds"},
		Data:       map[string][]byte{"password": []byte("two")},
	}
	create(t, clusters.Virtual.Client, v)
	waitHost(t, p, pNN, "host Secret replaced", func(p *corev1.Secret) bool {
		return p.UID != firstUID && string(p.Data["password"]) == "two"
	})

	tokenSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: vns, Name: "token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}
	create(t, clusters.Virtual.Client, tokenSecret)
	barrier(t, run, vns)
	err := clusters.Host.Client.Get(ctx, types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("token", vns)}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("service account token Secret reached the host: %v", err)
	}
}

func TestUnmanagedHostObjectWithCollidingNameIsNeverTouched(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()

	squatter := configMap(run.TargetNamespace, hostName("taken", vns), map[string]string{"owner": "someone else"})
	create(t, clusters.Host.Client, squatter)
	v := configMap(vns, "taken", map[string]string{"owner": "virtual"})
	create(t, clusters.Virtual.Client, v)
	barrier(t, run, vns)

	check := func(when string) {
		t.Helper()
		got := &corev1.ConfigMap{}
		if err := clusters.Host.Client.Get(ctx, client.ObjectKeyFromObject(squatter), got); err != nil {
			t.Fatalf("%s: unmanaged host ConfigMap: %v", when, err)
		}
		if got.UID != squatter.UID || got.ResourceVersion != squatter.ResourceVersion {
			t.Fatalf("%s: unmanaged host ConfigMap was modified: %v", when, got)
		}
	}
	check("after the virtual object was created")

	v.Data["owner"] = "virtual, updated"
	if err := clusters.Virtual.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := clusters.Virtual.Client.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	barrier(t, run, vns)
	check("after the virtual object was updated and deleted")

	// A look-alike carrying the managed-by label but a foreign name annotation
	// is not managed either.
	lookalike := configMap(run.TargetNamespace, hostName("other", vns), nil)
	lookalike.Labels = map[string]string{translator.LabelManagedBy: syncertest.VirtualClusterName}
	lookalike.Annotations = map[string]string{translator.AnnotationName: "something-else", translator.AnnotationNamespace: vns}
	create(t, clusters.Host.Client, lookalike)
	barrier(t, run, vns)
	if err := clusters.Host.Client.Get(ctx, client.ObjectKeyFromObject(lookalike), &corev1.ConfigMap{}); err != nil {
		t.Fatalf("look-alike host ConfigMap was deleted: %v", err)
	}
}

func TestLongNamesAreHashedOnTheHost(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps"))
	vns := clusters.Virtual.Namespace(t)
	long := strings.Repeat("very-long-name-", 12) + "end"
	create(t, clusters.Virtual.Client, configMap(vns, long, map[string]string{"k": "v"}))

	var found *corev1.ConfigMap
	testenv.WaitFor(t, waitTimeout, "hashed host ConfigMap", func(ctx context.Context) (bool, error) {
		list := &corev1.ConfigMapList{}
		if err := clusters.Host.Client.List(ctx, list, client.InNamespace(run.TargetNamespace)); err != nil {
			return false, nil
		}
		for i := range list.Items {
			if list.Items[i].Annotations[translator.AnnotationName] == long {
				found = &list.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if len(found.Name) > translator.MaxNameLength || !strings.HasPrefix(found.Name, "very-long-name-") {
		t.Fatalf("host name %q: want a readable prefix and at most %d characters", found.Name, translator.MaxNameLength)
	}
	if err := clusters.Virtual.Client.Delete(context.Background(), configMap(vns, long, nil)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, clusters.Host.Client, found, "hashed host ConfigMap deleted")
}

func TestOrphanedManagedHostObjectsAreDeleted(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()

	// A managed host object whose virtual object never existed.
	tr, err := translator.NewNamespaced(syncertest.VirtualClusterName, run.TargetNamespace)
	if err != nil {
		t.Fatal(err)
	}
	orphan := tr.TranslateMetadata(configMap(vns, "ghost", nil)).(*corev1.ConfigMap)
	create(t, clusters.Host.Client, orphan)
	waitGone(t, clusters.Host.Client, orphan, "orphaned host ConfigMap deleted")

	// A virtual object deleted while the syncer is down.
	v := configMap(vns, "left-behind", nil)
	create(t, clusters.Virtual.Client, v)
	p := &corev1.ConfigMap{}
	pNN := types.NamespacedName{Namespace: run.TargetNamespace, Name: hostName("left-behind", vns)}
	waitHost(t, p, pNN, "host ConfigMap created", nil)
	run.Stop(t)
	if err := clusters.Virtual.Client.Delete(ctx, v); err != nil {
		t.Fatal(err)
	}
	clusters.Start(t, syncertest.Options{TargetNamespace: run.TargetNamespace, Policy: syncAll}, builtins("configmaps"))
	waitGone(t, clusters.Host.Client, p, "host ConfigMap deleted after the syncer restarted")
}

// managedHostConfigMaps returns the names of host ConfigMaps managed for vns.
func managedHostConfigMaps(ctx context.Context, target, vns string) (map[string]bool, error) {
	list := &corev1.ConfigMapList{}
	if err := clusters.Host.Client.List(ctx, list, client.InNamespace(target), client.MatchingLabels{translator.LabelNamespace: vns}); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, cm := range list.Items {
		out[cm.Annotations[translator.AnnotationName]] = true
	}
	return out, nil
}

// waitConverged waits until the host holds exactly want for vns.
func waitConverged(t *testing.T, target, vns string, want map[string]bool) {
	t.Helper()
	var got map[string]bool
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("host to hold exactly %d ConfigMaps", len(want)), func(ctx context.Context) (bool, error) {
		var err error
		got, err = managedHostConfigMaps(ctx, target, vns)
		return err == nil && cmp.Equal(want, got), nil
	})
}

func TestRestartingTheSyncerMidWorkConverges(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps"))
	vns := clusters.Virtual.Namespace(t)
	ctx := context.Background()
	want := map[string]bool{}
	for i := range 60 {
		name := fmt.Sprintf("cm-%02d", i)
		create(t, clusters.Virtual.Client, configMap(vns, name, map[string]string{"i": name}))
		want[name] = true
		if i == 30 {
			run.Stop(t) // mid-work: some objects are synced, some queued, some not yet seen
		}
	}
	for i := range 10 { // deleted while no syncer runs
		name := fmt.Sprintf("cm-%02d", i)
		if err := clusters.Virtual.Client.Delete(ctx, configMap(vns, name, nil)); err != nil {
			t.Fatal(err)
		}
		delete(want, name)
	}
	clusters.Start(t, syncertest.Options{TargetNamespace: run.TargetNamespace, Policy: syncAll}, builtins("configmaps"))
	waitConverged(t, run.TargetNamespace, vns, want)
}

func TestAPIServerRestartsConverge(t *testing.T) {
	run := clusters.Start(t, syncertest.Options{Policy: syncAll}, builtins("configmaps"))
	vns := clusters.Virtual.Namespace(t)
	want := map[string]bool{}
	add := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			name := fmt.Sprintf("%s-%d", prefix, i)
			testenv.WaitFor(t, waitTimeout, "create "+name, func(ctx context.Context) (bool, error) {
				err := clusters.Virtual.Client.Create(ctx, configMap(vns, name, nil))
				return err == nil || apierrors.IsAlreadyExists(err), nil
			})
			want[name] = true
		}
	}
	add("before", 10)
	waitConverged(t, run.TargetNamespace, vns, want)

	clusters.Host.RestartAPIServer(t)
	add("after-host-restart", 10)
	waitConverged(t, run.TargetNamespace, vns, want)

	clusters.Virtual.RestartAPIServer(t)
	add("after-virtual-restart", 10)
	waitConverged(t, run.TargetNamespace, vns, want)
}
