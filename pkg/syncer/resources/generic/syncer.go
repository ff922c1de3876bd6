package generic

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// Syncer syncs one kind by GVK.
type Syncer struct {
	*translator.Namespaced
	cfg Config
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
	return &Syncer{Namespaced: t, cfg: cfg}, nil
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

// SyncDown implements syncer.Syncer.
func (s *Syncer) SyncDown(ctx *synccontext.SyncContext, vObj client.Object) (ctrl.Result, error) {
	if vObj.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	pObj := s.TranslateMetadata(vObj).(*unstructured.Unstructured)
	unstructured.RemoveNestedField(pObj.Object, "status")
	return hostsync.Create(ctx, pObj)
}

// Sync implements syncer.Syncer.
func (s *Syncer) Sync(ctx *synccontext.SyncContext, pObj, vObj client.Object) (ctrl.Result, error) {
	pU, vU := pObj.(*unstructured.Unstructured), vObj.(*unstructured.Unstructured)
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
