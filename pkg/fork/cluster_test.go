package fork_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/podkit-dev/podkit/internal/testenv"
	"github.com/podkit-dev/podkit/pkg/fork"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Cluster(m, &env)) }

const waitLong = 90 * time.Second

// watchClient returns a controller-runtime client that can watch, as Run
// needs, acting as env's admin or as the given impersonated user.
func watchClient(t *testing.T, impersonate string) (client.WithWatch, kubernetes.Interface) {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	if impersonate != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: impersonate}
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatalf("create client: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("create clientset: %v", err)
	}
	return c, cs
}

// parentEnv is what the downward API would give a container of pod ns/name.
func parentEnv(ns, name string) fork.LookupEnvFunc {
	m := map[string]string{fork.EnvPodName: name, fork.EnvPodNamespace: ns}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// startParent creates a realistic parent pod (init container, probes,
// downward-API env, hostname and subdomain, automounted token), waits for
// the scheduler to place it and kwok to run it, and returns it.
func startParent(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
	downward := func(env, field string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: field}}}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "operator"}},
		Spec: corev1.PodSpec{
			Subdomain: "operators",
			InitContainers: []corev1.Container{{
				Name: "migrate", Image: "example.com/operator:1", Command: []string{"/operator", "migrate"},
			}},
			Containers: []corev1.Container{{
				Name:  "operator",
				Image: "example.com/operator:1",
				Env: []corev1.EnvVar{
					downward(fork.EnvPodName, "metadata.name"),
					downward(fork.EnvPodNamespace, "metadata.namespace"),
				},
				LivenessProbe:  probe,
				ReadinessProbe: probe,
				StartupProbe:   probe,
			}},
		},
	}
	if len(name) <= 63 { // a hostname is a DNS label; pod names may be longer
		p.Spec.Hostname = name
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create parent pod: %v", err)
	}
	return waitPhase(t, ns, name, corev1.PodRunning)
}

func waitPhase(t *testing.T, ns, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	testenv.WaitFor(t, waitLong, "pod "+name+" "+string(phase), func(ctx context.Context) (bool, error) {
		p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pod = p
		return p.Status.Phase == phase && p.Spec.NodeName != "", nil
	})
	return pod
}

func tokenVolumes(spec *corev1.PodSpec) []string {
	var names []string
	for _, v := range spec.Volumes {
		if strings.HasPrefix(v.Name, "kube-api-access-") {
			names = append(names, v.Name)
		}
	}
	return names
}

// A scheduled parent with an ephemeral container, probes, an automounted
// token, hostname and nodeName yields a spec the real API server accepts;
// the child gets its own token volume and is scheduled and run.
func TestNewPodSpecFromRunningParentIsCreatedAndScheduled(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")

	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, parent.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox:1", Stdin: true, TTY: true},
		})
		parent, err = env.Clientset.CoreV1().Pods(ns).UpdateEphemeralContainers(ctx, p.Name, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("add ephemeral container to parent: %v", err)
	}
	if len(parent.Spec.EphemeralContainers) != 1 || parent.Spec.NodeName == "" || len(tokenVolumes(&parent.Spec)) != 1 {
		t.Fatalf("parent is not realistic: ephemeral=%d nodeName=%q token volumes=%v",
			len(parent.Spec.EphemeralContainers), parent.Spec.NodeName, tokenVolumes(&parent.Spec))
	}

	// The seed's variable names, through the real process environment.
	t.Setenv(fork.LegacyEnvPodName, parent.Name)
	t.Setenv(fork.LegacyEnvPodNamespace, ns)
	spec, err := fork.NewPodSpec(ctx, env.Client, "worker")
	if err != nil {
		t.Fatalf("NewPodSpec() error = %v", err)
	}
	if spec.NodeName != "" || spec.Hostname != "" || len(spec.EphemeralContainers) != 0 || len(tokenVolumes(spec)) != 0 {
		t.Errorf("NewPodSpec() kept parent-only fields: nodeName=%q hostname=%q ephemeral=%d token volumes=%v",
			spec.NodeName, spec.Hostname, len(spec.EphemeralContainers), tokenVolumes(spec))
	}

	child := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "operator-0-worker", Namespace: ns}, Spec: *spec}
	if err := env.Client.Create(ctx, child); err != nil {
		t.Fatalf("create child from NewPodSpec(): %v", err)
	}
	got := waitPhase(t, ns, child.Name, corev1.PodRunning)
	if vols := tokenVolumes(&got.Spec); len(vols) != 1 || vols[0] == tokenVolumes(&parent.Spec)[0] {
		t.Errorf("child token volumes = %v, want one of its own (parent's is %v)", vols, tokenVolumes(&parent.Spec))
	}
	if got.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("child restartPolicy = %q, want Never", got.Spec.RestartPolicy)
	}
	app := got.Spec.Containers[0]
	if app.LivenessProbe != nil || app.ReadinessProbe != nil || app.StartupProbe != nil {
		t.Errorf("child app container still has probes")
	}
	if !slices.Contains(app.Env, corev1.EnvVar{Name: fork.EnvForkPath, Value: "worker"}) {
		t.Errorf("child app env = %v, want %s=worker", app.Env, fork.EnvForkPath)
	}
	if slices.ContainsFunc(got.Spec.InitContainers[0].Env, func(e corev1.EnvVar) bool { return e.Name == fork.EnvForkPath }) {
		t.Errorf("init container got %s, want app containers only", fork.EnvForkPath)
	}
}

// Run waits for the child through the watch and reports its phase and exit
// code, calling Progress on the way; Delete removes the child afterwards.
func TestRunReportsChildExitCode(t *testing.T) {
	tests := []struct {
		code      string
		wantPhase corev1.PodPhase
		wantExit  int
		delete    bool
	}{
		{"0", corev1.PodSucceeded, 0, true},
		{"3", corev1.PodFailed, 3, false},
	}
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	c, cs := watchClient(t, "")
	env.SetContainerLogs(t, "one\ntwo\nthree\nfour\nfive\nsix\n")
	for _, tt := range tests {
		t.Run("exit "+tt.code, func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			res, err := fork.Run(context.Background(), c, "job-"+tt.code, fork.Options{
				// kwok completes a Running pod carrying this annotation.
				Annotations: map[string]string{testenv.AnnotationExitCode: tt.code},
				Labels:      map[string]string{"run": tt.code},
				Timeout:     waitLong,
				Delete:      tt.delete,
				Clientset:   cs,
				LogLines:    5,
				LookupEnv:   parentEnv(ns, parent.Name),
				Progress: func(p fork.Progress) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, p.Summary)
				},
			})
			if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if res.Phase != tt.wantPhase || res.ExitCode() != tt.wantExit {
				t.Errorf("Run() phase, exit = %s, %d; want %s, %d", res.Phase, res.ExitCode(), tt.wantPhase, tt.wantExit)
			}
			if len(res.Containers) != 1 || !res.Containers[0].Terminated || res.Containers[0].Name != "operator" {
				t.Errorf("Run() containers = %+v, want one terminated \"operator\"", res.Containers)
			}
			// The kwok node serves the log set above; LogLines 5 keeps the last five lines.
			if c := res.Containers[0]; !slices.Equal(c.Logs, []string{"two", "three", "four", "five", "six"}) || c.LogError != "" || c.LogsTruncated {
				t.Errorf("Run() logs = %q (error %q, truncated %v), want the last 5 lines", c.Logs, c.LogError, c.LogsTruncated)
			}
			if res.Adopted || res.Deleted != tt.delete {
				t.Errorf("Run() adopted, deleted = %v, %v; want false, %v", res.Adopted, res.Deleted, tt.delete)
			}
			mu.Lock()
			if len(seen) < 2 || !strings.HasPrefix(seen[len(seen)-1], string(tt.wantPhase)) || !slices.Contains(seen, "Running") {
				t.Errorf("Progress summaries = %q, want Running then %s", seen, tt.wantPhase)
			}
			mu.Unlock()

			pod := &corev1.Pod{}
			err = env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: res.Name}, pod)
			switch {
			case tt.delete && err == nil && pod.DeletionTimestamp == nil:
				t.Errorf("child %s still exists after Run with Delete", res.Name)
			case !tt.delete && err != nil:
				t.Errorf("get child %s: %v", res.Name, err)
			case !tt.delete:
				want := map[string]string{"run": tt.code, fork.LabelParentUID: string(parent.UID), fork.LabelPath: "job-" + tt.code}
				for k, v := range want {
					if pod.Labels[k] != v {
						t.Errorf("child label %s = %q, want %q", k, pod.Labels[k], v)
					}
				}
				if ref := metav1.GetControllerOf(pod); ref == nil || ref.UID != parent.UID {
					t.Errorf("child controller ref = %+v, want parent %s", ref, parent.UID)
				}
			}
		})
	}
}

// A child that printed more than LogLimitBytes: the Result keeps the tail, from a line start,
// within the limit, and says it was cut. The log comes from the kwok node over the pods/log API.
func TestRunKeepsTheTailOfALongLog(t *testing.T) {
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	c, cs := watchClient(t, "")
	var text strings.Builder
	for i := range 30 {
		fmt.Fprintf(&text, "line-%02d %s\n", i, strings.Repeat("x", 100<<10))
	}
	env.SetContainerLogs(t, text.String())
	res, err := fork.Run(context.Background(), c, "chatty", fork.Options{
		Annotations: map[string]string{testenv.AnnotationExitCode: "0"},
		Timeout:     waitLong, Clientset: cs, LogLines: 30, LogLimitBytes: 1 << 20,
		LookupEnv: parentEnv(ns, parent.Name),
	})
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	got := res.Containers[0]
	size := 0
	for _, l := range got.Logs {
		size += len(l) + 1
		if !strings.HasPrefix(l, "line-") {
			t.Fatalf("kept a partial line %.20q…", l)
		}
	}
	if !got.LogsTruncated || size > 1<<20 || len(got.Logs) == 0 || !strings.HasPrefix(got.Logs[len(got.Logs)-1], "line-29 ") {
		t.Errorf("logs: %d lines, %d bytes, truncated %v, error %q; want the tail within 1 MiB ending with line-29, truncated",
			len(got.Logs), size, got.LogsTruncated, got.LogError)
	}
}

// A parent whose name is far longer than a DNS label (pod names may have 253 characters) still
// gets a child the real API server accepts: the name is shortened to 63 with a hash kept.
func TestLongParentNameGivesAValidChildName(t *testing.T) {
	ns := env.Namespace(t)
	name := strings.Repeat("operator-with-a-very-long-name.", 6) + "x"
	parent := startParent(t, ns, name)
	c, _ := watchClient(t, "")
	child, err := fork.Start(context.Background(), c, "worker", fork.Options{LookupEnv: parentEnv(ns, parent.Name)})
	if err != nil {
		t.Fatalf("Start() for a %d-character parent name: %v", len(name), err)
	}
	if n := len(child.Pod.Name); n > 63 || !strings.HasPrefix(child.Pod.Name, "operator-with-a-very-long-name") {
		t.Errorf("child name %q (%d characters), want a readable name of at most 63", child.Pod.Name, n)
	}
}

// Calling Start or Run again for the same path adopts the existing child.
func TestRunTwiceAdoptsTheExistingChild(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	c, _ := watchClient(t, "")
	opts := fork.Options{LookupEnv: parentEnv(ns, parent.Name), Timeout: waitLong}

	first, err := fork.Start(ctx, c, "worker", opts)
	if err != nil {
		t.Fatalf("first Start() error = %v", err)
	}
	second, err := fork.Start(ctx, c, "worker", opts)
	if err != nil {
		t.Fatalf("second Start() error = %v", err)
	}
	if first.Adopted || !second.Adopted || first.Pod.UID != second.Pod.UID {
		t.Errorf("Start twice: adopted %v, %v and UIDs %s, %s; want false, true and one child",
			first.Adopted, second.Adopted, first.Pod.UID, second.Pod.UID)
	}

	waitPhase(t, ns, first.Pod.Name, corev1.PodRunning)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+testenv.AnnotationExitCode+`":"0"}}}`))
	if err := env.Client.Patch(ctx, first.Pod.DeepCopy(), patch); err != nil {
		t.Fatalf("complete child: %v", err)
	}
	res, err := fork.Run(ctx, c, "worker", opts)
	if err != nil {
		t.Fatalf("Run() after Start error = %v", err)
	}
	if !res.Adopted || res.Name != first.Pod.Name || res.Phase != corev1.PodSucceeded {
		t.Errorf("Run() = adopted %v name %s phase %s; want adopted %s Succeeded", res.Adopted, res.Name, res.Phase, first.Pod.Name)
	}
	pods := &corev1.PodList{}
	if err := env.Client.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{fork.LabelParentUID: string(parent.UID)}); err != nil {
		t.Fatalf("list children: %v", err)
	}
	if len(pods.Items) != 1 {
		t.Errorf("parent has %d children, want 1", len(pods.Items))
	}
}

// Deleting the parent lets the real garbage collector delete the child.
func TestChildIsGarbageCollectedWithParent(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	c, _ := watchClient(t, "")
	child, err := fork.Start(ctx, c, "worker", fork.Options{LookupEnv: parentEnv(ns, parent.Name)})
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	waitPhase(t, ns, child.Pod.Name, corev1.PodRunning)
	if err := env.Clientset.CoreV1().Pods(ns).Delete(ctx, parent.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete parent: %v", err)
	}
	testenv.WaitFor(t, waitLong, "child garbage-collected", func(ctx context.Context) (bool, error) {
		_, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, child.Pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

// Outside a pod (no downward-API env) the error shows the YAML to add.
func TestMissingEnvReturnsSnippet(t *testing.T) {
	for _, k := range []string{fork.EnvPodName, fork.EnvPodNamespace, fork.LegacyEnvPodName, fork.LegacyEnvPodNamespace} {
		t.Setenv(k, "")
	}
	c, _ := watchClient(t, "")
	_, err := fork.NewPodSpec(context.Background(), c, "worker")
	if !errors.Is(err, fork.ErrNoParentEnv) || !strings.Contains(err.Error(), fork.EnvSnippet) {
		t.Errorf("NewPodSpec() error = %v, want ErrNoParentEnv with the env snippet", err)
	}
	_, err = fork.Run(context.Background(), c, "worker", fork.Options{})
	if !errors.Is(err, fork.ErrNoParentEnv) || !strings.Contains(err.Error(), "fieldPath: metadata.namespace") {
		t.Errorf("Run() error = %v, want ErrNoParentEnv with the env snippet", err)
	}
}

// A service account without the fork Role gets an error naming the missing
// verb and resource; with config/rbac/fork_role.yaml bound, Run works.
func TestRBACForbiddenNamesVerbAndRoleManifestSuffices(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	createOperatorAccount(t, ns)
	c, _ := watchClient(t, "system:serviceaccount:"+ns+":operator")
	opts := fork.Options{LookupEnv: parentEnv(ns, parent.Name), Timeout: waitLong}

	_, err := fork.Run(ctx, c, "worker", opts)
	var fe *fork.ForbiddenError
	if !errors.As(err, &fe) || fe.Verb != "get" || fe.Resource != "pods" || fe.Namespace != ns {
		t.Fatalf("Run() without RBAC error = %v, want ForbiddenError get pods in %s", err, ns)
	}
	for _, want := range []string{"forbidden: the pod's service account cannot get pods in namespace " + ns, fork.RoleManifest} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run() error = %q, want it to contain %q", err, want)
		}
	}

	// Only "get": creating the child is what is refused now.
	grant(t, ns, "get-only", []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}})
	testenv.WaitFor(t, 30*time.Second, "create refused with a ForbiddenError", func(ctx context.Context) (bool, error) {
		_, err := fork.Start(ctx, c, "worker", opts)
		return errors.As(err, &fe) && fe.Verb == "create" && fe.Resource == "pods", nil
	})

	role := loadRole(t)
	grant(t, ns, role.Name, role.Rules)
	var child *fork.Child
	testenv.WaitFor(t, 30*time.Second, "Start with the fork Role", func(ctx context.Context) (bool, error) {
		child, err = fork.Start(ctx, c, "worker", opts)
		if errors.As(err, &fe) {
			return false, nil // the authorizer's cache takes a moment
		}
		return err == nil, err
	})
	waitPhase(t, ns, child.Pod.Name, corev1.PodRunning)
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"`+testenv.AnnotationExitCode+`":"0"}}}`))
	if err := env.Client.Patch(ctx, child.Pod.DeepCopy(), patch); err != nil {
		t.Fatalf("complete child: %v", err)
	}
	res, err := child.Wait(ctx)
	if err != nil || res.Phase != corev1.PodSucceeded {
		t.Errorf("Wait() with the fork Role = %+v, %v; want Succeeded", res, err)
	}
}

// A service account that may run children but not read their logs gets a
// Result whose LogError names the missing pods/log permission and the Role;
// the run itself succeeds.
func TestRunWithoutLogRBACSaysWhichPermissionIsMissing(t *testing.T) {
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	createOperatorAccount(t, ns)
	var rules []rbacv1.PolicyRule
	for _, r := range loadRole(t).Rules {
		if !slices.Contains(r.Resources, "pods/log") {
			rules = append(rules, r)
		}
	}
	grant(t, ns, "no-logs", rules)
	c, cs := watchClient(t, "system:serviceaccount:"+ns+":operator")
	var res *fork.Result
	testenv.WaitFor(t, waitLong, "Run without pods/log", func(ctx context.Context) (bool, error) {
		r, err := fork.Run(ctx, c, "job", fork.Options{
			LookupEnv: parentEnv(ns, parent.Name), Clientset: cs, Timeout: waitLong,
			Annotations: map[string]string{testenv.AnnotationExitCode: "0"},
		})
		var fe *fork.ForbiddenError
		if errors.As(err, &fe) {
			return false, nil // the authorizer's cache takes a moment
		}
		res = r
		return err == nil, err
	})
	if res.Phase != corev1.PodSucceeded || len(res.Containers) != 1 {
		t.Fatalf("Run() = %+v, want Succeeded with one container", res)
	}
	want := "cannot get pods/log in namespace " + ns + "; apply " + fork.RoleManifest
	if got := res.Containers[0].LogError; !strings.Contains(got, want) {
		t.Errorf("LogError = %q, want it to contain %q", got, want)
	}
}

func loadRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, fork.RoleManifest))
	if err != nil {
		t.Fatalf("read fork Role: %v", err)
	}
	role := &rbacv1.Role{}
	if err := yaml.Unmarshal(data, role); err != nil {
		t.Fatalf("parse %s: %v", fork.RoleManifest, err)
	}
	if role.Kind != "Role" || len(role.Rules) == 0 {
		t.Fatalf("%s holds %s with %d rules, want a Role", fork.RoleManifest, role.Kind, len(role.Rules))
	}
	return role
}

// createOperatorAccount creates the "operator" service account of ns, which grant binds.
func createOperatorAccount(t *testing.T, ns string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "operator", Namespace: ns}}
	if err := env.Client.Create(context.Background(), sa); err != nil {
		t.Fatalf("create service account: %v", err)
	}
}

// grant binds a Role with rules to the "operator" service account of ns.
func grant(t *testing.T, ns, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Rules: rules}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "operator", Namespace: ns}},
	}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
}

// A parent that Istio injected (sidecar container, init container, volumes,
// the status annotation), with a native sidecar and a hostPort, pinned to one
// node: the child leaves the sidecars and the hostPort out, so the real
// scheduler places it beside its parent on that node.
func TestStartLeavesInjectedSidecarsAndHostPortsOut(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	nodes, err := env.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("list nodes: %v (%d)", err, len(nodes.Items))
	}
	node := nodes.Items[0].Labels["kubernetes.io/hostname"]
	downward := func(env, field string) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: field}}}
	}
	emptyDir := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "meshed-0", Namespace: ns, Annotations: map[string]string{
			"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy"],"revision":"default"}`,
		}},
		Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/hostname": node},
			Volumes:      []corev1.Volume{{Name: "istio-envoy", VolumeSource: emptyDir}},
			InitContainers: []corev1.Container{
				{Name: "istio-init", Image: "example.com/proxyv2:1"},
				{Name: "shipper", Image: "example.com/shipper:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)},
			},
			Containers: []corev1.Container{
				{Name: "operator", Image: "example.com/operator:1",
					Ports: []corev1.ContainerPort{{ContainerPort: 9443, HostPort: 9443}},
					Env:   []corev1.EnvVar{downward(fork.EnvPodName, "metadata.name"), downward(fork.EnvPodNamespace, "metadata.namespace")}},
				{Name: "istio-proxy", Image: "example.com/proxyv2:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "istio-envoy", MountPath: "/etc/istio/proxy"}}},
			},
		},
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create parent pod: %v", err)
	}
	parent := waitPhase(t, ns, p.Name, corev1.PodRunning)
	c, _ := watchClient(t, "")
	child, err := fork.Start(ctx, c, "worker", fork.Options{LookupEnv: parentEnv(ns, parent.Name)})
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	want := []fork.Dropped{
		{Kind: "container", Name: "istio-proxy", Reason: "istio"},
		{Kind: "initContainer", Name: "istio-init", Reason: "istio"},
		{Kind: "initContainer", Name: "shipper", Reason: "native sidecar"},
		{Kind: "volume", Name: "istio-envoy", Reason: "istio"},
	}
	if diff := cmp.Diff(want, child.Dropped); diff != "" {
		t.Errorf("Child.Dropped (-want +got):\n%s", diff)
	}
	got := waitPhase(t, ns, child.Pod.Name, corev1.PodRunning)
	if got.Spec.NodeName != parent.Spec.NodeName {
		t.Errorf("child runs on %s, want its parent's node %s", got.Spec.NodeName, parent.Spec.NodeName)
	}
	if len(got.Spec.Containers) != 1 || len(got.Spec.InitContainers) != 0 || got.Spec.Containers[0].Ports[0].HostPort != 0 {
		t.Errorf("child on the server has containers %+v, init containers %+v; want only operator, without hostPort",
			got.Spec.Containers, got.Spec.InitContainers)
	}
	for _, v := range got.Spec.Volumes {
		if v.Name == "istio-envoy" {
			t.Errorf("child kept the injected volume %s", v.Name)
		}
	}
}

// A pod that only carries the parent-UID label, without the parent as its
// controller owner, is not adopted: Start says who owns the name.
func TestStartRefusesAPodThatOnlyCarriesTheParentLabel(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	name := fork.ChildName(parent.Name, parent.UID, "worker", "")
	squatter := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			fork.LabelParentUID: string(parent.UID), fork.LabelPath: "worker",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "evil", Image: "example.com/evil:1"}}},
	}
	if _, err := env.Clientset.CoreV1().Pods(ns).Create(ctx, squatter, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create squatter: %v", err)
	}
	c, _ := watchClient(t, "")
	_, err := fork.Start(ctx, c, "worker", fork.Options{LookupEnv: parentEnv(ns, parent.Name)})
	if !errors.Is(err, fork.ErrConflict) || !strings.Contains(err.Error(), "no controller") {
		t.Errorf("Start() over a labelled squatter: error %v, want ErrConflict naming its owner", err)
	}
}

// Wait resumes after its watch breaks: the API server restarts while the
// child runs, and the completion that follows is still seen.
// This test restarts the whole kwok cluster; keep it last in the file: after
// `kwokctl stop/start cluster` kwok v0.8 no longer moves new pods to Running,
// so a test that needs a Running pod cannot follow it.
func TestWaitResumesAfterAPIServerRestart(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	parent := startParent(t, ns, "operator-0")
	c, _ := watchClient(t, "")
	child, err := fork.Start(ctx, c, "worker", fork.Options{LookupEnv: parentEnv(ns, parent.Name), Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("Start() error = %v", err)
	}
	waitPhase(t, ns, child.Pod.Name, corev1.PodRunning)

	type outcome struct {
		res *fork.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := child.Wait(ctx)
		done <- outcome{res, err}
	}()
	env.RestartAPIServer(t)
	// Complete the child by writing its status as a kubelet would: after a
	// restart kwok does not reliably act on the exit-code annotation.
	testenv.WaitFor(t, time.Minute, "child status set to Succeeded after restart", func(ctx context.Context) (bool, error) {
		p, err := env.Clientset.CoreV1().Pods(ns).Get(ctx, child.Pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		p.Status.Phase = corev1.PodSucceeded
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: "operator", Image: p.Spec.Containers[0].Image,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}},
		}}
		_, err = env.Clientset.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err == nil, nil
	})
	select {
	case o := <-done:
		if o.err != nil || o.res.Phase != corev1.PodSucceeded {
			t.Errorf("Wait() across restart = %+v, %v; want Succeeded", o.res, o.err)
		}
	case <-time.After(3*time.Minute + 10*time.Second):
		t.Fatal("Wait() did not return after the restart")
	}
}
