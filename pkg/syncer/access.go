package syncer

import (
	"errors"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// cacheVerbs are what a host cache needs of each synced kind: without them
// its informer never syncs and the syncer would wait forever.
var cacheVerbs = []string{"get", "list", "watch"}

// CheckHostAccess asks the host API server (SelfSubjectAccessReview) whether
// the syncer's host identity may get, list and watch the Resource of every
// Syncer and the HostResources of every HostReader among plugins in the
// target namespace (cluster-wide for cluster-scoped kinds). The error names each missing permission and the
// Role that would grant it. Start calls it before the managers start; call
// it yourself when you drive them with Setup and Register.
func CheckHostAccess(ctx *synccontext.RegisterContext, plugins ...Base) error {
	mapper := ctx.PhysicalManager.GetRESTMapper()
	scheme := ctx.PhysicalManager.GetScheme()
	type read struct {
		plugin string
		obj    client.Object
	}
	var reads []read
	for _, p := range plugins {
		if s, ok := p.(Syncer); ok {
			reads = append(reads, read{p.Name(), s.Resource()})
		}
		if h, ok := p.(HostReader); ok {
			for _, obj := range h.HostResources() {
				reads = append(reads, read{p.Name(), obj})
			}
		}
	}
	var missing []string
	for _, r := range reads {
		gvk, err := apiutil.GVKForObject(r.obj, scheme)
		if err != nil {
			return fmt.Errorf("resource of syncer %s: %w", r.plugin, err)
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("find %s on the host for syncer %s: %w", gvk, r.plugin, err)
		}
		ns := ""
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			ns = ctx.TargetNamespace
		}
		var denied []string
		for _, verb := range cacheVerbs {
			review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
				ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: ns, Verb: verb, Group: mapping.Resource.Group, Resource: mapping.Resource.Resource,
				},
			}}
			if err := ctx.CurrentNamespaceClient.Create(ctx.Context, review); err != nil {
				return fmt.Errorf("check host access to %s: %w", mapping.Resource.Resource, err)
			}
			if !review.Status.Allowed {
				denied = append(denied, verb)
			}
		}
		if len(denied) > 0 {
			where := "cluster-wide"
			if ns != "" {
				where = "in namespace " + ns
			}
			missing = append(missing, fmt.Sprintf("%s %s %s (syncer %s)", strings.Join(denied, ", "), mapping.Resource.GroupResource(), where, r.plugin))
		}
	}
	if len(missing) > 0 {
		return errors.New("the host cluster denies the syncer: it cannot " + strings.Join(missing, "; ") +
			"; grant get, list, watch, create, update, patch and delete on them to the syncer's host identity (a Role in the target namespace)")
	}
	return nil
}
