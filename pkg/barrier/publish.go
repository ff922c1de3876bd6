package barrier

import (
	"strconv"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// AnnotationRelease is the Framework annotation through which a controller
// tells waiting barriers when to read the Framework again. podkit's
// Framework controller keeps it equal to ReleaseState of the status it last
// wrote. Its presence makes Wait watch the Framework's metadata only (a
// small event per write, whatever the status size) and read the whole
// Framework once per change of this value, instead of receiving the whole
// Framework on every status write. Without it (FrameworkController's own
// controller) Wait watches the whole Framework.
const AnnotationRelease = "barrier.podkit.dev/release"

// Values of AnnotationRelease after the "<attempt id>/" prefix, and the
// value once the Framework is completed.
const (
	ReleaseWaiting   = "waiting"
	ReleaseReleased  = "released"
	ReleaseCompleted = "completed"
)

// ReleaseState is the value a controller publishes in AnnotationRelease for
// f's status: "<attempt id>/waiting" until every task counted by the spec
// has a pod IP, then "<attempt id>/released", and "completed" once the
// Framework is completed. It is "" before the first status.
func ReleaseState(f *v1alpha1.Framework) string {
	st := f.Status
	if st == nil {
		return ""
	}
	if st.State == v1alpha1.FrameworkCompleted {
		return ReleaseCompleted
	}
	id := strconv.FormatInt(int64(st.AttemptStatus.ID), 10) + "/"
	if allReady(f) {
		return id + ReleaseReleased
	}
	return id + ReleaseWaiting
}

// allReady is ProgressOf(f).Released() without building the waiting list.
func allReady(f *v1alpha1.Framework) bool {
	for _, r := range f.Spec.TaskRoles {
		rs := roleStatus(f, r.Name)
		for i := range int(r.TaskNumber) {
			if podIP(rs, i) == "" {
				return false
			}
		}
	}
	return true
}
