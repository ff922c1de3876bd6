package barrier

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

func TestViewDecoderReadsWatchedFrameworksAndLeavesTheRest(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cf := serializer.NewCodecFactory(scheme).WithoutConversion()
	info, _ := runtime.SerializerInfoForMediaType(cf.SupportedMediaTypes(), runtime.ContentTypeJSON)
	dec := viewSerializer{cf}.DecoderToVersion(info.Serializer, v1alpha1.GroupVersion)

	f, raw := releasedFramework(t, 1000)
	obj, err := runtime.Decode(dec, raw)
	if err != nil {
		t.Fatal(err)
	}
	rf, ok := obj.(*rawFramework)
	if !ok {
		t.Fatalf("a Framework decoded with no target is %T, want *rawFramework", obj)
	}
	// The decoder only frames the event: the addresses are read when the
	// waiter takes it (load), so events behind the release cost nothing.
	if rf.view != nil {
		t.Error("the decoder read the addresses; load should")
	}
	if rf.resourceVersion() != f.ResourceVersion {
		t.Errorf("resourceVersion before load = %q, want %q", rf.resourceVersion(), f.ResourceVersion)
	}
	unloaded := rf.DeepCopyObject().(*rawFramework)
	if err := rf.load(); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(viewOf(f), rf.view, cmp.AllowUnexported(view{})); d != "" {
		t.Errorf("view differs from the Framework's (-want +got):\n%s", d)
	}
	if c := rf.DeepCopyObject().(*rawFramework); !cmp.Equal(c.view, rf.view, cmp.AllowUnexported(view{})) || &c.raw[0] == &rf.raw[0] {
		t.Error("DeepCopyObject does not copy")
	}
	if err := unloaded.load(); err != nil || !cmp.Equal(unloaded.view, rf.view, cmp.AllowUnexported(view{})) || &unloaded.raw[0] == &rf.raw[0] {
		t.Errorf("a copy taken before load reads another view (%v)", err)
	}

	status, _ := json.Marshal(&metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired})
	if obj, err := runtime.Decode(dec, status); err != nil {
		t.Errorf("decode a Status: %v", err)
	} else if _, ok := obj.(*metav1.Status); !ok {
		t.Errorf("a Status decoded as %T, want *metav1.Status", obj)
	}

	var typed v1alpha1.Framework
	if _, _, err := dec.Decode(raw, nil, &typed); err != nil || len(typed.Status.AttemptStatus.TaskRoleStatuses[0].TaskStatuses) != 1000 {
		t.Errorf("decode into a Framework: %v", err)
	}
}

func TestTypeOfReadsOnlyTheTopLevelType(t *testing.T) {
	for _, c := range []struct {
		in               string
		apiVersion, kind string
		ok               bool
	}{
		{`{"apiVersion":"podkit.dev/v1alpha1","kind":"Framework","metadata":{"name":"f"}}`, "podkit.dev/v1alpha1", "Framework", true},
		{`{"metadata":{"kind":"Pod"},"status":{"x":[1,2]},"kind":"Status","apiVersion":"v1"}`, "v1", "Status", true},
		{`{"metadata":{}}`, "", "", true},
		{`[1]`, "", "", false},
		{`{"kind":`, "", "", false},
		{`{"kind":7}`, "", "", false},
	} {
		v, k, ok := typeOf([]byte(c.in))
		if v != c.apiVersion || k != c.kind || ok != c.ok {
			t.Errorf("typeOf(%s) = %q, %q, %v; want %q, %q, %v", c.in, v, k, ok, c.apiVersion, c.kind, c.ok)
		}
	}
}
