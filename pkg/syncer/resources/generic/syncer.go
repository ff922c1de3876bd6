package generic

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/internal/hostsync"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
	"github.com/podkit-dev/podkit/pkg/syncer/translator"
)

// Config selects the kind to sync.
type Config struct {
	// GVK is the namespaced kind to sync, served by both clusters. Required.
	GVK schema.GroupVersionKind
	// StatusUp copies .status from the host object to the virtual one
	// (through the status subresource). Default: false.
	StatusUp bool
}

// ParseGVK parses "Kind.version.group" ("Widget.v1.example.com", or
// "PodTemplate.v1" for the core group), the form --sync uses after "gvk:".
func ParseGVK(s string) (schema.GroupVersionKind, error) {
	kind, rest, ok := strings.Cut(s, ".")
	if !ok || kind == "" || rest == "" {
		return schema.GroupVersionKind{}, fmt.Errorf("kind %q: want Kind.version.group, e.g. Widget.v1.example.com", s)
	}
	version, group, _ := strings.Cut(rest, ".")
	return schema.GroupVersionKind{Group: group, Version: version, Kind: kind}, nil
}

// Syncer syncs one kind by GVK. It copies the spec as it is, so an object
// that carries a pod template (its host controller would run those pods
// without the pod syncer's checks and translation) is not created on the
// host unless the policy grants synccontext.AllowPodTemplates; the virtual
// object gets a Warning event with reason syncer.ReasonPolicyRefused.
type Syncer struct {
	*translator.Namespaced
	cfg      Config
	policy   synccontext.Policy
	recorder record.EventRecorder
}

var _ syncer.Syncer = (*Syncer)(nil)

// New returns the syncer for cfg.GVK.
func New(ctx *synccontext.RegisterContext, cfg Config) (*Syncer, error) {
	if cfg.GVK.Kind == "" || cfg.GVK.Version == "" {
		return nil, errors.New("generic syncer: Config.GVK needs at least a Kind and a Version")
	}
	t, err := translator.NewNamespaced(ctx.Options.Name, ctx.TargetNamespace)
	if err != nil {
		return nil, fmt.Errorf("create generic translator: %w", err)
	}
	s := &Syncer{Namespaced: t, cfg: cfg, policy: ctx.Options.Policy}
	s.recorder = hostsync.Recorder(ctx, s.Name())
	return s, nil
}

// Name implements syncer.Base: "generic-<kind>.<version>.<group>", lowercase.
func (s *Syncer) Name() string {
	g := s.cfg.GVK
	return strings.ToLower(strings.TrimSuffix("generic-"+g.Kind+"."+g.Version+"."+g.Group, "."))
}

// Resource implements syncer.Syncer.
func (s *Syncer) Resource() client.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(s.cfg.GVK)
	return u
}

// content returns the fields that flow down: all but metadata and status.
func content(u *unstructured.Unstructured) map[string]any {
	out := map[string]any{}
	for k, v := range u.Object {
		switch k {
		case "apiVersion", "kind", "metadata", "status":
		default:
			out[k] = v
		}
	}
	return out
}

// podTemplatePaths are where workload kinds keep the pods their controller
// makes: spec.template (Deployments, ReplicaSets, StatefulSets, DaemonSets,
// Jobs, ReplicationControllers, most operators' kinds) and
// spec.jobTemplate.spec.template (CronJobs).
var podTemplatePaths = [][]string{{"spec", "template", "spec"}, {"spec", "jobTemplate", "spec", "template", "spec"}}

// refused returns the path of u's pod template when the policy keeps it off
// the host, or "".
func (s *Syncer) refused(u *unstructured.Unstructured) string {
	if s.policy.Allows(synccontext.AllowPodTemplates) {
		return ""
	}
	for _, path := range podTemplatePaths {
		if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, path...); found {
			return strings.Join(path, ".")
		}
	}
	return ""
}

// report records why u is not synced as a Warning event on it.
func (s *Syncer) report(ctx *synccontext.SyncContext, u *unstructured.Unstructured, path string) {
	ctx.Log.Info("virtual object with a pod template refused by the syncer policy; not synced to the host", "field", path)
	s.recorder.Eventf(u, corev1.EventTypeWarning, syncer.ReasonPolicyRefused,
		"not synced to the host: %s: a pod template the host's controllers would run without the pod syncer's checks; %s", path, synccontext.AllowPodTemplates.Hint())
}

// SyncDown implements syncer.Syncer.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	if path := s.refused(vObj.(*unstructured.Unstructured)); path != "" {
		s.report(ctx, vObj.(*unstructured.Unstructured), path)
		return ctrl.Result{}, nil
	}
	pObj := s.TranslateMetadata(vObj).(*unstructured.Unstructured)
	unstructured.RemoveNestedField(pObj.Object, "status")
	return hostsync.Create(ctx, pObj)
}

// Sync implements syncer.Syncer.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	pU, vU := pObj.(*unstructured.Unstructured), vObj.(*unstructured.Unstructured)
	if path := s.refused(vU); path != "" {
		s.report(ctx, vU, path)
		return syncer.DeleteObject(ctx, pObj) // a template added later must not run either
	}
	if s.cfg.StatusUp {
		pStatus, pHas := pU.Object["status"]
		if vStatus := vU.Object["status"]; pHas && !equality.Semantic.DeepEqual(pStatus, vStatus) {
			up := vU.DeepCopy()
			up.Object["status"] = pStatus
			return hostsync.UpdateStatus(ctx, ctx.VirtualClient, up, "virtual")
		}
	}
	want := s.TranslateMetadata(vU).(*unstructured.Unstructured)
	next := pU.DeepCopy()
	changed := hostsync.MetadataChanged(next, want)
	if wantContent := content(want); !equality.Semantic.DeepEqual(content(next), wantContent) {
		for k := range content(next) {
			delete(next.Object, k)
		}
		for k, v := range wantContent {
			next.Object[k] = v
		}
		changed = true
	}
	if !changed {
		return ctrl.Result{}, nil
	}
	return hostsync.Update(ctx, ctx.PhysicalClient, next, "host")
}
