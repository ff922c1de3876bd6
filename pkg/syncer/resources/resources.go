package resources

import (
	"fmt"
	"slices"
	"strings"

	"github.com/podkit-dev/podkit/pkg/syncer"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/configmaps"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/endpoints"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/endpointslices"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/events"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/generic"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/pods"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/secrets"
	"github.com/podkit-dev/podkit/pkg/syncer/resources/services"
	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// builtins maps each --sync name to the constructor of its plug-ins.
var builtins = map[string]func(*synccontext.RegisterContext) ([]syncer.Base, error){
	configmaps.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := configmaps.New(ctx)
		return []syncer.Base{s}, err
	},
	secrets.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := secrets.New(ctx)
		return []syncer.Base{s}, err
	},
	services.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := services.New(ctx)
		if err != nil {
			return nil, err
		}
		up, err := services.NewEndpointSlicesUp(ctx)
		return []syncer.Base{s, up}, err
	},
	endpoints.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := endpoints.New(ctx)
		return []syncer.Base{s}, err
	},
	endpointslices.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := endpointslices.New(ctx)
		return []syncer.Base{s}, err
	},
	pods.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := pods.New(ctx)
		return []syncer.Base{s, pods.NodeSyncer{}}, err
	},
	events.Name: func(ctx *synccontext.RegisterContext) ([]syncer.Base, error) {
		s, err := events.New(ctx)
		return []syncer.Base{s}, err
	},
}

// Names returns the names of the built-in syncers, sorted.
func Names() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// GVKPrefix starts a name that selects the generic syncer for a kind:
// "gvk:Widget.v1.example.com" (append "+status" to copy status up).
const GVKPrefix = "gvk:"

// StatusSuffix, after a gvk: name, makes the generic syncer copy status up.
const StatusSuffix = "+status"

// Validate returns an error naming the first unknown name and the valid ones.
func Validate(names []string) error {
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, GVKPrefix); ok {
			if _, err := generic.ParseGVK(strings.TrimSuffix(rest, StatusSuffix)); err != nil {
				return fmt.Errorf("syncer %q: %w", n, err)
			}
			continue
		}
		if _, ok := builtins[n]; !ok {
			return fmt.Errorf("unknown syncer %q; choose from %s, or %sKind.version.group", n, strings.Join(Names(), ", "), GVKPrefix)
		}
	}
	return nil
}

// New builds the plug-ins of the named built-in syncers, in the given order.
func New(ctx *synccontext.RegisterContext, names []string) ([]syncer.Base, error) {
	if err := Validate(names); err != nil {
		return nil, err
	}
	var out []syncer.Base
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, GVKPrefix); ok {
			gvk, _ := generic.ParseGVK(strings.TrimSuffix(rest, StatusSuffix))
			g, err := generic.New(ctx, generic.Config{GVK: gvk, StatusUp: strings.HasSuffix(rest, StatusSuffix)})
			if err != nil {
				return nil, fmt.Errorf("create syncer %s: %w", n, err)
			}
			out = append(out, g)
			continue
		}
		p, err := builtins[n](ctx)
		if err != nil {
			return nil, fmt.Errorf("create syncer %s: %w", n, err)
		}
		out = append(out, p...)
	}
	// With both, a tenant's Endpoints reach the host once, as Endpoints the
	// host mirrors, not also as the virtual cluster's mirrored slices.
	if slices.Contains(names, endpoints.Name) {
		for _, p := range out {
			if s, ok := p.(*endpointslices.Syncer); ok {
				s.LeaveMirrored = true
			}
		}
	}
	return out, nil
}
