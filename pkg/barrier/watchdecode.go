package barrier

import (
	"bytes"
	"encoding/json"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// rawFramework is a Framework as a whole-object watch event carries it, not
// decoded: its JSON and the barrier's view of it. Every status write sends
// the whole Framework to every waiter on that watch; reading the addresses
// alone costs a waiter a fraction of decoding it (see decodeView).
type rawFramework struct {
	raw, expanded []byte
	view          *view
}

var _ runtime.Object = (*rawFramework)(nil)

// GetObjectKind implements runtime.Object: the kind is always Framework.
func (*rawFramework) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (f *rawFramework) DeepCopyObject() runtime.Object {
	v := *f.view
	v.roles = make([]RolePeers, len(f.view.roles))
	for i, r := range f.view.roles {
		v.roles[i] = RolePeers{Name: r.Name, IPs: append([]string(nil), r.IPs...)}
	}
	return &rawFramework{raw: bytes.Clone(f.raw), expanded: bytes.Clone(f.expanded), view: &v}
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
	v, expanded, err := in.view()
	if err != nil {
		return nil, nil, err
	}
	gvk := v1alpha1.FrameworkGroupVersionKind
	return &rawFramework{raw: bytes.Clone(data), expanded: expanded, view: v}, &gvk, nil
}
