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
// decodeView). The watch's decoder only looks at the event's apiVersion and
// kind; the rest is read when the waiter takes the event (load), so an
// event that arrives after the release — the controller's annotation patch
// right behind the status write that released — costs the waiter next to
// nothing.
type rawFramework struct {
	raw, expanded []byte
	view          *view // nil until load
}

var _ runtime.Object = (*rawFramework)(nil)

// load reads the view from raw, once.
func (f *rawFramework) load() error {
	if f.view != nil {
		return nil
	}
	v, expanded, err := decodeView(f.raw)
	if err != nil {
		return err
	}
	f.view, f.expanded = v, expanded
	return nil
}

// resourceVersion is the event's resource version, loaded or not (a
// bookmark, which carries little more).
func (f *rawFramework) resourceVersion() string {
	if f.view != nil {
		return f.view.resourceVersion
	}
	var m struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(f.raw, &m) // a broken event has none: resume from the last one
	return m.Metadata.ResourceVersion
}

// GetObjectKind implements runtime.Object: the kind is always Framework.
func (*rawFramework) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject implements runtime.Object.
func (f *rawFramework) DeepCopyObject() runtime.Object {
	c := &rawFramework{raw: bytes.Clone(f.raw), expanded: bytes.Clone(f.expanded)}
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

// typeOf reads a JSON object's top-level apiVersion and kind, stopping as
// soon as it has both (the apiserver writes them first); ok is false when
// data is not a JSON object.
func typeOf(data []byte) (apiVersion, kind string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", "", false
	}
	var haveVersion, haveKind bool
	for dec.More() && !(haveVersion && haveKind) {
		t, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		key, _ := t.(string)
		switch key {
		case "apiVersion":
			err, haveVersion = dec.Decode(&apiVersion), true
		case "kind":
			err, haveKind = dec.Decode(&kind), true
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return "", "", false
		}
	}
	return apiVersion, kind, true
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
	apiVersion, kind, ok := typeOf(data)
	in := frameworkJSON{APIVersion: apiVersion, Kind: kind}
	if !ok || kind == "" || !in.isFramework() {
		return d.next.Decode(data, defaults, into)
	}
	gvk := v1alpha1.FrameworkGroupVersionKind
	return &rawFramework{raw: bytes.Clone(data)}, &gvk, nil
}
