package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/internal/cli/common"
	"github.com/podkit-dev/podkit/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.APIServer(m, &env))
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// startController runs `podkit controller` with args until the test ends.
func startController(t *testing.T, args ...string) {
	t.Helper()
	out := &testenv.SyncBuffer{}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = ptr.To(env.Kubeconfig)
	c := &common.Common{
		Flags:   flags,
		Streams: genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: out, ErrOut: out},
		Logger:  slog.New(slog.NewTextHandler(out, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := NewCommand(ctx, c)
	cmd.SetArgs(append([]string{"--health-probe-bind-address", "0"}, args...))
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	done := make(chan error, 1)
	go func() { done <- cmd.Execute() }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v\n%s", err, out.String())
		}
	})
}

// scrape GETs url with an optional bearer token and returns the status code
// and body, waiting until the server listens.
func scrape(t *testing.T, url, token string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The controller's self-signed certificate, as Prometheus scrapes
		// with insecure_skip_verify in kubebuilder's ServiceMonitor.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test of a self-signed endpoint
	}}
	var code int
	var body string
	testenv.WaitFor(t, 30*time.Second, "metrics endpoint "+url, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil // not listening yet
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		code, body = resp.StatusCode, string(b)
		return err == nil, err
	})
	return code, body
}

// tokenFor returns a token of a new service account in ns.
func tokenFor(t *testing.T, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if _, err := env.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tr, err := env.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// By default /metrics is HTTPS and answers only callers the apiserver
// authenticates and authorizes for GET /metrics (kubebuilder's default);
// --metrics-secure=false serves plain HTTP to anyone.
func TestMetricsAreServedOnlyToAuthorizedCallers(t *testing.T) {
	ns := env.Namespace(t)
	addr := freeAddr(t)
	startController(t, "--metrics-bind-address", addr)
	url := "https://" + addr + "/metrics"

	if code, body := scrape(t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401\n%.300s", code, body)
	}
	if code, body := scrape(t, url, tokenFor(t, ns, "stranger")); code != http.StatusForbidden {
		t.Errorf("token without RBAC: %d, want 403\n%.300s", code, body)
	}
	// Another identity for the allowed case: the filter caches a denial for
	// 30 s (controller-runtime's DenyCacheTTL).
	token := tokenFor(t, ns, "scraper")
	ctx := context.Background()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + ns},
		Rules: []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"}}}
	for _, obj := range []interface{ GetName() string }{role, binding} {
		var err error
		switch o := obj.(type) {
		case *rbacv1.ClusterRole:
			_, err = env.Clientset.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = env.Clientset.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = env.Clientset.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})
		_ = env.Clientset.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{})
	})
	// The apiserver reads RBAC through informers: ask it first, so the
	// filter's own review (whose denials it caches) finds the binding.
	user := "system:serviceaccount:" + ns + ":scraper"
	testenv.WaitFor(t, 30*time.Second, "RBAC allows "+user+" GET /metrics", func(ctx context.Context) (bool, error) {
		sar, err := env.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
				NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}}, metav1.CreateOptions{})
		return err == nil && sar.Status.Allowed, err
	})
	code, body := scrape(t, url, token)
	if code != http.StatusOK {
		t.Fatalf("authorized scrape: %d, want 200\n%.300s", code, body)
	}
	if !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("authorized scrape lacks controller_runtime_reconcile_total:\n%.500s", body)
	}
}

func TestMetricsCanBePlainWhenAskedFor(t *testing.T) {
	addr := freeAddr(t)
	startController(t, "--metrics-bind-address", addr, "--metrics-secure=false")
	code, body := scrape(t, "http://"+addr+"/metrics", "")
	if code != http.StatusOK || !strings.Contains(body, "controller_runtime_reconcile_total") {
		t.Errorf("plain scrape: %d\n%.300s", code, body)
	}
	if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(fmt.Sprintf("https://%s/metrics", addr)); err == nil {
		t.Errorf("--metrics-secure=false also answers HTTPS")
	}
}
