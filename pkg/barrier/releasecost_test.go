package barrier

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/utils/ptr"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// releasedFramework is a released Framework of n tasks shaped as
// bench/barrier writes them, and its JSON as the apiserver returns it
// (task statuses compressed once they reach v1alpha1.CompressionMinBytes).
func releasedFramework(tb testing.TB, n int) (*v1alpha1.Framework, []byte) {
	tb.Helper()
	now := metav1.NewTime(time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC))
	f := &v1alpha1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fw", UID: "u-1", ResourceVersion: "42",
		Annotations: map[string]string{v1alpha1.AnnotationBarrierRelease: "0/released"}}}
	f.APIVersion, f.Kind = v1alpha1.FrameworkGroupVersionKind.ToAPIVersionAndKind()
	f.Spec.TaskRoles = []v1alpha1.TaskRoleSpec{{Name: "worker", TaskNumber: int32(n),
		Task: v1alpha1.TaskSpec{Pod: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
		}}}}}
	st := &v1alpha1.FrameworkStatus{StartTime: now, TransitionTime: now, State: v1alpha1.FrameworkAttemptRunning,
		AttemptStatus: v1alpha1.FrameworkAttemptStatus{StartTime: now, ConfigMapName: v1alpha1.ConfigMapName(f.Name)}}
	rs := v1alpha1.TaskRoleStatus{Name: "worker"}
	for i := range n {
		rs.TaskStatuses = append(rs.TaskStatuses, v1alpha1.TaskStatus{Index: int32(i), StartTime: now, TransitionTime: now,
			State: v1alpha1.TaskAttemptRunning, AttemptStatus: v1alpha1.TaskAttemptStatus{StartTime: now,
				PodName: v1alpha1.PodName(f.Name, "worker", int32(i)),
				PodIP:   ptr.To(fmt.Sprintf("10.%d.%d.%d", 1+i/62500, i/250%250, i%250+1))}})
	}
	st.AttemptStatus.TaskRoleStatuses = []v1alpha1.TaskRoleStatus{rs}
	f.Status = st
	data, err := json.Marshal(f)
	if err != nil {
		tb.Fatal(err)
	}
	return f, data
}

// BenchmarkReleaseCost measures one waiter's work at release, stage by
// stage, on a 1000-task Framework.
func BenchmarkReleaseCost(b *testing.B) {
	_, data := releasedFramework(b, 1000)
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	dec := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	b.Logf("response %d bytes", len(data))
	b.Run("decode/codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var f v1alpha1.Framework
			if _, _, err := dec.Decode(data, nil, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/view", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := decodeView(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	var f v1alpha1.Framework
	if _, _, err := dec.Decode(data, nil, &f); err != nil {
		b.Fatal(err)
	}
	b.Run("peers", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := PeersOf(&f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("indent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			obj := f.DeepCopy()
			if _, err := v1alpha1.IndentUncompressed(obj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("writeoutputs", func(b *testing.B) {
		b.ReportAllocs()
		dir := b.TempDir()
		for b.Loop() {
			if err := WriteOutputs(dir, &f, InjectorOptions{TaskRoleName: "worker"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
