package barrier

import (
	"bytes"
	"encoding/json"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// rawFramework is a Framework as a whole-object watch event carries it, not
// decoded: its JSON and, once load has run, the barrier's view of it. Every
// status write sends the whole Framework to every waiter on that watch;
// reading the addresses alone costs a waiter a fraction of decoding it (see
// decodeView). The watch's decoder only frames the event (in); the
// addresses are read when the waiter takes the event (load), so an event
// that arrives after the release — the controller's annotation patch right
// behind the status write that released — costs the waiter nothing.
type rawFramework struct {
	raw, expanded []byte
	in            *frameworkJSON // set by the decoder until load
	view          *view          // nil until load
}

var _ runtime.Object = (*rawFramework)(nil)

// load reads the view from in, once.
func (f *rawFramework) load() error {
	if f.view != nil {
		return nil
	}
	v, expanded, err := f.in.view()
	if err != nil {
		return err
	}
	f.view, f.expanded, f.in = v, expanded, nil
	return nil
}

// resourceVersion is the event's resource version, loaded or not.
func (f *rawFramework) resourceVersion() string {
	if f.view != nil {
		return f.view.resourceVersion
	}
	return f.in.Metadata.ResourceVersion
}

// GetObjectKind implements runtime.Object: the kind is always Framework.
func (*rawFramework) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (f *rawFramework) DeepCopyObject() runtime.Object {
	c := &rawFramework{raw: bytes.Clone(f.raw), expanded: bytes.Clone(f.expanded)}
	if f.in != nil {
		// A fresh decoding of the copied bytes shares nothing with f.
		var in frameworkJSON
		if err := json.Unmarshal(c.raw, &in); err == nil {
			c.in = &in
		}
	}
	if f.view != nil {
		v := *f.view
		v.roles = make([]RolePeers, len(f.view.roles))
		for i, r := range f.view.roles {
			v.roles[i] = RolePeers{Name: r.Name, IPs: append([]string(nil), r.IPs...)}
		}
		c.view = &v
	}
	return c
}

// viewSerializer is a client's serializer whose decoder turns a Framework
// decoded with no target object (as a watch decodes its events) into a
// *rawFramework; everything else (lists, statuses of errors, Into calls) it
// decodes as the serializer it wraps.
type viewSerializer struct{ runtime.NegotiatedSerializer }

// DecoderToVersion implements runtime.NegotiatedSerializer.
func (s viewSerializer) DecoderToVersion(d runtime.Decoder, gv runtime.GroupVersioner) runtime.Decoder {
	return viewDecoder{next: s.NegotiatedSerializer.DecoderToVersion(d, gv)}
}

type viewDecoder struct{ next runtime.Decoder }

// Decode implements runtime.Decoder.
func (d viewDecoder) Decode(data []byte, defaults *schema.GroupVersionKind, into runtime.Object) (runtime.Object, *schema.GroupVersionKind, error) {
	if into != nil {
		return d.next.Decode(data, defaults, into)
	}
	var in frameworkJSON
	if err := json.Unmarshal(data, &in); err != nil || in.Kind == "" || !in.isFramework() {
		return d.next.Decode(data, defaults, into)
	}
	gvk := v1alpha1.FrameworkGroupVersionKind
	return &rawFramework{raw: bytes.Clone(data), in: &in}, &gvk, nil
}
